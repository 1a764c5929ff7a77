"""The JSON wire format (WIRE.md) and the state file: shapes, money, determinism."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import immutables
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revrules import wire
from revrules.events import Event, EventError
from revrules.results import Decision, Discount, Error, Outcome, RevenueEvent, Trace
from revrules.state import (AttachedPromotion, Charge, Dunning, Payment, Seen, State,
                            Subscription)

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.UTC


def _no_float(text: str) -> Any:
    raise AssertionError(f"a float in the output: {text}")


def loads(text: str) -> Any:
    """Parse output, failing on any float."""
    return json.loads(text, parse_float=_no_float)


def subscription(sub_id: str = "s1", **changes: Any) -> Subscription:
    fields: dict[str, Any] = dict(
        id=sub_id, customer_id="c1",
        customer=immutables.Map({"trials_used": 1, "country": "DE", "vip": False,
                                 "credit_limit": Decimal("100.50"),
                                 "joined": dt.date(2020, 2, 29), "segment": None}),
        storefront="web_eu", plan="premium_monthly", status="past_due",
        anchor=dt.date(2026, 11, 15), index=2, cycle=2, price=Decimal("12.99"),
        promotions=(AttachedPromotion("black_friday", 1, 3), AttachedPromotion("loyalty", 12,
                                                                                None)),
        charge=Charge("renewal", dt.datetime(2027, 1, 15, tzinfo=UTC), dt.date(2027, 1, 15),
                      dt.date(2027, 2, 15), "EUR", Decimal("12.99"), Decimal("0.00"),
                      Decimal(0), Decimal("2.07"), Decimal("10.92"), Decimal("12.99"),
                      "stripe", Decimal("10.92"), Decimal("0.00"), Decimal("0.00"),
                      rule="tax vat", source="streaming.rr:99:3"),
        payment=Payment(dt.datetime(2026, 12, 15, 8, 30, 5, tzinfo=UTC), dt.date(2026, 12, 15),
                        dt.date(2027, 1, 15), "EUR", Decimal("12.99"), Decimal("2.07")),
        dunning=Dunning("standard", dt.date(2027, 1, 15),
                        (dt.date(2027, 1, 16), dt.date(2027, 1, 18)), dt.date(2027, 1, 25),
                        dt.date(2027, 1, 25), attempts=1, via="stripe", scheduled=2),
        entitlements=("hd", "downloads", "family"), started=dt.date(2026, 11, 15),
    )
    fields.update(changes)
    return Subscription(**fields)


def sample_state() -> State:
    subs = immutables.Map({"s2": subscription("s2", status="active", dunning=None, charge=None),
                           "s10": subscription("s10"), "s1": subscription("s1")})
    return State(
        subscriptions=subs,
        redemptions=immutables.Map({"black_friday": 2}),
        customer_redemptions=immutables.Map({"black_friday\u001fc2": 1,
                                             "black_friday\u001fc1": 1}),
        applied=immutables.Map({e: Seen("0123456789abcdef" * 2, dt.datetime(2027, 1, 2, tzinfo=UTC))
                                for e in ("e2", "e10", "e1")}),
        clock=dt.datetime(2027, 1, 15, tzinfo=UTC),
    )


# -- state ---------------------------------------------------------------------------


def test_state_round_trip_is_byte_identical() -> None:
    state = sample_state()
    text = wire.state_to_json(state)
    again = wire.state_from_json(text)
    assert again == state
    assert wire.state_to_json(again) == text


def test_empty_state_round_trips() -> None:
    text = wire.state_to_json(State())
    assert wire.state_from_json(text) == State()
    assert wire.state_to_json(wire.state_from_json(text)) == text


def test_state_json_sorts_map_keys_whatever_the_insertion_order() -> None:
    seen = Seen("f" * 32, dt.datetime(2027, 1, 2, tzinfo=UTC))
    one = State(applied=immutables.Map({"b": seen, "a": seen, "c": seen}))
    two = State(applied=immutables.Map({"c": seen, "a": seen, "b": seen}))
    assert wire.state_to_json(one) == wire.state_to_json(two)
    assert list(loads(wire.state_to_json(one))["applied"]) == ["a", "b", "c"]


def test_state_json_has_strings_for_decimals_and_iso_dates() -> None:
    data = loads(wire.state_to_json(sample_state()))
    assert data["format"] == wire.STATE_FORMAT
    s1 = data["subscriptions"]["s1"]
    assert s1["price"] == "12.99"
    assert s1["charge"]["discount"] == "0.00"
    assert s1["anchor"] == "2026-11-15"
    assert s1["payment"]["at"] == "2026-12-15T08:30:05Z"
    assert s1["customer"]["credit_limit"] == {"decimal": "100.50"}
    assert s1["customer"]["joined"] == {"date": "2020-02-29"}
    assert s1["customer"]["vip"] is False
    assert data["clock"] == "2027-01-15T00:00:00Z"


def test_state_keeps_customer_attribute_types() -> None:
    again = wire.state_from_json(wire.state_to_json(sample_state()))
    customer = again.subscriptions["s1"].customer
    assert customer["credit_limit"] == Decimal("100.50")
    assert str(customer["credit_limit"]) == "100.50"
    assert customer["joined"] == dt.date(2020, 2, 29)
    assert customer["trials_used"] == 1 and customer["vip"] is False
    assert customer["segment"] is None
    assert isinstance(again.subscriptions, immutables.Map)


@pytest.mark.parametrize("text, fragment", [
    ("{", "not valid JSON"),
    ("[]", "not a valid State"),
    ('{"subscriptions": {}}', "format"),
    ('{"format": "revrules-state/2", "clock": 1.5}', "clock"),
    ('{"format": "revrules-state/2", "applied": {"e1": "yes"}}', "applied"),
    ('{"format": "revrules-state/2", "redemptions": {"bf": NaN}}', "NaN"),
    ('{"format": "revrules-state/3"}', "format"),
])
def test_bad_state_files_raise_wire_error(text: str, fragment: str) -> None:
    with pytest.raises(wire.WireError) as info:
        wire.state_from_json(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


amounts = st.decimals(min_value=0, max_value=10**9, places=4, allow_nan=False,
                      allow_infinity=False)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
              max_size=8)


@given(st.dictionaries(ids, st.integers(0, 10**6), max_size=6),
       st.lists(ids, max_size=6), amounts, st.datetimes(
           min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1),
           timezones=st.just(UTC)))
def test_state_round_trip_property(counts: dict[str, int], applied: list[str], price: Decimal,
                                   clock: dt.datetime) -> None:
    state = State(subscriptions=immutables.Map({"s": subscription("s", price=price)}),
                  redemptions=immutables.Map(counts),
                  applied=immutables.Map({a: Seen("a" * 32, clock) for a in applied}),
                  clock=clock)
    text = wire.state_to_json(state)
    again = wire.state_from_json(text)
    assert again == state
    assert wire.state_to_json(again) == text


# -- money and outcomes --------------------------------------------------------------


@pytest.mark.parametrize("currency, amount, expected", [
    ("EUR", Decimal("12.99"), "12.99"),
    ("EUR", Decimal("12.9"), "12.90"),
    ("EUR", Decimal(0), "0.00"),
    ("USD", Decimal(7), "7.00"),
    ("JPY", Decimal(1200), "1200"),
    ("JPY", Decimal(0), "0"),
    ("JPY", Decimal("1200.00"), "1200"),
    ("KWD", Decimal("1.25"), "1.250"),
    ("KWD", Decimal(0), "0.000"),
    (None, Decimal("1.5"), "1.5"),
])
def test_decision_money_has_the_currency_minor_units(currency: str | None, amount: Decimal,
                                                     expected: str) -> None:
    decision = Decision("s1", "charge", currency, list=amount, credit=amount, tax=amount,
                        net=amount, total=amount,
                        discounts=(Discount("black_friday", amount),))
    out = loads(wire.to_json(decision))
    for key in ("list", "credit", "tax", "net", "total"):
        assert out[key] == expected
    assert out["discounts"] == [{"rule": "black_friday", "amount": expected}]


def revenue_event(**changes: Any) -> RevenueEvent:
    fields: dict[str, Any] = dict(
        id="e1.1", type="payment.succeeded", at=dt.datetime(2026, 11, 15, 10, tzinfo=UTC),
        subscription="s1", customer="c1", storefront="web_kw", channel="web",
        plan="premium_monthly", currency="KWD", gross=Decimal("3.5"), discount=Decimal(0),
        tax=Decimal("0.175"), net=Decimal("3.5"), amount=Decimal("3.675"))
    fields.update(changes)
    return RevenueEvent(**fields)


def test_revenue_event_keys_in_wire_order_and_extras_only_when_set() -> None:
    out = wire.revenue_event_to_wire(revenue_event())
    assert list(out) == [*wire.REVENUE_EVENT_KEYS, "amount"]
    assert out["gross"] == "3.500" and out["tax"] == "0.175" and out["amount"] == "3.675"
    assert out["discount"] == "0.000"
    assert out["at"] == "2026-11-15T10:00:00Z"
    assert out["rule"] is None and out["source"] is None  # listed: always present


def test_revenue_event_extras_come_in_a_fixed_order() -> None:
    event = revenue_event(version="1", ruleset="streaming", date=dt.date(2027, 1, 16),
                          entitlements=("hd",), reasons=("r",), psp="stripe",
                          commission=Decimal("0.5"), credit=Decimal(1), charge="s1:2",
                          list=Decimal("4"), recurring=Decimal(0))
    out = wire.revenue_event_to_wire(event)
    assert list(out)[len(wire.REVENUE_EVENT_KEYS):] == list(wire.REVENUE_EVENT_EXTRA_KEYS)
    assert out["date"] == "2027-01-16" and out["entitlements"] == ["hd"]
    assert out["list"] == "4.000" and out["recurring"] == "0.000"  # set, so written


def test_datetimes_are_written_in_utc() -> None:
    plus_one = dt.timezone(dt.timedelta(hours=1))
    out = wire.revenue_event_to_wire(revenue_event(at=dt.datetime(2026, 11, 15, 11,
                                                                  tzinfo=plus_one)))
    assert out["at"] == "2026-11-15T10:00:00Z"


def charge_decision() -> Decision:
    return Decision(
        "s1", "charge", "EUR", list=Decimal("12.99"),
        discounts=(Discount("black_friday", Decimal("7.00")),), tax=Decimal("2.07"),
        net=Decimal("10.92"), total=Decimal("12.99"), psp="stripe",
        next_charge=dt.date(2026, 12, 15), reasons=("trial_ok: trial already used",),
        trace=(Trace("tax vat", "streaming.rr:84:3"),))


def test_outcome_shape_matches_wire_md() -> None:
    outcome = Outcome("e1", True, State(), (charge_decision(),), (revenue_event(),))
    out = loads(wire.outcome_to_json(outcome))
    assert list(out) == ["event", "ok", "decisions", "events"]
    decision = out["decisions"][0]
    assert list(decision) == list(wire.DECISION_KEYS)
    assert decision["discounts"] == [{"rule": "black_friday", "amount": "7.00"}]
    assert decision["trace"] == [{"rule": "tax vat", "source": "streaming.rr:84:3"}]
    assert decision["next_charge"] == "2026-12-15" and decision["due"] is None
    assert decision["trial_days"] == 0
    assert wire.outcome_to_json(outcome).startswith('{"event": "e1", "ok": true, ')


def test_error_and_replayed_outcomes() -> None:
    failed = Outcome("e9", False, State(), error=Error("unknown_storefront", "unknown 'web_xx'"))
    assert loads(wire.outcome_to_json(failed)) == {
        "event": "e9", "ok": False,
        "error": {"code": "unknown_storefront", "message": "unknown 'web_xx'"}}
    replayed = Outcome("e1", True, State(), replayed=True)
    assert list(loads(wire.outcome_to_json(replayed))) == ["event", "ok", "decisions", "events",
                                                          "replayed"]


def test_output_is_deterministic_and_keeps_unicode() -> None:
    decision = attrs_evolve(charge_decision(), reasons=("déjà utilisé",))
    one, two = wire.to_json(decision), wire.to_json(decision)
    assert one == two
    assert "déjà" in one


def attrs_evolve(obj: Any, **changes: Any) -> Any:
    import attrs
    return attrs.evolve(obj, **changes)


def test_never_writes_a_float() -> None:
    with pytest.raises(TypeError, match="float"):
        wire.dumps({"amount": 1.5})


def test_results_read_back() -> None:
    decision = charge_decision()
    assert wire.from_json(wire.to_json(decision), Decision) == decision
    event = revenue_event(reasons=("x",), date=dt.date(2027, 1, 1))
    assert wire.from_json(wire.to_json(event), RevenueEvent) == event
    outcome = Outcome("e1", True, State(), (decision,), (event,))
    again = wire.from_json(wire.to_json(outcome), Outcome)
    assert again == outcome
    assert again.state == State()


# -- events in -----------------------------------------------------------------------


def test_event_from_wire_delegates_to_parse_event() -> None:
    event = wire.event_from_wire({"id": "e7", "type": "tick", "at": "2027-01-20"})
    assert event == Event("e7", "tick", dt.datetime(2027, 1, 20, tzinfo=UTC))
    with pytest.raises(EventError) as info:
        wire.event_from_wire({"id": "e7", "type": "tock", "at": "2027-01-20"})
    assert info.value.code == "unknown_type"


def test_read_events_reports_bad_lines_without_raising() -> None:
    lines = ['{"id": "e1", "type": "tick", "at": "2027-01-20"}\n', "\n", "   \n",
             '{"id": "e2", "type": \n', "[1, 2]\n", '{"id": "e3", "amount": NaN}\n',
             '{"id": "e4", "id": "e5"}\n', '{"id": "e6", "type": "tick", "at": "2027-01-21"}']
    results = list(wire.read_events(lines))
    assert [n for n, _ in results] == [1, 4, 5, 6, 7, 8]
    assert results[0][1] == {"id": "e1", "type": "tick", "at": "2027-01-20"}
    assert results[-1][1]["id"] == "e6"  # type: ignore[index]
    for number, item in results[1:5]:
        assert isinstance(item, EventError)
        assert item.code == "bad_json"
        assert item.message.startswith(f"line {number}: ")


def test_read_events_skips_a_byte_order_mark() -> None:
    [(number, item)] = wire.read_events(['\ufeff{"id": "e1"}'])
    assert number == 1 and item == {"id": "e1"}


def test_example_log_parses() -> None:
    path = ROOT / "examples" / "events.jsonl"
    with path.open(encoding="utf-8") as handle:
        items = [item for _, item in wire.read_events(handle)]
    assert [i["id"] for i in items] == [f"e{n}" for n in range(1, len(items) + 1)]  # type: ignore[index]
    assert len(items) >= 20
    for item in items:
        assert isinstance(item, dict)
        wire.event_from_wire(item)


# -- with the engine -----------------------------------------------------------------


def test_engine_state_round_trips_through_json() -> None:
    from revrules.engine import Engine
    from revrules.ruleset import load

    engine = Engine(load(ROOT / "rulesets" / "streaming.rr"))
    with (ROOT / "examples" / "events.jsonl").open(encoding="utf-8") as handle:
        events = [item for _, item in wire.read_events(handle)]
    state, outcomes = engine.run(events)  # type: ignore[arg-type]
    text = wire.state_to_json(state)
    assert wire.state_from_json(text) == state
    assert wire.state_to_json(wire.state_from_json(text)) == text
    for outcome in outcomes:
        line = wire.outcome_to_json(outcome)
        loads(line)
        assert wire.outcome_to_json(wire.from_json(line, Outcome)) == line
