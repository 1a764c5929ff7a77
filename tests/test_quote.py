"""Engine.quote: what an event would charge, exactly as apply decides it, writing nothing."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import event as label
from hypothesis import strategies as st

import revrules
from revrules import wire
from revrules.quoting import quote_to_wire, tick_time
from revrules.transaction import Tx
from revrules.testing import customers, event_sequences, rulesets

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
D = Decimal
PROPERTY = settings(max_examples=int(os.environ.get("REVRULES_QUOTE_EXAMPLES", "25")),
                    deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def engine() -> revrules.Engine:
    return revrules.Engine(revrules.load(STREAMING))


def checkout(at: str, plan: str = "premium_monthly", storefront: str = "web_eu",
             sub: str = "s1", code: str | None = None, **customer: Any) -> dict[str, Any]:
    event = {"id": f"co-{sub}-{at}", "type": "checkout", "at": at, "subscription": sub,
             "storefront": storefront, "plan": plan,
             "customer": {"id": "c1", "country": "DE", **customer}}
    if code is not None:
        event["code"] = code
    return event


def run(engine: revrules.Engine, *events: dict[str, Any]) -> revrules.State:
    state = revrules.State()
    for event in events:
        out = engine.apply(state, event)
        assert out.ok, out.error
        state = out.state
    return state


def figures(q: revrules.Quote | revrules.Decision) -> tuple[Any, ...]:
    return (q.kind, q.currency, q.list, q.discounts, q.credit, q.tax, q.net, q.total, q.psp,
            q.next_charge, q.due)


def test_checkout_with_a_promotion_and_vat(engine: revrules.Engine) -> None:
    event = checkout("2026-11-28T10:00:00Z", code="BF2026", trials_used=1)
    q = engine.quote(event)
    assert (q.kind, q.currency, q.list, q.discounts, q.discount, q.credit, q.tax, q.net,
            q.total, q.psp, q.trial_days, q.charge_date, q.next_charge) == (
        "charge", "EUR", D("12.99"), (revrules.Discount("black_friday", D("6.50")),),
        D("6.50"), D("0.00"), D("1.04"), D("5.45"), D("6.49"), "stripe", 0,
        dt.date(2026, 11, 28), dt.date(2026, 12, 28))
    assert q.reasons == ("trial_ok: trial already used",)
    decision = engine.apply(revrules.State(), event).decisions[0]
    assert figures(q) == figures(decision) and q.trace == decision.trace


def test_a_granted_trial_is_quoted_at_its_first_charge(engine: revrules.Engine) -> None:
    event = checkout("2026-11-28T10:00:00Z", code="BF2026")
    q = engine.quote(event)
    assert (q.trial_days, q.charge_date, q.list, q.discounts, q.tax, q.net, q.total, q.psp,
            q.next_charge) == (
        14, dt.date(2026, 12, 12), D("12.99"), (revrules.Discount("black_friday", D("6.50")),),
        D("1.04"), D("5.45"), D("6.49"), "stripe", dt.date(2027, 1, 12))
    # apply charges nothing now; the trial-end tick charges what the quote said
    started = engine.apply(revrules.State(), event)
    assert (started.decisions[0].total, started.decisions[0].trial_days) == (D("0.00"), 14)
    tick = engine.apply(started.state, {"id": "t", "type": "tick", "at": "2026-12-12"})
    assert figures(q) == figures(tick.decisions[0])


def test_a_renewal_after_a_scheduled_price_with_and_without_consent(
        engine: revrules.Engine) -> None:
    state = run(engine, checkout("2027-01-10T09:00:00Z", trials_used=1),
                {"id": "p1", "type": "payment_succeeded", "at": "2027-01-10T09:05:00Z",
                 "subscription": "s1"})
    renewal = {"id": "r1", "type": "renewal_due", "at": "2027-02-10T12:00:00Z",
               "subscription": "s1"}
    held = engine.quote(renewal, state)
    assert (held.kind, held.list, held.tax, held.total, held.charge_date, held.next_charge) == (
        "charge", D("12.99"), D("2.07"), D("12.99"), dt.date(2027, 2, 10),
        dt.date(2027, 3, 10))
    assert held.reasons == ("held at the old price EUR 12.99 until the customer consents to "
                            "EUR 13.99 from 2027-02-01 (streaming.rr:43:3)",)
    out = engine.apply(state, renewal)
    assert figures(held) == figures(out.decisions[0])
    state = out.state
    for event in ({"id": "p2", "type": "payment_succeeded", "at": "2027-02-10T12:05:00Z",
                   "subscription": "s1"},
                  {"id": "ok", "type": "consent_given", "at": "2027-02-15T08:00:00Z",
                   "subscription": "s1"}):
        out = engine.apply(state, event)
        assert out.ok, out.error
        state = out.state
    renewal = {"id": "r2", "type": "renewal_due", "at": "2027-03-10T12:00:00Z",
               "subscription": "s1"}
    consented = engine.quote(renewal, state)
    assert (consented.list, consented.tax, consented.net, consented.total,
            consented.reasons) == (D("13.99"), D("2.23"), D("11.76"), D("13.99"), ())
    assert figures(consented) == figures(engine.apply(state, renewal).decisions[0])


def test_an_immediate_prorated_upgrade(engine: revrules.Engine) -> None:
    state = run(engine, checkout("2027-01-01T09:00:00Z", plan="basic_monthly"),
                {"id": "p1", "type": "payment_succeeded", "at": "2027-01-01T09:05:00Z",
                 "subscription": "s1"})
    change = {"id": "up", "type": "plan_change_requested", "at": "2027-01-16T10:00:00Z",
              "subscription": "s1", "plan": "premium_monthly"}
    q = engine.quote(change, state)
    # 16 unused of 31 days: 12.99 × 16/31 = 6.70 charged, 6.99 × 16/31 = 3.61 credited
    assert (q.kind, q.list, q.credit, q.tax, q.net, q.total, q.psp, q.charge_date) == (
        "charge", D("6.70"), D("3.61"), D("0.49"), D("2.60"), D("3.09"), "stripe",
        dt.date(2027, 1, 16))
    assert q.reasons == ("16 unused of 31 days",)
    assert figures(q) == figures(engine.apply(state, change).decisions[0])


def test_a_quote_writes_nothing(engine: revrules.Engine) -> None:
    state = run(engine, checkout("2027-01-01T09:00:00Z", plan="basic_monthly"))
    before = wire.state_to_json(state)
    q = engine.quote(checkout("2026-11-28T09:00:00Z", sub="s2", code="BF2026"), state)
    assert q.total == D("6.49")  # the code is redeemed in the throw-away transaction only
    with pytest.raises(revrules.QuoteError) as caught:  # the open charge is unpaid
        engine.quote({"id": "co-s1-2027-01-01T09:00:00Z", "type": "renewal_due",
                      "at": "2027-02-01T12:00:00Z", "subscription": "s1"}, state)
    assert caught.value.code == "past_due"
    assert wire.state_to_json(state) == before
    # an id already applied is not a replay for a quote: nothing is applied
    assert engine.quote(checkout("2027-01-01T09:00:00Z", sub="s3"), state).list == D("12.99")


@pytest.mark.parametrize(("event", "state", "code"), [
    ({"id": "t", "type": "tick", "at": "2027-01-01"}, None, "not_quotable"),
    ({"id": "p", "type": "payment_succeeded", "at": "2027-01-01", "subscription": "s1"},
     None, "not_quotable"),
    ({"type": "checkout"}, None, "missing_field"),
    ("not an event", None, "bad_event"),
    ({"id": "r", "type": "renewal_due", "at": "2027-01-01", "subscription": "nope"}, None,
     "unknown_subscription"),
    ({"id": "c", "type": "checkout", "at": "2027-01-01", "subscription": "s1",
      "storefront": "b2b", "plan": "premium_monthly", "customer": {"id": "c1"}}, None,
     "not_sold"),
    ({"id": "c", "type": "checkout", "at": "2027-01-01", "subscription": "s1",
      "storefront": "web_eu", "plan": "premium_monthly", "customer": {"id": "c1"}},
     "not a state", "bad_state"),
])
def test_a_bad_event_gives_a_stable_error(engine: revrules.Engine, event: Any, state: Any,
                                          code: str) -> None:
    with pytest.raises(revrules.QuoteError) as caught:
        engine.quote(event, state)
    assert caught.value.code == code and caught.value.message


def test_a_renewal_not_due_is_refused_as_apply_refuses_it(engine: revrules.Engine) -> None:
    state = run(engine, checkout("2027-01-01T09:00:00Z", plan="basic_monthly"),
                {"id": "p1", "type": "payment_succeeded", "at": "2027-01-01T09:05:00Z",
                 "subscription": "s1"})
    early = {"id": "r", "type": "renewal_due", "at": "2027-01-20", "subscription": "s1"}
    with pytest.raises(revrules.QuoteError) as caught:
        engine.quote(early, state)
    out = engine.apply(state, early)
    assert out.error is not None
    assert (caught.value.code, caught.value.message) == (out.error.code, out.error.message) \
        == ("not_due", "subscription 's1' renews on 2027-02-01, not 2027-01-20")


# -- agreement with apply, over generated rulesets ------------------------------------


def _agree_with_checkout(engine: revrules.Engine, state: revrules.State,
                         checkout: dict[str, Any]) -> None:
    before = state
    try:
        q = engine.quote(checkout, state)
    except revrules.QuoteError as exc:
        q, error = None, exc
    assert state is before
    out = engine.apply(state, checkout)
    label("checkout: " + ("refused" if not out.ok else
                          "trial" if out.decisions[0].trial_days else "charged"))
    if not out.ok:
        assert q is None and out.error is not None
        assert (error.code, error.message) == (out.error.code, out.error.message)
        return
    decision = out.decisions[0]
    if out.state.subscriptions[decision.subscription].status != "trialing":
        assert q is not None, error
        assert figures(q) == figures(decision)
        assert (q.trial_days, q.charge_date, q.trace) == (0, out.state.subscriptions[
            decision.subscription].started, decision.trace)
        return
    # a granted trial: the quote is what the trial-end settlement charges
    day = decision.next_charge
    assert day is not None
    tick = engine.apply(out.state, {"id": "quote-tick", "type": "tick", "at": tick_time(
        engine, day, out.state.clock).isoformat()})
    if not tick.ok:
        assert q is None and tick.error is not None and error.code == tick.error.code
        return
    assert q is not None, error
    charged = [d for d in tick.decisions if d.subscription == decision.subscription]
    assert (q.trial_days, q.charge_date) == (decision.trial_days, day)
    assert figures(q) == figures(charged[-1])


@PROPERTY
@given(st.data())
def test_quote_agrees_with_apply_on_checkouts(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    engine = revrules.Engine(rules)
    model = rules.model
    wanted = {"id": "q1", "type": "checkout",
             "at": data.draw(st.sampled_from(("2026-06-15T10:00:00Z", "2027-01-31T23:30:00Z",
                                              "2027-03-01T00:00:00Z")), label="at"),
             "subscription": "s1",
             "storefront": data.draw(st.sampled_from([s.name for s in model.storefronts])),
             "plan": data.draw(st.sampled_from([p.name for p in model.plans])),
             "customer": data.draw(customers(rules), label="customer")}
    codes = sorted(p.code for p in model.promotions if p.code)
    if codes and data.draw(st.booleans()):
        wanted["code"] = data.draw(st.sampled_from(codes))
    _agree_with_checkout(engine, revrules.State(), wanted)


def _agree_on_subscriptions(engine: revrules.Engine, log: list[dict[str, Any]],
                            data: st.DataObject) -> None:
    state = revrules.State()
    for logged in log:
        state = engine.apply(state, logged).state
    snapshot = wire.state_to_json(state)
    plans = [p.name for p in engine.rules.model.plans]
    for sub_id in sorted(state.subscriptions.keys()):
        sub = state.subscriptions[sub_id]
        day = Tx(engine, state, revrules.Event("x", "tick", tick_time(engine, sub.started))
                 ).next_charge(sub)
        at = data.draw(st.sampled_from((f"{day.isoformat()}T12:00:00Z",
                                        (state.clock or tick_time(engine, day)).isoformat())))
        for ev in ({"id": "q-r", "type": "renewal_due", "at": at, "subscription": sub_id},
                   {"id": "q-c", "type": "plan_change_requested", "at": at,
                    "subscription": sub_id, "plan": data.draw(st.sampled_from(plans))}):
            try:
                q = engine.quote(ev, state)
            except revrules.QuoteError as exc:
                q, error = None, exc
            out = engine.apply(state, ev)
            label(f"{ev['type']}: " + ("refused" if not out.ok else out.decisions[-1].kind))
            if not out.ok:
                assert q is None and out.error is not None
                assert (error.code, error.message) == (out.error.code, out.error.message)
                continue
            assert q is not None, error
            mine = [d for d in out.decisions if d.subscription == sub_id]
            assert figures(q) == figures(mine[-1]) and q.reasons == mine[-1].reasons
            if ev["type"] == "renewal_due" and q.kind == "charge":
                assert q.charge_date == day
    assert wire.state_to_json(state) == snapshot  # quoting wrote nothing


@PROPERTY
@given(st.data())
def test_quote_agrees_with_apply_on_renewals_and_changes(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    engine = revrules.Engine(rules)
    _agree_on_subscriptions(engine, data.draw(event_sequences(rules, max_size=8), label="log"),
                            data)


@PROPERTY
@given(st.data())
def test_quote_agrees_with_apply_in_the_bundled_ruleset(data: st.DataObject) -> None:
    engine = _streaming()
    _agree_on_subscriptions(engine, data.draw(event_sequences(engine.rules, max_size=8),
                                              label="log"), data)


_ENGINES: dict[str, revrules.Engine] = {}


def _streaming() -> revrules.Engine:
    if "streaming" not in _ENGINES:
        _ENGINES["streaming"] = revrules.Engine(revrules.load(STREAMING))
    return _ENGINES["streaming"]


# -- the command line -----------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "revrules", "quote", *args],
                          capture_output=True, text=True, env=env, check=False)


def test_cli_prints_the_quote_as_json(engine: revrules.Engine, write: Any) -> None:
    event = checkout("2026-11-28T10:00:00Z", code="BF2026")
    done = _cli(str(STREAMING), write("ev.json", json.dumps(event)))
    assert done.returncode == 0, done.stderr
    assert done.stdout == wire.dumps(quote_to_wire(engine.quote(event))) + "\n"
    body = json.loads(done.stdout)
    assert (body["total"], body["tax"], body["trial_days"], body["charge_date"],
            body["discounts"]) == ("6.49", "1.04", 14, "2026-12-12",
                                   [{"rule": "black_friday", "amount": "6.50"}])


def test_cli_quotes_against_a_state(engine: revrules.Engine, write: Any) -> None:
    state = run(engine, checkout("2027-01-01T09:00:00Z", plan="basic_monthly"),
                {"id": "p1", "type": "payment_succeeded", "at": "2027-01-01T09:05:00Z",
                 "subscription": "s1"})
    path = write("state.json", wire.state_to_json(state))
    change = {"id": "up", "type": "plan_change_requested", "at": "2027-01-16T10:00:00Z",
              "subscription": "s1", "plan": "premium_monthly"}
    done = _cli(str(STREAMING), write("ev.json", json.dumps(change)), "--state", path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["total"] == "3.09"
    assert Path(path).read_text(encoding="utf-8") == wire.state_to_json(state)


def test_cli_exit_codes(write: Any) -> None:
    tick = write("tick.json", '{"id": "t", "type": "tick", "at": "2027-01-01"}')
    done = _cli(str(STREAMING), tick)
    assert (done.returncode, json.loads(done.stdout)["error"]["code"]) == (1, "not_quotable")
    assert _cli(str(STREAMING), write("bad.json", "{")).returncode == 2
    assert _cli(str(STREAMING), str(Path(tick).parent / "missing.json")).returncode == 2
    assert _cli(str(STREAMING), tick, "--state", write("s.json", "[]")).returncode == 2
    assert _cli(write("bad.rr", "ruleset"), tick).returncode == 2


def test_a_trial_of_zero_days_is_quoted_at_its_first_charge() -> None:
    rules = revrules.load_text("""ruleset d
storefront web { channel web currency EUR tax inclusive psp stripe }
product p { entitlements hd }
plan m { product p every 1 month trial 0 days price web EUR 9.99 }
tax vat { rate 19% }
""")
    engine = revrules.Engine(rules)
    event = {"id": "e1", "type": "checkout", "at": "2027-01-31T10:00:00Z",
             "subscription": "s1", "storefront": "web", "plan": "m", "customer": {"id": "c1"}}
    q = engine.quote(event)
    assert (q.trial_days, q.charge_date, q.total, q.tax, q.next_charge) == (
        0, dt.date(2027, 1, 31), D("9.99"), D("1.60"), dt.date(2027, 2, 28))
    started = engine.apply(revrules.State(), event)
    assert started.decisions[0].total == D("0.00")  # nothing charged at the checkout itself
    tick = engine.apply(started.state, {"id": "t", "type": "tick", "at": "2027-01-31T11:00:00Z"})
    assert figures(q) == figures(tick.decisions[0])


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 3)), min_size=1, max_size=12),
       st.lists(st.tuples(st.sampled_from(["web_eu", "web_us", "web_jp", "ios", "b2b"]),
                          st.sampled_from(["DE", "FR", "JP", "US"])), min_size=1, max_size=6))
def test_remembered_undiscounted_figures_are_those_of_the_charge(
        engine: revrules.Engine, amounts: list[tuple[int, int]],
        places: list[tuple[str, str]]) -> None:
    # pricing.quote remembers an undiscounted charge's figures per (storefront, rounding,
    # list price, tax rates): each must be what computing them afresh gives, for amounts
    # made and dropped one after the other and the same amount in other storefronts and
    # countries
    import immutables

    from revrules import pricing
    from revrules.state import make_subscription

    rules = engine.rules
    event = revrules.events.parse_event({"id": "q", "type": "tick", "at": "2026-11-15"})
    tx = Tx(engine, revrules.State(), event)
    for units, exponent in amounts:
        amount = Decimal(units).scaleb(-exponent)  # 12.9 and 12.90 alike
        for storefront, country in places:
            customer = immutables.Map({name: a.default for name, a in
                                       engine.attributes.items()} | {"country": country})
            sub = make_subscription("s1", "c1", customer, storefront, "premium_monthly",
                                    "active", dt.date(2026, 11, 15), 0, 0, amount)
            got = tx.quote(sub, amount, (), Decimal(0), 1, [])
            ctx = tx.ctx(sub, 1)
            rates = pricing.tax_rates(rules, ctx, [], engine.trace)
            fresh = pricing._figures(rules, rules.rounding, ctx.storefront, amount, (),
                                     Decimal(0), rates)
            assert (got.list, got.credit, got.tax, got.net, got.total, got.gross_ex,
                    got.discount_ex, got.credit_ex, got.recurring) == fresh[:9]
            assert [str(x) for x in (got.list, got.tax, got.net, got.total, got.recurring)] \
                == [str(x) for x in (fresh[0], fresh[2], fresh[3], fresh[4], fresh[8])]
        del amount
