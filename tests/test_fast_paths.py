"""The engine's fast paths against their references, byte for byte.

* the direct outcome encoder (``wire.outcome_to_json``) against ``json.dumps`` of
  ``outcome_to_wire`` (``wire.outcome_to_json_reference``);
* the direct payload text of the replay digest against its ``json.dumps`` reference;
* ``parse_event`` against the event parser it replaced (kept here, as it was);
* the draft constructors (``revrules.drafts``) against the attrs classes;
* the shared JSON decoder (``wire._decode``) against ``json.loads`` with the same hooks.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State, wire
from revrules import engine as engine_module
from revrules import events as events_module
from revrules.diagnostics import did_you_mean
from revrules.events import EVENT_TYPES, Event, EventError, parse_event, parse_time
from revrules.generator import generate
from revrules.results import Decision, Discount, Error, Outcome, RevenueEvent, Trace
from revrules.text import UNSAFE
from revrules.state import Charge, Seen, Subscription, evolve, make_subscription

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(str(ROOT / "rulesets" / "streaming.rr"))
ENGINE = Engine(STREAMING)
FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _log_outcomes(customers: int = 60, months: int = 14, seed: int = 5) -> list[Outcome]:
    state, outcomes = State(), []
    for i, event in enumerate(generate(STREAMING, customers, months, seed=seed)):
        outcome = ENGINE.apply(state, event)
        state = outcome.state
        outcomes.append(outcome)
        if i % 7 == 0:  # a replay, a conflicting replay and a refused event too
            outcomes.append(ENGINE.apply(state, event))
            outcomes.append(ENGINE.apply(state, {**event, "at": "2099-01-01"}))
            outcomes.append(ENGINE.apply(state, {**event, "id": f"x{i}", "type": "tick",
                                                 "subscription": "nope"}))
    return outcomes


def test_outcome_encoder_matches_the_reference_on_a_generated_log() -> None:
    outcomes = _log_outcomes()
    assert len(outcomes) > 1000
    kinds = {e.type for o in outcomes for e in o.events}
    assert {"subscription.started", "subscription.renewed", "payment.succeeded",
            "payment.failed", "trial.granted"} <= kinds
    assert any(o.replayed for o in outcomes) and any(not o.ok for o in outcomes)
    for outcome in outcomes:
        assert wire.outcome_to_json(outcome) == wire.outcome_to_json_reference(outcome)
        _same_texts(outcome, wire.outcome_to_json_reference(outcome))
        wire._encode_outcome(outcome)  # written directly, not by the reference path


# -- generated outcomes --------------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "s1", "Zürich 東京", "a\"b\\c", "\x1b[2J", "\u202egnp", "line\u2028sep", "\x7f\x85",
     "tab\there", "\ud800"])
_CURRENCY = st.sampled_from(["EUR", "JPY", "KWD", "USD", None])
_DECIMAL = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.adjusted()) < 30) | st.sampled_from(
    [Decimal("0"), Decimal("-0"), Decimal("-0.00"), Decimal("12.99"), Decimal("12.990"),
     Decimal("1E+3"), Decimal("0.005"), Decimal("-0.004"), Decimal("1200"), Decimal("1.250")])
_DAY = st.dates(dt.date(1900, 1, 1), dt.date(2999, 12, 31))
_TIME = st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(2999, 12, 30),
                     timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5,
                                                                                 minutes=30)),
                                                dt.timezone(dt.timedelta(hours=-8))]))
_OPT_TEXT = st.none() | _TEXT
_TEXTS = st.lists(_TEXT, max_size=3).map(tuple)


@st.composite
def _decisions(draw: st.DrawFn) -> Decision:
    cur = draw(_CURRENCY)
    return Decision(
        draw(_TEXT), draw(st.sampled_from(["charge", "credit", "refund", "none", "deny"])),
        cur, draw(_DECIMAL),
        tuple(Discount(draw(_TEXT), draw(_DECIMAL)) for _ in range(draw(st.integers(0, 2)))),
        draw(_DECIMAL), draw(_DECIMAL), draw(_DECIMAL), draw(_DECIMAL), draw(_OPT_TEXT),
        draw(st.integers(0, 400)), draw(st.none() | _DAY), draw(st.none() | _DAY),
        draw(st.none() | _DAY | _TIME), draw(st.none() | _DAY), draw(_TEXTS),
        tuple(Trace(draw(_TEXT), draw(_TEXT)) for _ in range(draw(st.integers(0, 2)))),
        draw(_OPT_TEXT))


@st.composite
def _revenue_events(draw: st.DrawFn) -> RevenueEvent:
    opt_money = st.none() | _DECIMAL
    zero_or = st.just(Decimal(0)) | _DECIMAL
    return RevenueEvent(
        draw(_TEXT), draw(_TEXT), draw(_TIME), draw(_TEXT), draw(_TEXT), draw(_TEXT),
        draw(_TEXT), draw(_TEXT), draw(_CURRENCY), *(draw(zero_or) for _ in range(7)),
        draw(_OPT_TEXT), draw(_OPT_TEXT), draw(_OPT_TEXT), draw(_TEXTS), draw(_TEXTS),
        draw(st.none() | _DAY), draw(_OPT_TEXT), draw(_OPT_TEXT), draw(_OPT_TEXT),
        draw(opt_money), draw(opt_money))


@st.composite
def _outcomes(draw: st.DrawFn) -> Outcome:
    ok = draw(st.booleans())
    if not ok:
        return Outcome(draw(_TEXT), False, State(),
                       error=draw(st.none() | st.builds(Error, _TEXT, _TEXT)))
    return Outcome(draw(_TEXT), True, State(), tuple(draw(st.lists(_decisions(), max_size=2))),
                   tuple(draw(st.lists(_revenue_events(), max_size=3))),
                   replayed=draw(st.booleans()))


def _same_texts(outcome: Outcome, expected: str) -> None:
    """``wire.outcome_texts`` (what the store keeps): the outcome line, and each revenue
    event as ``dumps`` writes it alone."""
    text, events = wire.outcome_texts(outcome)
    assert text == expected
    wired = wire.outcome_to_wire(outcome)
    assert events == [wire.dumps(e, check_floats=False) for e in wired.get("events", [])]


def _same(outcome: Outcome, direct: bool = False) -> None:
    try:
        expected = wire.outcome_to_json_reference(outcome)
    except Exception as exc:  # noqa: BLE001 - then the fast path fails the same way
        with pytest.raises(type(exc)):
            wire.outcome_to_json(outcome)
        return
    assert wire.outcome_to_json(outcome) == expected
    assert wire.outcome_to_json(outcome) == expected  # with the caches warm
    _same_texts(outcome, expected)
    if direct:  # values of the expected types are written directly
        assert UNSAFE.sub(wire._json_escape, wire._encode_outcome(outcome)) == expected


@FAST
@given(_outcomes())
def test_outcome_encoder_matches_the_reference_on_generated_outcomes(outcome: Outcome) -> None:
    _same(outcome, direct=True)


@pytest.mark.parametrize("changes", [
    {"list": 3}, {"list": 2.5}, {"total": None}, {"reasons": ["a"]}, {"trial_days": True},
    {"trial_days": 2.0}, {"kind": 7}, {"next_charge": "2026-01-01"}, {"discounts": [
        Discount("d", Decimal(1))]}, {"currency": 7},
])
def test_unexpected_decision_values_take_the_reference_path(changes: dict[str, Any]) -> None:
    decision = Decision("s1", "charge", "EUR", Decimal("12.99"), total=Decimal("12.99"))
    _same(Outcome("e1", True, State(), (evolve(decision, **changes),)))


@pytest.mark.parametrize("changes", [
    {"at": dt.datetime(2026, 1, 1)}, {"at": dt.date(2026, 1, 1)}, {"gross": 1},
    {"amount": 1.5}, {"recurring": 0}, {"list": Decimal("NaN")}, {"psp": ()},
    {"reasons": []}, {"entitlements": None}, {"date": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)},
    {"id": None}, {"rule": 3},
])
def test_unexpected_event_values_take_the_reference_path(changes: dict[str, Any]) -> None:
    event = RevenueEvent("e1.1", "payment.succeeded", dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                         "s1", "c1", "web", "web", "p", "EUR", amount=Decimal("1.00"))
    _same(Outcome("e1", True, State(), (), (evolve(event, **changes),)))
    _same(Outcome("e1", 1, State(), (), (event,)))  # type: ignore[arg-type]
    _same(Outcome("e1", 0, State(), error=Error("x", "y")))  # type: ignore[arg-type]


# -- the payload digest --------------------------------------------------------------

_ATTRIBUTE = st.none() | st.booleans() | st.integers(-10**15 + 1, 10**15 - 1) | _TEXT


@st.composite
def _events(draw: st.DrawFn) -> Event:
    fields: dict[str, Any] = {}
    for name in ("subscription", "storefront", "plan", "code", "reason", "currency", "psp",
                 "reference", "notification", "subtype", "charge"):
        fields[name] = draw(st.none() | _TEXT)
    fields["customer"] = draw(st.none() | st.dictionaries(_TEXT, _ATTRIBUTE, max_size=4))
    fields["amount"] = draw(st.none() | _DECIMAL | st.just(Decimal("NaN")))
    fields["attempt"] = draw(st.none() | st.integers(0, 10**6))
    fields["cancel"] = draw(st.none() | st.booleans())
    return Event(draw(_TEXT), draw(st.sampled_from(sorted(EVENT_TYPES))), draw(_TIME),
                 **fields)


@FAST
@given(_events())
def test_payload_text_matches_the_reference(event: Event) -> None:
    fast = engine_module._payload_text(event)
    assert fast is None or fast == engine_module._payload_text_reference(event)
    if event.customer is None or all(type(k) is str for k in event.customer):
        assert fast is not None  # what a parsed event holds is written directly


def test_payload_text_of_other_values_falls_back() -> None:
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for event in (Event("e", "tick", dt.datetime(2026, 1, 1)),
                  Event("e", "checkout", at, customer={1: "a"}),
                  Event("e", "checkout", at, customer={"a": 1.5}),
                  Event("e", "checkout", at, customer={"a": Decimal("1.0")}),
                  Event("e", "checkout", at, attempt=2.0),  # type: ignore[arg-type]
                  Event("e", "checkout", at, customer={"a": [1, {"b": None}]})):
        assert engine_module._payload_text(event) is None
        engine_module.payload_digest(event)  # the reference writes them
    # a date and its midnight UTC datetime, "4.0" and "4.00": the same payload
    one = parse_event({"id": "a", "type": "credit_granted", "at": "2026-01-01",
                       "subscription": "s", "amount": "4.0"})
    two = parse_event({"id": "b", "type": "credit_granted", "at": "2026-01-01T01:00:00+01:00",
                       "subscription": "s", "amount": "4.00"})
    assert engine_module.payload_digest(one) == engine_module.payload_digest(two)


def test_digests_of_a_generated_log_match_the_reference() -> None:
    for raw in generate(STREAMING, 30, 12, seed=2):
        event = parse_event(raw)
        assert engine_module._payload_text(event) == \
            engine_module._payload_text_reference(event)


# -- event parsing -------------------------------------------------------------------


def _reference_parse_event(data: Mapping[str, Any]) -> Event:
    """The event parser as it was before the fast path (the reference)."""
    check_string, check_int = events_module.check_string, events_module.check_int
    if not isinstance(data, Mapping):
        raise EventError("bad_event", "an event is a JSON object")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EventError("missing_field", "the event has no 'id' (a non-empty string)")
    check_string(event_id, "'id'")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventError("missing_field", f"event {event_id} has no 'type'")
    if kind not in EVENT_TYPES:
        raise EventError("unknown_type", f"unknown event type '{kind}'"
                         f"{did_you_mean(kind, EVENT_TYPES)}")
    if "at" not in data:
        raise EventError("missing_field", f"event {event_id} has no 'at'")
    at = parse_time(data["at"])
    required, optional = EVENT_TYPES[kind]
    allowed = {"id", "type", "at", *required, *optional}
    for key in sorted(data):
        if key not in allowed:
            raise EventError("unknown_field", f"{kind} events have no field '{key}'"
                             f"{did_you_mean(key, allowed)}")
    for key in required:
        if data.get(key) is None:
            raise EventError("missing_field", f"{kind} event {event_id} needs '{key}'")
    values: dict[str, Any] = {}
    for key in (*required, *optional):
        value = data.get(key)
        if value is None:
            continue
        if key in events_module._STRING_FIELDS:
            if not isinstance(value, str) or not value:
                raise EventError("bad_field", f"'{key}' must be a non-empty string")
            check_string(value, f"'{key}'")
        elif key == "customer":
            value = _reference_customer(value)
        elif key == "amount":
            value = events_module._amount(value)
        elif key == "attempt":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EventError("bad_field", "'attempt' must be a whole number")
            check_int(value, "'attempt'")
        elif key == "cancel":
            if not isinstance(value, bool):
                raise EventError("bad_field", "'cancel' must be true or false")
        values[key] = value
    return Event(id=event_id, type=kind, at=at, **values)


def _reference_customer(value: object) -> Mapping[str, Any]:
    check_string, check_int = events_module.check_string, events_module.check_int
    if not isinstance(value, Mapping):
        raise EventError("bad_field", "'customer' must be an object with an 'id'")
    cid = value.get("id")
    if not isinstance(cid, str) or not cid:
        raise EventError("missing_field", "'customer' needs an 'id' (a non-empty string)")
    if len(value) > events_module.MAX_ATTRIBUTES + 1:
        raise EventError("too_long", f"'customer' has {len(value) - 1} attributes; at most "
                         f"{events_module.MAX_ATTRIBUTES} are allowed")
    for key in value:
        if not isinstance(key, str):
            raise EventError("bad_field", "customer attribute names are strings")
        check_string(key, "a customer attribute name")
        item = value[key]
        what = f"customer attribute '{key}'"
        if isinstance(item, str):
            check_string(item, what)
        elif isinstance(item, int) and not isinstance(item, bool):
            check_int(item, what)
        elif item is not None and not isinstance(item, bool):
            raise EventError("bad_field", f"{what} must be a string, a whole number, true, "
                             f"false or null, found {events_module._json_type(item)}")
    return dict(value)


_WIRE_VALUE = st.none() | st.booleans() | st.integers(-10**16, 10**16) | st.floats(
    allow_nan=False) | st.sampled_from(["", "s1", "x" * 257, "12.99", "-1", "NaN", "1e400",
                                        "2026-01-01", "2026-01-01T10:00:00Z", "2026-01-01T10",
                                        "0001-01-01T00:00:00+14:00", "web_eu", "tik"]) | _TEXT
_CUSTOMER = st.dictionaries(st.sampled_from(["id", "country", "trials_used", "x" * 257, "vip"]),
                            _WIRE_VALUE | st.lists(st.integers(), max_size=1), max_size=4)
_KEYS = sorted({"id", "type", "at", "bogus", "amout", *(k for r, o in EVENT_TYPES.values()
                                                         for k in (*r, *o))})


@st.composite
def _wire_events(draw: st.DrawFn) -> Any:
    data: dict[Any, Any] = {}
    if draw(st.booleans()):
        data["id"] = draw(st.sampled_from(["e1", "", "x" * 257]) | _WIRE_VALUE)
    data["type"] = draw(st.sampled_from([*EVENT_TYPES, "tik", "Checkout"]) | _WIRE_VALUE)
    if draw(st.integers(0, 9)):
        data["at"] = draw(st.sampled_from(["2026-01-01", "2026-01-01T10:00:00+01:00",
                                           "2026-01-01T10:00:00", "3000-01-01"]) | _WIRE_VALUE)
    for key in draw(st.lists(st.sampled_from(_KEYS), max_size=6)):
        data[key] = draw(_CUSTOMER if key == "customer" else _WIRE_VALUE)
    if draw(st.integers(0, 20)) == 0:
        data[3] = "a non-string key"
    return data if draw(st.integers(0, 30)) else draw(st.sampled_from([[], "x", None]))


def _result(parse: Any, data: Any) -> tuple[str, Any]:
    try:
        return "event", parse(data)
    except EventError as exc:
        return "error", (exc.code, exc.message)
    except Exception as exc:  # noqa: BLE001 - the same kind of failure either way
        return "raised", type(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_wire_events())
def test_parse_event_matches_the_reference(data: Any) -> None:
    assert _result(parse_event, data) == _result(_reference_parse_event, data)


def test_parse_event_matches_the_reference_on_a_generated_log() -> None:
    for raw in generate(STREAMING, 30, 12, seed=4):
        assert parse_event(raw) == _reference_parse_event(raw)


# -- drafts ----------------------------------------------------------------------------


def test_drafts_build_the_values_the_classes_build() -> None:
    sub = ENGINE.apply(State(), generate(STREAMING, 1, 1, seed=1)[0]).state
    built = next(iter(sub.subscriptions.values()))
    fields = {f.name: getattr(built, f.name) for f in attrs.fields(Subscription)}
    fast = make_subscription(**fields)
    assert type(fast) is Subscription and fast == built and hash(fast) == hash(built)
    assert repr(fast) == repr(built)
    assert pickle.loads(pickle.dumps(fast)) == built and copy.deepcopy(fast) == built
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        fast.status = "canceled"  # type: ignore[misc]
    changed = evolve(built, status="canceled", cycle=7)
    assert changed == attrs.evolve(built, status="canceled", cycle=7)
    assert built.status != "canceled"  # the original is untouched
    assert evolve(State(), clock=None) == State()
    seen = Seen("d", dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert evolve(seen, code="x") == Seen("d", seen.at, "x")
    with pytest.raises(TypeError):
        make_subscription("s1")  # the required fields are required


def test_drafts_refuse_what_they_cannot_build() -> None:
    from revrules.drafts import drafts

    @attrs.frozen
    class WithWeakref:
        a: int

    @attrs.frozen(weakref_slot=False)
    class Validated:
        a: int = attrs.field(validator=attrs.validators.instance_of(int))

    for cls in (WithWeakref, Validated):
        with pytest.raises(TypeError):
            drafts(cls)
    assert Charge.__slots__ and "__weakref__" not in Charge.__slots__


# -- the shared decoder ----------------------------------------------------------------

_JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=8).map(lambda v: json.dumps(v, ensure_ascii=False))


def _outcome_of(decode: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", decode(text)
    except (ValueError, RecursionError) as exc:
        return type(exc).__name__, str(exc)


@FAST
@given(st.one_of(
    _JSON_TEXT,
    _JSON_TEXT.map(lambda t: "\ufeff" + t),
    _JSON_TEXT.flatmap(lambda t: st.integers(0, len(t)).map(lambda i: t[:i] + t[i + 1:])),
    st.sampled_from(['{"a": 1, "a": 2}', '{"a": {"b": 1, "b": 1}}', '{"a": NaN}',
                     '[Infinity]', '-Infinity', "[" * 5000, '{"a": 1} x', " [1] ", "",
                     '{"a": "\\ud800"}', "1e999"]),
    st.text(max_size=12)))
def test_the_shared_decoder_answers_as_json_loads(text: str) -> None:
    reference = _outcome_of(lambda t: json.loads(t, parse_constant=wire._no_constant,
                                                 object_pairs_hook=wire._no_duplicates), text)
    assert _outcome_of(wire._decode, text) == reference
