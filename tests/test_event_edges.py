"""Bad events at the edge, the safety net in ``Engine.apply``, payments that must match
their charge, and time order (LANGUAGE.md §5.1)."""

from __future__ import annotations

from conftest import same_but_remembered
import datetime as dt
import inspect
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import immutables
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State, emission, pricing, transaction, wire
from revrules import engine as engine_module, runtime as rt
from revrules.transitions import (checkout, pauses, payments, plan_changes, refunds, renewals,
                                  store)
from revrules.events import EventError, parse_event
from revrules.nodes import Duration
from revrules.results import Decision

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = (checkout, payments, renewals, plan_changes, pauses, refunds, store)
STREAMING = revrules.load(str(ROOT / "rulesets" / "streaming.rr"))
ENGINE = Engine(STREAMING)

LIFE = """
ruleset edges version "1"
customer { country: string  score: decimal = 0  born: date = 2000-01-01  age: int = 0 }
storefront web { channel web currency EUR tax exclusive psp stripe, adyen, paypal }
product a { entitlements x }
plan monthly { product a  every 1 month  price web EUR 10.00 }
dunning soft { retry after 2 days  retry via adyen  grace 5 days  then cancel }
lifecycle {
  pause max 1 month
  cancel immediate
  refund full within 14 days, prorated after
}
"""
LIFE_ENGINE = Engine(revrules.load_text(LIFE, "edges.rr"))


class Log:
    """Events in order against one engine; each ``send`` checks ``ok``."""

    def __init__(self, engine: Engine = LIFE_ENGINE) -> None:
        self.engine = engine
        self.state = State()
        self.n = 0

    def send(self, ok: bool | None = True, **event: Any) -> revrules.Outcome:
        self.n += 1
        event.setdefault("id", f"e{self.n}")
        before = self.state
        outcome = self.engine.apply(before, event)
        if ok is not None:
            assert outcome.ok is ok, outcome.error
        if not outcome.ok:
            assert same_but_remembered(before, outcome.state)  # nothing changed
        self.state = outcome.state
        return outcome

    def fails(self, code: str, **event: Any) -> str:
        outcome = self.send(ok=False, **event)
        assert outcome.error is not None
        assert outcome.error.code == code, outcome.error
        return outcome.error.message

    def start(self, at: str = "2027-01-01", sub: str = "s", pay: bool = True) -> None:
        self.send(type="checkout", at=at, subscription=sub, storefront="web", plan="monthly",
                  customer={"id": "c" + sub, "country": "DE"})
        if pay:
            self.send(type="payment_succeeded", at=at, subscription=sub)


def error_code(event: dict[str, Any], engine: Engine = ENGINE,
               state: State | None = None) -> str | None:
    before = state if state is not None else State()
    outcome = engine.apply(before, event)
    if outcome.ok:
        return None
    assert same_but_remembered(before, outcome.state)
    assert outcome.error is not None
    return outcome.error.code


# -- bad events: ranges at the edge ----------------------------------------------------


@pytest.mark.parametrize("at", [
    "9999-01-01", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "0001-01-01",
    "1899-12-31T23:59:59Z", "3000-01-01", "2999-12-31T23:00:00-05:00",
    "1900-01-01T00:30:00+01:00",
])
def test_times_outside_the_window_are_refused(at: str) -> None:
    with pytest.raises(EventError) as info:
        parse_event({"id": "e1", "type": "tick", "at": at})
    assert info.value.code == "out_of_range"
    assert "1900-01-01" in info.value.message and "2999-12-31" in info.value.message
    assert error_code({"id": "e1", "type": "tick", "at": at}) == "out_of_range"


@pytest.mark.parametrize("at", ["1900-01-01", "2999-12-31T23:59:59Z",
                                "3000-01-01T00:30:00+01:00"])
def test_times_at_the_window_ends_are_accepted(at: str) -> None:
    assert error_code({"id": "e1", "type": "tick", "at": at}) is None


def test_pause_requested_at_the_end_of_time_is_refused() -> None:
    log = Log()
    log.start()
    log.fails("out_of_range", type="pause_requested", at="9999-12-31T23:59:59Z",
              subscription="s")


@pytest.mark.parametrize("amount", ["1" * 40, "1e400", 10**40, "1E+15", "1000000000000000",
                                    "0." + "0" * 30 + "1", "1e-400", "0" * 70 + "1"])
def test_huge_or_tiny_amounts_are_refused(amount: object) -> None:
    log = Log()
    log.start()
    with pytest.raises(EventError) as info:
        parse_event({"id": "x", "type": "refund_requested", "at": "2027-01-02",
                     "subscription": "s", "amount": amount})
    assert info.value.code == "out_of_range"
    log.fails("out_of_range", type="refund_requested", at="2027-01-02", subscription="s",
              amount=amount)


@pytest.mark.parametrize("amount, value", [("999999999999999.999999", "999999999999999.999999"),
                                           ("12.99", "12.99"), ("1E+2", "100"), (7, "7")])
def test_amounts_inside_the_limits_parse(amount: object, value: str) -> None:
    event = parse_event({"id": "x", "type": "refund_requested", "at": "2027-01-02",
                         "subscription": "s", "amount": amount})
    assert event.amount == Decimal(value)


@pytest.mark.parametrize("field", ["id", "subscription", "code"])
def test_long_strings_are_refused(field: str) -> None:
    event: dict[str, Any] = {"id": "e1", "type": "checkout", "at": "2027-01-01",
                             "subscription": "s", "storefront": "web", "plan": "monthly",
                             "customer": {"id": "c", "country": "DE"}}
    event[field] = "x" * 256
    assert error_code(event, LIFE_ENGINE) != "too_long"
    event[field] = "x" * 257
    assert error_code(event, LIFE_ENGINE) == "too_long"


@pytest.mark.parametrize("customer, code", [
    ({"id": "c" * 257}, "too_long"),
    ({"id": "c", "country": "D" * 257}, "too_long"),
    ({"id": "c", "country": "DE", "age": 10**40}, "out_of_range"),
    ({"id": "c", "country": "DE", "age": 1.5}, "bad_field"),
    ({"id": "c", "country": ["DE"]}, "bad_field"),
    ({"id": "c", "country": {"x": 1}}, "bad_field"),
    ({"id": "c", "country": "DE", "score": "NaN"}, "bad_field"),
    ({"id": "c", "country": "DE", "score": "sNaN"}, "bad_field"),
    ({"id": "c", "country": "DE", "score": "1e999999999"}, "out_of_range"),
    ({"id": "c", "country": "DE", "score": "Infinity"}, "bad_field"),
    ({"id": "c", "country": "DE", "born": "0001-01-01"}, "out_of_range"),
    ({"id": "c", "country": "DE", "born": "9999-12-31"}, "out_of_range"),
    ({"id": "c", "country": "DE", **{f"k{i}": i for i in range(300)}}, "too_long"),
])
def test_insane_customer_attributes_are_refused(customer: dict[str, Any], code: str) -> None:
    event = {"id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s",
             "storefront": "web", "plan": "monthly", "customer": customer}
    assert error_code(event, LIFE_ENGINE) == code


def test_a_negative_zero_attribute_is_stored_as_zero() -> None:
    log = Log()
    log.send(type="checkout", at="2027-01-01", subscription="s", storefront="web",
             plan="monthly", customer={"id": "c", "country": "DE", "score": "-0.00"})
    score = log.state.subscriptions["s"].customer["score"]
    assert score == 0 and not score.is_signed()
    assert '"-0' not in wire.state_to_json(log.state)


def test_attempt_is_bounded() -> None:
    log = Log()
    log.start(pay=False)
    log.fails("out_of_range", type="payment_failed", at="2027-01-01", subscription="s",
              attempt=10**40)


def test_date_arithmetic_past_the_calendar_is_a_stable_error() -> None:
    for day, duration in [(dt.date(2999, 12, 31), Duration(8000, "year")),
                          (dt.date(2999, 12, 31), Duration(10**12, "month")),
                          (dt.date(2999, 12, 31), Duration(10**10, "day"))]:
        with pytest.raises(rt.EvaluationError) as info:
            rt.add(day, duration)
        assert info.value.code == "out_of_range"
        with pytest.raises(rt.EvaluationError):
            rt.add_periods(day, duration, 3)
    with pytest.raises(rt.EvaluationError):
        rt.start_of(dt.date(1, 1, 1), "Etc/GMT-14")


def _far_engine(old: str, new: str) -> Engine | None:
    try:
        return Engine(revrules.load_text(LIFE.replace(old, new), "far.rr"))
    except revrules.RulesetError:
        return None  # a checker that bounds durations refuses it first: just as good


def test_a_pause_or_period_past_the_calendar_gives_out_of_range() -> None:
    engine = _far_engine("every 1 month", "every 1000000000000 months")
    if engine is not None:
        log = Log(engine)
        log.fails("out_of_range", type="checkout", at="2999-12-01", subscription="s",
                  storefront="web", plan="monthly", customer={"id": "c", "country": "DE"})
    engine = _far_engine("pause max 1 month", "pause max 8000 years")
    if engine is not None:
        log = Log(engine)
        log.start(at="2999-12-01")
        message = log.fails("out_of_range", type="pause_requested", at="2999-12-31T12:00:00Z",
                            subscription="s")
        assert "past the end of the calendar" in message
        assert log.state.subscriptions["s"].status == "active"


def test_eval_goes_on_after_bad_events(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from revrules.cli import main
    events = tmp_path / "events.jsonl"
    lines = [
        {"id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s",
         "storefront": "web_eu", "plan": "basic_monthly", "customer": {"id": "c",
                                                                     "country": "DE"}},
        {"id": "e2", "type": "tick", "at": "9999-01-01"},
        {"id": "e3", "type": "refund_requested", "at": "2027-01-02", "subscription": "s",
         "amount": "1e400"},
        {"id": "e4", "type": "pause_requested", "at": "9999-12-31T23:59:59Z",
         "subscription": "s"},
        {"id": "e5", "type": "payment_succeeded", "at": "2027-01-02", "subscription": "s"},
    ]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines)
                      + '{"id": "e6", "type": "refund_requested", "at": "2027-01-03", '
                        '"subscription": "s", "amount": 1' + "0" * 40 + "}\n", "utf-8")
    state_out = tmp_path / "state.json"
    status = main(["eval", str(ROOT / "rulesets" / "streaming.rr"), str(events),
                   "--state-out", str(state_out)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert [(o["event"], o["ok"], o.get("error", {}).get("code")) for o in out] == [
        ("e1", True, None), ("e2", False, "out_of_range"), ("e3", False, "out_of_range"),
        ("e4", False, "out_of_range"), ("e5", True, None), ("e6", False, "out_of_range")]
    assert wire.state_from_json(state_out.read_text("utf-8")).subscriptions["s"].charge is None


EXTREME = st.one_of(
    st.integers(), st.integers(-(10**60), 10**60), st.text(max_size=300),
    st.sampled_from(["1e400", "-0", "0", "-0.00", "NaN", "sNaN", "Infinity", "1e-400",
                     "1" * 40, "12.99", "0.001", "9" * 15, "1E+15", " 1 ", "", "JPY", "EUR",
                     "stripe", "adyen", "nobody", "REFUND", "DID_RENEW", "EXPIRED",
                     "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00", "0001-01-01",
                     "9999-12-31", "2999-12-31T23:59:59-14:00", "1900-01-01T00:00:00+14:00",
                     "2027-02-30", "w1", "s1", "s8", "s13", "i1", "premium_monthly", "ios"]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30),
                 timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=14)),
                                            dt.timezone(dt.timedelta(hours=-12))])
                 ).map(lambda d: d.isoformat()),
    st.dictionaries(st.sampled_from(["id", "country", "trials_used", "segment"]),
                    st.one_of(st.integers(), st.text(max_size=300), st.sampled_from(
                        ["NaN", "1e999999999", "0001-01-01", "-0"])), max_size=4),
)


EXTREME_AT = st.one_of(st.sampled_from(["2027-01-02", "2027-02-01T10:00:00Z",
                                        "9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00",
                                        "2999-12-31T23:59:59Z", "1900-01-01"]), EXTREME)


@settings(max_examples=int(os.environ.get("REVRULES_FUZZ_EXAMPLES", "300")), deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(engine_module.EVENT_TYPES)),
                          st.sampled_from(["s1", "s2", "s8", "s9", "s13", "new"]), EXTREME_AT,
                          st.dictionaries(st.sampled_from(
                              ["amount", "currency", "psp", "attempt", "customer", "code",
                               "plan", "storefront", "notification", "subtype", "reason",
                               "reference", "id"]), EXTREME, max_size=3)),
                min_size=1, max_size=6))
def test_extreme_values_never_reach_the_safety_net(
        events: list[tuple[str, str, Any, dict[str, Any]]]) -> None:
    state = _EXAMPLE_STATE
    for n, (kind, sub, at, raw) in enumerate(events):
        event = {"id": f"x{n}", "type": kind, "at": at, "subscription": sub, **raw}
        outcome = ENGINE.apply(state, event)
        if not outcome.ok:
            assert same_but_remembered(state, outcome.state)
            assert outcome.error is not None
            assert outcome.error.code != "internal_error", (event, outcome.error)
        state = outcome.state
        wire.outcome_to_json(outcome)  # and the outcome prints


_EXAMPLE_STATE = ENGINE.run(json.loads(line) for line in (
    ROOT / "examples" / "events.jsonl").read_text("utf-8").splitlines())[0]


# -- the safety net --------------------------------------------------------------------


STORE_LOG = [
    {"type": "checkout", "at": "2026-11-28", "subscription": "bf", "storefront": "web_us",
     "plan": "premium_monthly", "customer": {"id": "cbf", "country": "US", "trials_used": 1},
     "code": "BF2026"},
    {"type": "payment_succeeded", "at": "2026-11-28", "subscription": "bf"},
    {"type": "pause_requested", "at": "2026-11-29", "subscription": "bf"},
    {"type": "refund_requested", "at": "2026-11-29", "subscription": "bf", "amount": "900.00"},
    {"type": "cancel_requested", "at": "2026-11-29", "subscription": "nobody"},
    # a renewal after a consent-required price rise: held at the old price
    {"type": "checkout", "at": "2027-01-10", "subscription": "w0", "storefront": "web_eu",
     "plan": "premium_monthly", "customer": {"id": "cw0", "country": "DE", "trials_used": 1}},
    {"type": "payment_succeeded", "at": "2027-01-10", "subscription": "w0"},
    {"type": "renewal_due", "at": "2027-02-10", "subscription": "w0"},
    {"type": "checkout", "at": "2027-01-01", "subscription": "i1", "storefront": "ios",
     "plan": "premium_monthly", "customer": {"id": "ci1", "country": "US", "trials_used": 1}},
    {"type": "store_notification", "at": "2027-01-01T00:00:05Z", "subscription": "i1",
     "notification": "SUBSCRIBED", "psp": "apple"},
    {"type": "store_notification", "at": "2027-02-01", "subscription": "i1",
     "notification": "DID_FAIL_TO_RENEW"},
    {"type": "store_notification", "at": "2027-02-02", "subscription": "i1",
     "notification": "DID_RENEW"},
    {"type": "store_notification", "at": "2027-02-03", "subscription": "i1",
     "notification": "PRICE_INCREASE", "subtype": "PENDING"},
    {"type": "store_notification", "at": "2027-02-04", "subscription": "i1",
     "notification": "PRICE_INCREASE", "subtype": "ACCEPTED"},
    {"type": "store_notification", "at": "2027-02-05", "subscription": "i1",
     "notification": "DID_CHANGE_RENEWAL_STATUS", "subtype": "AUTO_RENEW_DISABLED"},
    {"type": "store_notification", "at": "2027-02-06", "subscription": "i1",
     "notification": "DID_CHANGE_RENEWAL_STATUS", "subtype": "AUTO_RENEW_ENABLED"},
    {"type": "store_notification", "at": "2027-02-07", "subscription": "i1",
     "notification": "REFUND"},
    {"type": "checkout", "at": "2027-02-08", "subscription": "i2", "storefront": "ios",
     "plan": "premium_monthly", "customer": {"id": "ci2", "country": "US", "trials_used": 1}},
    {"type": "store_notification", "at": "2027-02-08", "subscription": "i2",
     "notification": "DID_FAIL_TO_RENEW"},
    {"type": "store_notification", "at": "2027-02-20", "subscription": "i2",
     "notification": "GRACE_PERIOD_EXPIRED"},
    {"type": "checkout", "at": "2027-02-21", "subscription": "i3", "storefront": "ios",
     "plan": "premium_monthly", "customer": {"id": "ci3", "country": "US", "trials_used": 1}},
    {"type": "store_notification", "at": "2027-02-21", "subscription": "i3",
     "notification": "SUBSCRIBED"},
    {"type": "store_notification", "at": "2027-02-22", "subscription": "i3",
     "notification": "EXPIRED"},
    {"type": "checkout", "at": "2027-02-23", "subscription": "w1", "storefront": "web_eu",
     "plan": "premium_monthly", "customer": {"id": "cw1", "country": "DE", "trials_used": 1}},
    {"type": "payment_succeeded", "at": "2027-02-23", "subscription": "w1"},
    {"type": "credit_granted", "at": "2027-02-24", "subscription": "w1", "amount": "2.00"},
    {"type": "renewal_due", "at": "2027-03-23", "subscription": "w1"},
    {"type": "payment_succeeded", "at": "2027-03-23", "subscription": "w1"},
    {"type": "pause_requested", "at": "2027-03-24", "subscription": "w1"},
    {"type": "resume_requested", "at": "2027-03-30", "subscription": "w1"},
    {"type": "pause_requested", "at": "2027-03-31", "subscription": "w1"},
    {"type": "tick", "at": "2027-07-15"},
    {"type": "consent_declined", "at": "2027-07-16", "subscription": "w1"},
    {"type": "consent_given", "at": "2027-07-16", "subscription": "w1"},
]


def _safety_pairs() -> list[tuple[State, dict[str, Any]]]:
    """(state before, event) for a few events of every type and every store action."""
    from revrules.generator import generate
    logs = [generate(STREAMING, 40, 14, seed=3), [
        {"id": f"st{i}", **e} for i, e in enumerate(STORE_LOG)]]
    pairs: list[tuple[State, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for log in logs:
        state = State()
        for event in log:
            key = event["type"] + ":" + str(event.get("notification", "")) + str(
                event.get("subtype", ""))
            if seen.get(key, 0) < 4 or event["id"].startswith("st"):
                seen[key] = seen.get(key, 0) + 1
                pairs.append((state, event))
            state = ENGINE.apply(state, event).state
    return pairs


def _targets() -> list[tuple[Any, str]]:
    """Every step of ``apply``: the transaction's methods, the functions of pricing,
    emission and every family of transitions (not their private helpers for messages),
    the runtime helpers, and the constructors
    and ``evolve`` each module calls, patched where they are looked up."""
    tx = engine_module._Tx
    names = sorted(name for name, value in vars(tx).items() if callable(value))
    targets: list[tuple[Any, str]] = [(tx, name) for name in names]
    for module in (pricing, emission, *FAMILIES):
        targets += [(module, name) for name, value in sorted(vars(module).items())
                    if inspect.isfunction(value) and value.__module__ == module.__name__
                    and not name.startswith("_")]
    targets += [(rt, name) for name in ("quantize", "money_str", "add", "add_periods",
                                        "percent_of", "prorate", "split_inclusive",
                                        "local_date", "start_of")]
    targets += [(module, name) for module, used in (
        (engine_module, ("evolve", "parse_event")),
        (transaction, ("evolve", "Decision", "State")),
        (emission, ("RevenueEvent",)),
        (pricing, ("Quote",)),
        (payments, ("evolve", "Charge", "Payment")),
        *((family, ("evolve",)) for family in FAMILIES if family is not payments),
    ) for name in used]
    return targets


def _step(owner: Any, name: str) -> str:
    return f"{getattr(owner, '__name__', owner)}.{name}"


class Boom(Exception):
    pass


def test_every_failure_inside_apply_becomes_internal_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _safety_pairs()
    types = {e["type"] for _, e in pairs}
    assert types == set(engine_module.EVENT_TYPES)
    normal = [ENGINE.apply(state, event) for state, event in pairs]
    assert all(o.ok for o in normal[:5])
    hit: dict[str, int] = {}
    faults = 0
    for owner, name in _targets():
        def boom(*args: Any, **kwargs: Any) -> Any:
            raise Boom("injected")
        with monkeypatch.context() as patch:
            if name.startswith("on_") and engine_module._HANDLERS.get(name[3:]) is getattr(
                    owner, name):
                patch.setitem(engine_module._HANDLERS, name[3:], boom)
            patch.setattr(owner, name, boom)
            for (state, event), expected in zip(pairs, normal, strict=True):
                outcome = ENGINE.apply(state, event)
                if outcome.error is not None and outcome.error.code == "internal_error":
                    faults += 1
                    hit[_step(owner, name)] = hit.get(_step(owner, name), 0) + 1
                    assert outcome.ok is False
                    assert outcome.state is state
                    assert outcome.event == event["id"]
                    assert outcome.decisions == () and outcome.events == ()
                    assert "Boom" in outcome.error.message
                    assert "Traceback" not in outcome.error.message
                    assert "\n" not in outcome.error.message
                else:
                    assert outcome == expected, (_step(owner, name), event)
    # every step was reached by some event, and each injection was caught
    missing = sorted(_step(o, n) for o, n in _targets() if _step(o, n) not in hit)
    assert missing == [], missing
    assert faults > 1000, faults
    print(f"faults injected: {faults} over {len(_targets())} steps and {len(pairs)} events")


def test_internal_error_in_eval_goes_on_and_writes_the_state(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from revrules.cli import main

    def boom(self: Any) -> None:
        raise ZeroDivisionError("x")
    monkeypatch.setitem(engine_module._HANDLERS, "tick", boom)
    state_out = tmp_path / "state.json"
    status = main(["eval", str(ROOT / "rulesets" / "streaming.rr"),
                   str(ROOT / "examples" / "events.jsonl"), "--state-out", str(state_out)])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 1
    assert len(out) == 22
    failed = [(o["event"], o["error"]["code"]) for o in out if not o["ok"]]
    assert [e for e, _ in failed][:1] == ["e13"]
    assert {c for _, c in failed} <= {"internal_error", "out_of_order", "past_due",
                                      "no_open_charge"}
    assert ("e13", "internal_error") in failed and ("e22", "internal_error") in failed
    assert "ZeroDivisionError" in out[12]["error"]["message"]
    assert state_out.exists()
    assert "e21" in wire.state_from_json(state_out.read_text("utf-8")).applied


# -- payments must match what they pay ------------------------------------------------


def test_a_payment_in_another_currency_amount_or_psp_settles_nothing() -> None:
    log = Log()
    log.start(pay=False)
    message = log.fails("currency_mismatch", type="payment_succeeded", at="2027-01-01",
                        subscription="s", amount="0.01", currency="JPY", psp="nobody")
    assert "JPY" in message and "EUR" in message
    log.fails("amount_mismatch", type="payment_succeeded", at="2027-01-01", subscription="s",
              amount="0.01", currency="EUR", psp="stripe")
    log.fails("amount_mismatch", type="payment_succeeded", at="2027-01-01", subscription="s",
              amount="10.01")
    log.fails("amount_mismatch", type="payment_succeeded", at="2027-01-01", subscription="s",
              amount="5.00")  # partial payments are refused
    log.fails("unknown_psp", type="payment_succeeded", at="2027-01-01", subscription="s",
              psp="nobody")
    log.fails("unknown_psp", type="payment_succeeded", at="2027-01-01", subscription="s",
              psp="adyen")  # listed by the storefront, but not the charge's PSP
    log.fails("bad_precision", type="payment_succeeded", at="2027-01-01", subscription="s",
              amount="10.001")
    log.fails("currency_mismatch", type="payment_failed", at="2027-01-01", subscription="s",
              currency="USD")
    assert log.state.subscriptions["s"].charge is not None
    out = log.send(type="payment_succeeded", at="2027-01-01", subscription="s",
                   amount="10.000", currency="eur", psp="stripe")
    assert [e.type for e in out.events] == ["payment.succeeded"]
    assert log.state.subscriptions["s"].charge is None


def test_a_retry_may_be_paid_through_its_retry_psp() -> None:
    log = Log()
    log.start(pay=False)
    log.send(type="payment_failed", at="2027-01-01T01:00:00Z", subscription="s")
    log.send(type="tick", at="2027-01-03")
    log.fails("unknown_psp", type="payment_succeeded", at="2027-01-03T01:00:00Z",
              subscription="s", psp="paypal")
    log.send(type="payment_succeeded", at="2027-01-03T01:00:00Z", subscription="s",
             psp="adyen", amount="10.00", currency="EUR")
    assert log.state.subscriptions["s"].status == "active"


def test_a_tolerance_can_be_set_and_is_zero_by_default() -> None:
    loose = Engine(LIFE_ENGINE.rules, payment_tolerance=Decimal("0.01"))
    log = Log(loose)
    log.start(pay=False)
    log.fails("amount_mismatch", type="payment_succeeded", at="2027-01-01", subscription="s",
              amount="9.98")
    out = log.send(type="payment_succeeded", at="2027-01-01", subscription="s", amount="9.99")
    assert out.events[0].amount == Decimal("10.00")  # the charge settles for what was decided


@pytest.mark.parametrize("amount, code", [("0", "bad_field"), ("-0", "bad_field"),
                                          ("0.00", "bad_field"), ("-0.00", "bad_field"),
                                          ("-1", "bad_field"), (0, "bad_field"),
                                          ("0.001", "bad_precision")])
def test_zero_and_negative_refunds_are_refused(amount: object, code: str) -> None:
    log = Log()
    log.start()
    log.fails(code, type="refund_requested", at="2027-01-02", subscription="s",
              amount=amount)
    assert log.state.subscriptions["s"].status == "active"


def test_a_store_refund_of_zero_is_refused() -> None:
    log = Log(ENGINE)
    log.send(type="checkout", at="2027-01-01", subscription="i", storefront="ios",
             plan="premium_monthly", customer={"id": "c", "country": "US", "trials_used": 1})
    log.send(type="store_notification", at="2027-01-01", subscription="i",
             notification="SUBSCRIBED")
    log.fails("bad_field", type="store_notification", at="2027-01-02", subscription="i",
              notification="REFUND", amount="0")


_NEGATIVE_ZERO = re.compile(r"-0(\.0*)?$")
currencies = st.sampled_from(["EUR", "JPY", "KWD", "USD", "CLF"])


@given(st.decimals(min_value=-1, max_value=1, allow_nan=False, allow_infinity=False),
       currencies)
def test_money_never_prints_a_negative_zero(amount: Decimal, currency: str) -> None:
    text = rt.money_str(amount, currency)
    assert not _NEGATIVE_ZERO.match(text), (amount, text)
    assert Decimal(text) == rt.quantize(amount, currency)
    wired = wire.decision_to_wire(Decision("s", "refund", currency, total=amount, net=-amount))
    for key in ("total", "net", "list", "tax"):
        assert not _NEGATIVE_ZERO.match(wired[key])
    bare = wire.decision_to_wire(Decision("s", "deny", None, total=amount.copy_negate()))
    assert not _NEGATIVE_ZERO.match(bare["total"])


def test_negative_zero_examples() -> None:
    assert rt.money_str(Decimal("-0"), "EUR") == "0.00"
    assert rt.money_str(Decimal("-0.004"), "EUR") == "0.00"
    assert rt.money_str(Decimal("-0.4"), "JPY") == "0"
    assert rt.money_str(Decimal("-0.01"), "EUR") == "-0.01"
    assert wire.decision_to_wire(Decision("s", "deny", None, total=Decimal("-0")))["total"] \
        == "0"


# -- time order ------------------------------------------------------------------------


def test_a_refund_dated_before_its_payment_is_out_of_order() -> None:
    log = Log()
    log.start(at="2028-03-01")
    message = log.fails("out_of_order", type="refund_requested", at="2027-01-01",
                        subscription="s")
    assert "2028-03-01" in message
    assert log.state.subscriptions["s"].payment is not None
    assert log.state.subscriptions["s"].payment.refunded == 0


def test_a_checkout_before_applied_events_is_out_of_order() -> None:
    log = Log()
    log.start(at="2027-03-01")
    log.send(type="tick", at="2027-03-05")
    log.fails("out_of_order", type="checkout", at="2027-03-04", subscription="t",
              storefront="web", plan="monthly", customer={"id": "ct", "country": "DE"})
    log.fails("out_of_order", type="checkout", at="2027-02-01", subscription="s",
              storefront="web", plan="monthly", customer={"id": "cs", "country": "DE"})
    log.start(at="2027-03-05", sub="t")  # equal times are in order


def test_a_tick_back_in_time_is_out_of_order() -> None:
    log = Log()
    log.start(at="2027-03-01")
    log.send(type="tick", at="2027-03-10")
    log.fails("out_of_order", type="tick", at="2027-03-09T23:59:59Z")
    log.send(type="tick", at="2027-03-10")  # equal: in order
    log.send(type="payment_failed", at="2027-03-20", subscription="s", ok=False)
    log.send(type="cancel_requested", at="2027-03-20", subscription="s")
    log.send(type="tick", at="2027-03-15")  # a tick is compared only with the last tick
    log.fails("out_of_order", type="resume_requested", at="2027-03-14", subscription="s")


def test_time_order_is_per_subscription() -> None:
    log = Log()
    log.start(at="2027-03-10", sub="a")
    log.start(at="2027-03-01", sub="b")  # another subscription: in order
    log.send(type="cancel_requested", at="2027-03-05", subscription="b")
    log.fails("out_of_order", type="cancel_requested", at="2027-03-09", subscription="a")
    # a refused event leaves the subscription's time as it was
    log.fails("already_canceled", type="cancel_requested", at="2027-03-20", subscription="b")
    log.send(type="refund_requested", at="2027-03-06", subscription="b")


def test_a_replay_is_not_out_of_order() -> None:
    log = Log()
    log.start(at="2027-03-01")
    log.send(type="tick", at="2027-03-10")
    out = log.send(id="e1", type="checkout", at="2027-03-01", subscription="s",
                   storefront="web", plan="monthly", customer={"id": "cs", "country": "DE"})
    assert out.replayed


def test_times_survive_the_state_file_and_old_files_load() -> None:
    log = Log()
    log.start(at="2027-03-01T10:00:00Z")
    log.send(type="tick", at="2027-03-05")
    text = wire.state_to_json(log.state)
    again = wire.state_from_json(text)
    assert again == log.state and wire.state_to_json(again) == text
    data = json.loads(text)
    assert data["last_tick"] == "2027-03-05T00:00:00Z"
    assert data["last_event"] == {"s": "2027-03-01T10:00:00Z"}
    assert LIFE_ENGINE.apply(again, {"id": "x", "type": "tick", "at": "2027-03-04"}).error \
        .code == "out_of_order"  # type: ignore[union-attr]
    # a state file written before these fields existed loads, and checks nothing it lacks
    del data["last_tick"]
    del data["last_event"]
    old = wire.state_from_json(json.dumps(data))
    assert old.last_tick is None and old.last_event == immutables.Map()
    assert LIFE_ENGINE.apply(old, {"id": "x", "type": "tick", "at": "2027-03-04"}).ok


def test_example_log_is_in_time_order() -> None:
    lines = (ROOT / "examples" / "events.jsonl").read_text("utf-8").splitlines()
    _, outcomes = ENGINE.run(json.loads(line) for line in lines)
    assert [o.event for o in outcomes if not o.ok] == []
