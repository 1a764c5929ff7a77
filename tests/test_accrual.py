"""The accrual view (revrules.accrual): recognised and deferred revenue, receivable and
unbilled; exact figures on the bundled log, the identities on generated and random logs,
and the service periods checked against the engine's own charges."""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, Ledger, Outcome
from revrules.accrual import Accrual, AccrualFigures, month_of_day
from revrules.generator import generate
from revrules.runtime import local_date
from revrules.testing import event_sequences, rulesets

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")
D = Decimal

YEARLY = """ruleset yearly version "1"
customer { country: string }
storefront web { channel web region EU currency EUR tax exclusive psp stripe }
product p { entitlements a }
plan annual {
  product p
  every 1 year
  price web EUR 120.00
}
plan monthly {
  product p
  every 1 month
  price web EUR 10.00
}
"""


def bundled() -> list[Outcome]:
    with open(ROOT / "examples" / "events.jsonl", encoding="utf-8") as log:
        events = [json.loads(line) for line in log if line.strip()]
    _, outcomes = Engine(STREAMING).run(events)
    return outcomes


def run(rules: revrules.Ruleset, log: list[dict[str, Any]]) -> list[Outcome]:
    _, outcomes = Engine(rules).run(log)
    assert all(o.ok for o in outcomes), [(o.event, o.error) for o in outcomes if not o.ok]
    return outcomes


def ev(eid: str, kind: str, sub: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "at": at, "subscription": sub, **fields}


def checkout(eid: str, sub: str, at: str, plan: str) -> dict[str, Any]:
    return {"id": eid, "type": "checkout", "at": at, "subscription": sub, "plan": plan,
            "storefront": "web", "customer": {"id": f"c-{sub}", "country": "DE"}}


def wire(figures: AccrualFigures, currency: str) -> tuple[str, ...]:
    return tuple(figures.to_wire(currency).values())


# -- exact figures ----------------------------------------------------------------------


def test_bundled_log_by_month() -> None:
    acc = Accrual.from_outcomes(bundled(), STREAMING)
    months = {k: wire(f, k[0]) for k, f in acc.by_month().items()}
    # paid, refunded, recognised, deferred, receivable, unbilled
    assert months == {
        ("EUR", "2026-11"): ("10.92", "0.00", "5.82", "5.10", "0.00", "0.00"),
        ("EUR", "2026-12"): ("120.84", "0.00", "30.42", "95.52", "0.00", "0.00"),
        ("EUR", "2027-01"): ("0.00", "0.00", "13.34", "82.18", "0.00", "0.00"),
        ("JPY", "2026-12"): ("1091", "352", "739", "0", "0", "0"),
        ("JPY", "2027-01"): ("0", "0", "0", "0", "0", "0"),
        ("USD", "2026-12"): ("25.04", "0.00", "21.92", "3.12", "0.00", "0.00"),
        ("USD", "2027-01"): ("0.00", "0.00", "3.12", "0.00", "0.00", "0.00"),
    }


def test_bundled_log_charge_schedules() -> None:
    acc = Accrual.from_outcomes(bundled(), STREAMING)
    # a monthly charge from the 15th: 16 of 30 days in November, the rest in December
    assert acc.schedule("s1:1") == {"2026-11": D("5.82"), "2026-12": D("5.10")}
    # the upgrade's proration credit (9.48) moves the unused days of s3:1 to s3:2, which
    # recognises its full price (13.54 = 4.06 paid + 9.48 credit) over 21 days
    assert acc.schedule("s3:1") == {"2026-12": D("4.51")}
    assert acc.schedule("s3:2") == {"2026-12": D("12.90"), "2027-01": D("0.64")}
    # a prorated refund of the unused 10 days: the 21 days served stay recognised
    assert acc.schedule("s8:1") == {"2026-12": D("739")}
    # the annual B2B plan, paid on 20 December for a year from 1 December: by days
    annual = acc.schedule("s9:1")
    assert list(annual) == ["2026-12", *(f"2027-{m:02d}" for m in range(1, 12))]
    assert annual["2026-12"] == D("8.41") and annual["2027-02"] == D("7.59")
    assert sum(annual.values()) == D("99.00")


def test_an_annual_plan_paid_in_march_recognises_a_twelfth_a_month_by_days() -> None:
    rules = revrules.load_text(YEARLY, "yearly.rr")
    outcomes = run(rules, [checkout("c", "a", "2027-03-01T10:00:00Z", "annual"),
                           ev("p", "payment_succeeded", "a", "2027-03-01T10:00:05Z")])
    acc = Accrual.from_outcomes(outcomes, rules)
    parts = acc.schedule("a:1")
    # 120.00 over 366 days (2027-03-01 .. 2028-03-01 holds 29 February 2028)
    assert parts["2027-03"] == D("10.16")  # round(120 × 31 / 366)
    assert parts["2027-04"] == D("9.84")   # round(120 × 61 / 366) − 10.16
    assert parts["2028-02"] == D("9.51")   # the last month takes the residue
    assert len(parts) == 12 and sum(parts.values()) == D("120.00")
    totals = acc.totals()["EUR"]
    assert (totals.paid, totals.recognised, totals.deferred) == (
        D("120.00"), D("10.16"), D("109.84"))


def test_receivable_and_unbilled_while_a_charge_is_unpaid() -> None:
    rules = revrules.load_text(YEARLY, "yearly.rr")
    outcomes = run(rules, [checkout("c", "m", "2027-03-01T10:00:00Z", "monthly"),
                           ev("p", "payment_succeeded", "m", "2027-03-01T10:00:05Z"),
                           ev("r", "renewal_due", "m", "2027-04-01"),
                           {"id": "t", "type": "tick", "at": "2027-05-20"}])  # unpaid
    acc = Accrual.from_outcomes(outcomes, rules)
    months = acc.by_month()
    april = months[("EUR", "2027-04")]
    assert (april.recognised, april.receivable, april.unbilled) == (D("0"), D("10.00"),
                                                                    D("10.00"))
    march = months[("EUR", "2027-03")]
    assert (march.recognised, march.deferred) == (D("10.00"), D("0"))
    assert Ledger.from_outcomes(outcomes, rules).by_month()[("EUR", "2027-04")].outstanding \
        == april.receivable


def test_a_refund_above_what_is_deferred_reverses_recognised_revenue() -> None:
    rules = revrules.load_text(YEARLY + "lifecycle { refund full }\n", "yearly.rr")
    outcomes = run(rules, [checkout("c", "m", "2027-03-01T10:00:00Z", "monthly"),
                           ev("p", "payment_succeeded", "m", "2027-03-01T10:00:05Z"),
                           ev("x", "refund_requested", "m", "2027-03-21T10:00:00Z")])
    acc = Accrual.from_outcomes(outcomes, rules)
    march = acc.by_month()[("EUR", "2027-03")]
    # 20 of 31 days served (6.45), then all 10.00 given back: recognised 0 in the end
    assert (march.paid, march.refunded, march.recognised, march.deferred) == (
        D("10.00"), D("10.00"), D("0.00"), D("0"))


# -- identities -------------------------------------------------------------------------


def check_identities(rules: revrules.Ruleset, outcomes: list[Outcome]) -> Accrual:
    """recognised + deferred = paid − refunded at every month end (paid and refunded
    summed from the revenue events themselves), receivable = the ledger's outstanding,
    and every paid charge recognised exactly."""
    acc = Accrual.from_outcomes(outcomes, rules)
    cash: dict[tuple[str, str], Decimal] = {}
    for o in outcomes:
        for e in o.events if o.ok else ():
            month = month_of_day(local_date(e.at, rules.model.timezone))
            if e.type == "payment.succeeded":
                cash[(e.currency, month)] = cash.get((e.currency, month), D(0)) + e.net
            elif e.type == "payment.refunded":
                cash[(e.currency, month)] = cash.get((e.currency, month), D(0)) - e.net
    recognised: dict[str, Decimal] = {}
    paid: dict[str, Decimal] = {}
    by_month = acc.by_month()
    for (currency, month), f in by_month.items():
        recognised[currency] = recognised.get(currency, D(0)) + f.recognised
        paid[currency] = paid.get(currency, D(0)) + cash.get((currency, month), D(0))
        assert f.paid - f.refunded == cash.get((currency, month), D(0)), (currency, month)
        assert recognised[currency] + f.deferred == paid[currency], (currency, month, f)
        assert f.receivable >= f.unbilled >= 0 and f.deferred >= 0, (currency, month, f)
    if rules.model.timezone == "UTC":
        ledger = Ledger.from_outcomes(outcomes, rules)
        for key, f in ledger.by_month().items():
            mine = by_month.get(key)
            if mine is not None:
                assert mine.receivable == f.outstanding, key
                assert mine.paid - mine.refunded == f.net, key
    for key, charge in acc.charges.items():
        ops = {op.kind for op in charge.ops}
        if "pay" in ops and not ops & {"refund", "credit_out", "credit_in", "cancel", "pause"}:
            assert sum(acc.schedule(key).values()) == charge.net, key
    return acc


def test_generated_logs_tie_out_and_periods_are_the_engines() -> None:
    for seed in (1, 4):
        log = generate(STREAMING, customers=30, months=13, seed=seed)
        outcomes = run(STREAMING, log)
        check_identities(STREAMING, outcomes)
        acc = Accrual.fold((), STREAMING)
        compared = 0
        for o in outcomes:
            acc = acc.extend(o.events)
            for e in o.events:
                sub = o.state.subscriptions.get(e.subscription)
                charge = sub.charge if sub is not None else None
                if e.amount and e.charge and charge is not None and charge.id == e.charge \
                        and e.type.startswith("subscription."):
                    mine = acc.charges[e.charge]
                    assert (mine.start, mine.end) == (charge.period_start, charge.period_end)
                    compared += 1
        assert compared > 100


def test_the_view_is_additive_over_a_split_by_subscription() -> None:
    outcomes = run(STREAMING, generate(STREAMING, customers=20, months=8, seed=9))
    events = [e for o in outcomes for e in o.events]
    whole = Accrual.fold(events, STREAMING)
    subs = sorted({e.subscription for e in events})
    half = set(subs[::2])
    a = Accrual.fold([e for e in events if e.subscription in half], STREAMING)
    b = Accrual.fold([e for e in events if e.subscription not in half], STREAMING)
    assert (a + b).rows() == whole.rows()
    assert (b + a).by_month() == whole.by_month()


def test_the_bundled_log_ties_out() -> None:
    acc = check_identities(STREAMING, bundled())
    assert acc.totals()["EUR"].recognised == D("49.58")


@settings(max_examples=int(os.environ.get("REVRULES_EXAMPLES", "15")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_random_logs_tie_out(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(max_depth=2), label="ruleset"), "gen.rr")
    log = data.draw(event_sequences(rules, max_size=10), label="events")
    _, outcomes = Engine(rules).run(log)
    check_identities(rules, list(outcomes))
