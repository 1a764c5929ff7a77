"""Committed future revenue (revrules.forecast): 12 months from the end of the bundled
and generated logs, each subscription's first projected charge equal to the engine's own
renewal decision, churn as a second line, and a what-if under a second ruleset."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import revrules
from revrules import Engine, State
from revrules.forecast import compare, forecast
from revrules.generator import generate
from revrules.runtime import start_of

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")
PRICE_RISE = revrules.load(ROOT / "examples" / "streaming-price-rise.rr")
D = Decimal


def bundled_state() -> State:
    with open(ROOT / "examples" / "events.jsonl", encoding="utf-8") as log:
        events = [json.loads(line) for line in log if line.strip()]
    state, _ = Engine(STREAMING).run(events)
    return state


def test_bundled_log_projects_twelve_months() -> None:
    f = forecast(Engine(STREAMING), bundled_state(), 12)
    assert f.months[0] == "2027-01" and f.months[-1] == "2027-12" and len(f.months) == 12
    months = {k: (n, net) for k, (n, net, _) in f.by_month().items()}
    assert months[("EUR", "2027-01")] == (1, D("10.92"))
    assert months[("EUR", "2027-12")] == (2, D("108.24"))  # the annual B2B plan renews
    assert months[("USD", "2027-01")] == (2, D("26.98"))  # BF2026 still halves s2
    assert months[("USD", "2027-03")] == (2, D("33.98"))  # … for two cycles only
    assert {c.subscription for c in f.charges} == {"s1", "s2", "s3", "s9"}
    assert f.with_churn() is None
    assert forecast(Engine(STREAMING), bundled_state(), 12).to_wire() == f.to_wire()


def test_first_projected_charges_are_the_engines_renewals() -> None:
    for state in (bundled_state(),
                  Engine(STREAMING).run(generate(STREAMING, customers=40, months=8,
                                                 seed=3))[0]):
        engine = Engine(STREAMING)
        f = forecast(engine, state, 12)
        seen: set[str] = set()
        assert f.charges
        for charge in f.charges:
            if charge.subscription in seen:
                continue
            seen.add(charge.subscription)
            sub = state.subscriptions[charge.subscription]
            if sub.charge is not None:
                continue  # settled first by the projection
            at = max([start_of(charge.day, "UTC")]
                     + [t for t in (state.last_tick,
                                    state.last_event.get(charge.subscription)) if t])
            out = engine.apply(state, {"id": "check", "type": "renewal_due",
                                       "at": at.isoformat(), "subscription": sub.id})
            assert out.ok, out.error
            decision = next(d for d in out.decisions if d.kind == "charge")
            assert (decision.list, decision.tax, decision.net, decision.total) == (
                charge.list, charge.tax, charge.net, charge.total), charge
        assert len(seen) >= 4


def test_churn_gives_a_second_line() -> None:
    f = forecast(Engine(STREAMING), bundled_state(), 12, {"premium_monthly": D("0.05")})
    churned = f.with_churn()
    assert churned is not None
    assert churned[("EUR", "2027-01")] == D("10.37")  # 10.92 × 0.95
    assert churned[("EUR", "2027-12")] == D("103.99")  # 99.00 + 9.24 × 0.95 ** 12
    assert f.by_month()[("EUR", "2027-12")][1] == D("108.24")  # the committed line stays


def test_what_if_a_price_rise() -> None:
    state = bundled_state()
    old = forecast(Engine(STREAMING), state, 12)
    new = forecast(Engine(PRICE_RISE), state, 12)
    rows = {(r["currency"], r["month"]): r["change"] for r in compare(old, new)}
    assert rows[("USD", "2027-01")] == "2.00"
    assert rows[("USD", "2027-12")] == "1.00"
    assert rows[("EUR", "2027-01")] == "0.00"


def test_a_contract_ending_returns_to_the_list_price() -> None:
    customer = {"id": "c-acme", "country": "FR", "segment": "business"}
    state, outcomes = Engine(STREAMING).run([
        {"id": "c", "type": "checkout", "at": "2027-01-01T09:00:00Z", "subscription": "a",
         "storefront": "b2b", "plan": "business_annual", "customer": customer},
        {"id": "p", "type": "payment_succeeded", "at": "2027-01-05", "subscription": "a"}])
    assert all(o.ok for o in outcomes)
    f = forecast(Engine(STREAMING), state, 30)
    # the acme contract (EUR 79.00) is valid to 2028-12-31: the 2029 renewal is at list
    assert [(c.day.isoformat(), c.net) for c in f.charges] == [
        ("2028-01-01", D("79.00")), ("2029-01-01", D("99.00"))]
