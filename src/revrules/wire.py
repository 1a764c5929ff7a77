"""JSON in and out (WIRE.md): outcomes, decisions, revenue events, events and state.

One module-level :data:`converter` (cattrs) knows every shape. Two dialects share it:

* the **wire** dialect for outcomes, decisions and revenue events, written for other
  systems: money as strings with exactly the currency's minor units (``"12.99"``,
  ``"1200"``, ``"1.250"``), keys in the order WIRE.md lists them;
* the **state** dialect, written for revrules itself: every field of
  :class:`~revrules.state.State`, Decimals as their exact ``str``, map keys sorted,
  so that ``state_to_json(state_from_json(text)) == text`` byte for byte.

Both write dates as ``YYYY-MM-DD`` and datetimes in UTC as ``YYYY-MM-DDTHH:MM:SSZ``
and never a float. Output is deterministic: the same value always gives the same
bytes (``json.dumps(..., ensure_ascii=False, separators=(", ", ": "))``), and safe on a
terminal: control, bidi and line-separator characters are always ``\\uXXXX`` escapes.

>>> from decimal import Decimal
>>> from revrules.results import Decision
>>> to_json(Decision("s1", "charge", "JPY", list=Decimal(1200), total=Decimal(1200)))[:60]
'{"subscription": "s1", "kind": "charge", "currency": "JPY", '
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TextIO, TypeVar

import attrs
import cattrs
import immutables

from .diagnostics import json_text
from .events import Event, EventError, parse_event
from .results import Decision, Error, Outcome, RevenueEvent
from .runtime import CONTEXT, decimal_str, in_context, money_str
from .state import Seen, State, Subscription, pack_seen, unpack_seen
from .text import UNSAFE

__all__ = [
    "DECISION_KEYS",
    "OUTCOME_KEYS",
    "REVENUE_EVENT_EXTRA_KEYS",
    "REVENUE_EVENT_KEYS",
    "MAX_EVENT_LINE",
    "STATE_FORMAT",
    "StateError",
    "WireError",
    "bounded_lines",
    "converter",
    "decision_to_wire",
    "dumps",
    "event_from_wire",
    "from_json",
    "outcome_to_json",
    "outcome_to_wire",
    "read_events",
    "revenue_event_to_wire",
    "state_from_json",
    "state_to_json",
    "to_json",
    "validate_state",
]

T = TypeVar("T")

#: Key order of an outcome (``error`` replaces ``decisions`` and ``events`` when not ok).
OUTCOME_KEYS = ("event", "ok", "decisions", "events", "error", "replayed")
#: Key order of a decision: WIRE.md's keys, then ``grace_ends`` and ``charge``. Every key is
#: always present.
DECISION_KEYS = ("subscription", "kind", "currency", "list", "discounts", "credit", "tax",
                 "net", "total", "psp", "trial_days", "next_charge", "due", "retry_at",
                 "reasons", "trace", "grace_ends", "charge")
#: The revenue-event keys WIRE.md lists, in its order: always present (null when unset).
REVENUE_EVENT_KEYS = ("id", "type", "at", "subscription", "customer", "storefront", "channel",
                      "plan", "currency", "gross", "discount", "tax", "net", "rule", "source")
#: Further revenue-event keys, in this order, written only when they differ from their
#: default (None, an empty list, or a zero amount).
REVENUE_EVENT_EXTRA_KEYS = ("credit", "amount", "commission", "psp", "reasons", "entitlements",
                            "date", "ruleset", "version", "charge", "list", "recurring")
_DECISION_MONEY = frozenset({"list", "credit", "tax", "net", "total"})
_EVENT_MONEY = frozenset({"gross", "discount", "tax", "net", "credit", "amount", "commission",
                          "list", "recurring"})
# extras written whenever they are set, zero included (a zero recurring price is a fact)
_EVENT_OPTIONAL_MONEY = frozenset({"list", "recurring"})

#: The longest line of an event log, in characters (1 MiB): a longer line is an error
#: (``line_too_long``) for that line, and reading goes on.
MAX_EVENT_LINE = 1024 * 1024

#: The first key of a state file; :func:`state_from_json` refuses other formats.
STATE_FORMAT = "revrules-state/2"


class WireError(ValueError):
    """JSON that does not have the shape it should (a state file, a wire outcome, ...).

    The message is one line and names where the problem is (``$.subscriptions.s1.anchor``).
    """


# -- writing -------------------------------------------------------------------------


#: What ``json.dumps(obj, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)``
#: builds on every call (an encoder keeps no state between calls).
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), allow_nan=False)


def dumps(obj: Any, *, check_floats: bool = True) -> str:
    """The one JSON writer: deterministic, UTF-8 as is, and refusing floats.

    ``check_floats=False`` skips the walk for shapes built here field by field from
    typed values (outcomes), where no float can occur; the property tests check it.
    """
    if check_floats:
        _refuse_floats(obj, "$")
    text = _ENCODER.encode(obj)
    if text.isprintable():
        return text
    # JSON escapes C0 controls itself; DEL, C1 controls, bidi controls, line separators
    # and lone surrogates are written as \uXXXX too (the same strings, safe on a terminal)
    return UNSAFE.sub(_json_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _refuse_floats(obj: Any, path: str) -> None:
    if isinstance(obj, float):
        raise TypeError(f"refusing to write a float at {path}: amounts are decimal strings")
    if isinstance(obj, dict):
        for key, value in obj.items():
            _refuse_floats(value, f"{path}.{key}")
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            _refuse_floats(value, f"{path}[{i}]")


def _date_str(day: dt.date) -> str:
    return day.isoformat()


def _datetime_str(at: dt.datetime) -> str:
    """UTC with a ``Z``: ``2026-11-15T10:00:00Z`` (microseconds only when there are some)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"refusing to write a datetime without a timezone: {at!r}")
    return at.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def _money(amount: Decimal, currency: str | None) -> str:
    return decimal_str(amount) if currency is None else money_str(amount, currency)


def _opt_date(day: dt.date | None) -> str | None:
    if day is None:
        return None
    return _datetime_str(day) if isinstance(day, dt.datetime) else _date_str(day)


@in_context
def decision_to_wire(decision: Decision) -> dict[str, Any]:
    """A decision in WIRE.md's shape and key order (:data:`DECISION_KEYS`)."""
    cur = decision.currency
    out: dict[str, Any] = {}
    for key in DECISION_KEYS:
        value = getattr(decision, key)
        if key in _DECISION_MONEY:
            out[key] = _money(value, cur)
        elif key == "discounts":
            out[key] = [{"rule": d.rule, "amount": _money(d.amount, cur)} for d in value]
        elif key == "trace":
            out[key] = [{"rule": t.rule, "source": t.source} for t in value]
        elif key == "reasons":
            out[key] = list(value)
        elif key in ("next_charge", "due", "retry_at", "grace_ends"):
            out[key] = _opt_date(value)
        else:
            out[key] = value
    return out


@in_context
def revenue_event_to_wire(event: RevenueEvent) -> dict[str, Any]:
    """A revenue event: :data:`REVENUE_EVENT_KEYS` always, then the non-default extras."""
    cur = event.currency
    out: dict[str, Any] = {}
    for key in REVENUE_EVENT_KEYS:
        value = getattr(event, key)
        if key in _EVENT_MONEY:
            out[key] = _money(value, cur)
        elif key == "at":
            out[key] = _datetime_str(value)
        else:
            out[key] = value
    for key in REVENUE_EVENT_EXTRA_KEYS:
        value = getattr(event, key)
        if value is None or value == () or (key in _EVENT_MONEY and not value
                                            and key not in _EVENT_OPTIONAL_MONEY):
            continue
        if key in _EVENT_MONEY:
            out[key] = _money(value, cur)
        elif key == "date":
            out[key] = _opt_date(value)
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out


@in_context
def outcome_to_wire(outcome: Outcome) -> dict[str, Any]:
    """One outcome line as a dict, in :data:`OUTCOME_KEYS` order; the state is not included.

    ``{"event", "ok", "decisions", "events"}`` (plus ``"replayed": true`` for a
    replay) or ``{"event", "ok": false, "error": {"code", "message"}}``.
    """
    out: dict[str, Any] = {"event": outcome.event, "ok": outcome.ok}
    if not outcome.ok:
        error = outcome.error or Error("internal", "the event was not applied")
        out["error"] = {"code": error.code, "message": error.message}
        return out
    out["decisions"] = [decision_to_wire(d) for d in outcome.decisions]
    out["events"] = [revenue_event_to_wire(e) for e in outcome.events]
    if outcome.replayed:
        out["replayed"] = True
    return out


def outcome_to_json(outcome: Outcome) -> str:
    """One JSONL line (without the newline) for an outcome.

    Written directly (:func:`_encode_outcome`), byte for byte what
    :func:`outcome_to_json_reference` writes: that path is the reference, and it is
    what runs for a value the direct encoder does not expect. (:func:`outcome_texts`
    gives the same line with each revenue event apart; this is the hot path of
    ``revrules eval``, which needs only the line.)"""
    try:
        text = _encode_outcome(outcome)
    except Exception:  # noqa: BLE001 - the reference path says what is wrong, if anything
        return outcome_to_json_reference(outcome)
    if text.isprintable():
        return text
    return UNSAFE.sub(_json_escape, text)


def outcome_texts(outcome: Outcome) -> tuple[str, list[str]]:
    """:func:`outcome_to_json`'s line and, apart, each revenue event's JSON object (the
    text ``dumps`` writes of it): what the store keeps, written once."""
    try:
        events = [_encode_event(e) for e in outcome.events] if outcome.ok is True and \
            type(outcome.events) is tuple else []
        text = _encode_outcome(outcome, events)
    except Exception:  # noqa: BLE001 - the reference path says what is wrong, if anything
        return _outcome_texts_reference(outcome)
    if text.isprintable():
        return text, events
    return (UNSAFE.sub(_json_escape, text),
            [e if e.isprintable() else UNSAFE.sub(_json_escape, e) for e in events])


@in_context
def outcome_to_json_reference(outcome: Outcome) -> str:
    """``dumps(outcome_to_wire(outcome))``: what :func:`outcome_to_json` writes."""
    return dumps(outcome_to_wire(outcome), check_floats=False)


@in_context
def _outcome_texts_reference(outcome: Outcome) -> tuple[str, list[str]]:
    wired = outcome_to_wire(outcome)
    return (dumps(wired, check_floats=False),
            [dumps(body, check_floats=False) for body in wired.get("events", ())])


# -- the direct outcome encoder ------------------------------------------------------
# Outcome lines are most of what `revrules eval` does after applying the events. The
# encoder below writes them without building the intermediate dicts, and remembers the
# wire text of amounts, dates and times it has written: an amount's text depends only
# on its value and currency (it is quantized to the currency's minor units, and equal
# Decimals quantize alike), a time's only on the instant (it is written in UTC). The
# caches are bounded (cleared when full), so output never depends on what came before.

_CACHE_LIMIT = 4096
_MONEY_TEXT: dict[str | None, dict[Decimal, str]] = {}
_TIME_TEXT: dict[dt.datetime, str] = {}
_DATE_TEXT: dict[dt.date, str] = {}
_string: Callable[[str], str] = json.encoder.encode_basestring


def _money_text(amount: Decimal, currency: str | None) -> str:
    """``'"12.99"'``: :func:`_money` as a JSON string."""
    if type(amount) is not Decimal:  # an equal int or float must not find a Decimal's text
        raise TypeError("not a Decimal")
    if currency is None:  # written as it is: equal Decimals ("1.0", "1.00") differ here
        with decimal.localcontext(CONTEXT):  # str() reads the context (``capitals``)
            return f'"{decimal_str(amount)}"'
    table = _MONEY_TEXT.get(currency)
    if table is None:
        if len(_MONEY_TEXT) >= 64:
            _MONEY_TEXT.clear()
        table = _MONEY_TEXT[currency] = {}
    found = table.get(amount)
    if found is None:
        with decimal.localcontext(CONTEXT):
            found = f'"{money_str(amount, currency)}"'
        if len(table) >= _CACHE_LIMIT:
            table.clear()
        table[amount] = found
    return found


def _time_text(at: dt.datetime) -> str:
    if type(at) is not dt.datetime:
        raise TypeError("not a datetime")
    found = _TIME_TEXT.get(at)
    if found is None:
        found = _string(_datetime_str(at))
        if len(_TIME_TEXT) >= _CACHE_LIMIT:
            _TIME_TEXT.clear()
        _TIME_TEXT[at] = found
    return found


def _date_text(day: dt.date | None) -> str:
    if day is None:
        return "null"
    if type(day) is not dt.date:  # a datetime, or a subclass: as the reference writes it
        return _string(_opt_date(day))  # type: ignore[arg-type]
    found = _DATE_TEXT.get(day)
    if found is None:
        found = _string(day.isoformat())
        if len(_DATE_TEXT) >= _CACHE_LIMIT:
            _DATE_TEXT.clear()
        _DATE_TEXT[day] = found
    return found


def _text(value: str | None) -> str:
    return "null" if value is None else _string(value)


def _texts(values: tuple[str, ...]) -> str:
    if type(values) is not tuple:
        raise TypeError("not a tuple")
    return "[" + ", ".join([_string(v) for v in values]) + "]"


def _encode_decision(d: Decision) -> str:
    cur = d.currency
    trial_days = d.trial_days
    if type(trial_days) is not int or type(d.discounts) is not tuple or \
            type(d.trace) is not tuple:
        raise TypeError("an unexpected value")
    discounts = ", ".join([f'{{"rule": {_string(x.rule)}, "amount": '
                           f'{_money_text(x.amount, cur)}}}' for x in d.discounts])
    trace = ", ".join([f'{{"rule": {_string(t.rule)}, "source": {_string(t.source)}}}'
                       for t in d.trace])
    return (f'{{"subscription": {_text(d.subscription)}, "kind": {_text(d.kind)}, '
            f'"currency": {_text(cur)}, "list": {_money_text(d.list, cur)}, '
            f'"discounts": [{discounts}], "credit": {_money_text(d.credit, cur)}, '
            f'"tax": {_money_text(d.tax, cur)}, "net": {_money_text(d.net, cur)}, '
            f'"total": {_money_text(d.total, cur)}, "psp": {_text(d.psp)}, '
            f'"trial_days": {trial_days}, "next_charge": {_date_text(d.next_charge)}, '
            f'"due": {_date_text(d.due)}, "retry_at": {_date_text(d.retry_at)}, '
            f'"reasons": {_texts(d.reasons)}, "trace": [{trace}], '
            f'"grace_ends": {_date_text(d.grace_ends)}, "charge": {_text(d.charge)}}}')


def _event_head(e: RevenueEvent) -> str:
    """``"subscription": …, "currency": …``: the same for every event of a subscription."""
    key = (e.subscription, e.customer, e.storefront, e.channel, e.plan, e.currency)
    found = _EVENT_HEADS.get(key)
    if found is None:
        found = (f'"subscription": {_text(e.subscription)}, "customer": {_text(e.customer)}, '
                 f'"storefront": {_text(e.storefront)}, "channel": {_text(e.channel)}, '
                 f'"plan": {_text(e.plan)}, "currency": {_text(e.currency)}, ')
        if len(_EVENT_HEADS) >= _CACHE_LIMIT:
            _EVENT_HEADS.clear()
        _EVENT_HEADS[key] = found
    return found


_EVENT_HEADS: dict[tuple[str | None, ...], str] = {}


def _encode_event(e: RevenueEvent) -> str:
    cur = e.currency
    rule, source = e.rule, e.source
    parts = [f'{{"id": {_string(e.id)}, "type": {_string(e.type)}, "at": {_time_text(e.at)}, '
             f'{_event_head(e)}"gross": {_money_text(e.gross, cur)}, '
             f'"discount": {_money_text(e.discount, cur)}, "tax": {_money_text(e.tax, cur)}, '
             f'"net": {_money_text(e.net, cur)}, '
             f'"rule": {"null" if rule is None else _string(rule)}, '
             f'"source": {"null" if source is None else _string(source)}']
    # REVENUE_EVENT_EXTRA_KEYS, each only when it differs from its default
    if e.credit:
        parts.append(f'"credit": {_money_text(e.credit, cur)}')
    if e.amount:
        parts.append(f'"amount": {_money_text(e.amount, cur)}')
    if e.commission:
        parts.append(f'"commission": {_money_text(e.commission, cur)}')
    if e.psp is not None:
        parts.append(f'"psp": {_string(e.psp)}')
    if e.reasons != ():
        parts.append(f'"reasons": {_texts(e.reasons)}')
    if e.entitlements != ():
        parts.append(f'"entitlements": {_texts(e.entitlements)}')
    if e.date is not None:
        parts.append(f'"date": {_date_text(e.date)}')
    if e.ruleset is not None:
        parts.append(f'"ruleset": {_string(e.ruleset)}')
    if e.version is not None:
        parts.append(f'"version": {_string(e.version)}')
    if e.charge is not None:
        parts.append(f'"charge": {_string(e.charge)}')
    if e.list is not None:
        parts.append(f'"list": {_money_text(e.list, cur)}')
    if e.recurring is not None:
        parts.append(f'"recurring": {_money_text(e.recurring, cur)}')
    return ", ".join(parts) + "}"


def _encode_outcome(outcome: Outcome, events: list[str] | None = None) -> str:
    """The text of ``dumps(outcome_to_wire(outcome))`` before unsafe characters are
    escaped (``events``: its revenue events' texts, when already written); raises (for
    the reference path to run) on a value it does not expect."""
    head = f'{{"event": {_string(outcome.event)}, "ok": '
    if outcome.ok is False:
        error = outcome.error or Error("internal", "the event was not applied")
        return (f'{head}false, "error": {{"code": {_string(error.code)}, '
                f'"message": {_string(error.message)}}}}}')
    if outcome.ok is not True or type(outcome.decisions) is not tuple or \
            type(outcome.events) is not tuple:
        raise TypeError("an unexpected value")
    decisions = ", ".join([_encode_decision(d) for d in outcome.decisions])
    texts = ", ".join(events if events is not None else
                      [_encode_event(e) for e in outcome.events])
    tail = ', "replayed": true}' if outcome.replayed else "}"
    return f'{head}true, "decisions": [{decisions}], "events": [{texts}]{tail}'


# -- the converter -------------------------------------------------------------------

converter = cattrs.Converter()
"""The module's cattrs converter: wire shapes for results, the state dialect for state."""


class _BadValue(ValueError):
    """A value of the wrong shape in a state or results file; its message is for users
    (values spelt as JSON spells them)."""


def _structure_decimal(value: Any, _: type) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _BadValue(f"expected a decimal string like \"12.99\", found {json_text(value)}")
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise _BadValue(f"not a decimal: {json_text(value)}") from None
    if not result.is_finite():
        raise _BadValue(f"not a finite decimal: {json_text(value)}")
    return result


def _structure_date(value: Any, _: type) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise _BadValue(f"expected a date YYYY-MM-DD, found {json_text(value)}")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _BadValue(f"expected a date YYYY-MM-DD, found {json_text(value)}") from None


def _structure_datetime(value: Any, _: type) -> dt.datetime:
    if not isinstance(value, str):
        raise _BadValue(f"expected a datetime like 2026-11-15T10:00:00Z, found "
                        f"{json_text(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise _BadValue(f"expected a datetime like 2026-11-15T10:00:00Z, found "
                        f"{json_text(value)}") from None
    if parsed.tzinfo is None:
        raise _BadValue(f"datetime without a UTC offset: {json_text(value)}")
    return parsed.astimezone(dt.UTC)


_KIND_WORDS = {str: "a string", int: "a whole number", bool: "true or false"}


def _strict(kind: type) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        if type(value) is not kind:
            raise _BadValue(f"expected {_KIND_WORDS[kind]}, found {json_text(value)}")
        return value
    return structure


for _kind in (str, int, bool):
    converter.register_structure_hook(_kind, _strict(_kind))
converter.register_structure_hook(Decimal, _structure_decimal)
converter.register_unstructure_hook(Decimal, str)
converter.register_structure_hook(dt.date, _structure_date)
converter.register_unstructure_hook(dt.date, _date_str)
converter.register_structure_hook(dt.datetime, _structure_datetime)
converter.register_unstructure_hook(dt.datetime, _datetime_str)


def _is_tuple(t: Any) -> bool:
    return t is tuple or typing.get_origin(t) is tuple


def _tuple_unstructure(t: Any) -> Callable[[Any], list[Any]]:
    args = typing.get_args(t)
    if len(args) == 2 and args[1] is Ellipsis:
        item = converter.get_unstructure_hook(args[0])
        return lambda value: [item(v) for v in value]
    return lambda value: [converter.unstructure(v) for v in value]


def _tuple_structure(t: Any) -> Callable[[Any, Any], tuple[Any, ...]]:
    args = typing.get_args(t)

    def structure(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise _BadValue(f"expected a list, found {json_text(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(converter.structure(v, args[0]) for v in value)
        if args and len(args) != len(value):
            raise _BadValue(f"expected {len(args)} items, found {len(value)}")
        if not args:
            return tuple(value)
        return tuple(converter.structure(v, a) for v, a in zip(value, args, strict=True))
    return structure


converter.register_unstructure_hook_factory(_is_tuple, _tuple_unstructure)
converter.register_structure_hook_factory(_is_tuple, _tuple_structure)

# Customer attributes are typed by the ruleset's schema, which a state file does not
# carry; JSON's own types stand for themselves and the rest are tagged.
_TAGS: dict[str, Callable[[str], Any]] = {"decimal": Decimal, "date": dt.date.fromisoformat}


def _unstructure_any(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return {"date": value.isoformat()}
    raise TypeError(f"cannot write a {type(value).__name__} attribute value: {value!r}")


def _structure_any(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        if tag in _TAGS and isinstance(text, str):
            return _TAGS[tag](text)
    raise _BadValue(f"expected a string, number, true/false, null, {{\"decimal\": …}} or "
                    f"{{\"date\": …}}, found {json_text(value)}")


def _is_map(t: Any) -> bool:
    return t is immutables.Map or typing.get_origin(t) is immutables.Map


def _map_args(t: Any) -> tuple[Any, Any]:
    args = typing.get_args(t)
    return (args[0], args[1]) if len(args) == 2 else (str, Any)


def _map_unstructure(t: Any) -> Callable[[immutables.Map[Any, Any]], dict[str, Any]]:
    _, value_type = _map_args(t)
    item = _unstructure_any if value_type is Any else converter.get_unstructure_hook(value_type)

    def unstructure(value: immutables.Map[Any, Any]) -> dict[str, Any]:
        return {key: item(value[key]) for key in sorted(value)}
    return unstructure


def _map_structure(t: Any) -> Callable[[Any, Any], immutables.Map[Any, Any]]:
    key_type, value_type = _map_args(t)

    def structure(value: Any, _: Any) -> immutables.Map[Any, Any]:
        if not isinstance(value, dict):
            raise _BadValue(f"expected an object, found {json_text(value)}")
        if value_type is Any:
            items = {converter.structure(k, key_type): _structure_any(v) for k, v in value.items()}
        else:
            items = {converter.structure(k, key_type): converter.structure(v, value_type)
                     for k, v in value.items()}
        return immutables.Map(items)
    return structure


converter.register_unstructure_hook_factory(_is_map, _map_unstructure)
converter.register_structure_hook_factory(_is_map, _map_structure)

# Results: written in the wire dialect, read back by the generated attrs hooks
# (money strings become Decimals, missing extras take their defaults).
converter.register_unstructure_hook(Decision, decision_to_wire)
converter.register_unstructure_hook(RevenueEvent, revenue_event_to_wire)
# Outcome names State only for type checkers, so its annotations cannot be resolved:
# register by predicate, which does not try.
converter.register_unstructure_hook_func(lambda t: t is Outcome, outcome_to_wire)


def _structure_outcome(value: Any, _: type) -> Outcome:
    """A wire outcome; it carries no state, so ``state`` is an empty :class:`State`."""
    if not isinstance(value, dict):
        raise _BadValue(f"expected an object, found {json_text(value)}")
    event = value.get("event")
    ok = value.get("ok")
    if not isinstance(event, str) or not isinstance(ok, bool):
        raise TypeError("an outcome needs 'event' (a string) and 'ok' (true or false)")
    error = converter.structure(value["error"], Error) if value.get("error") else None
    return Outcome(
        event, ok, State(),
        converter.structure(value.get("decisions", []), tuple[Decision, ...]),
        converter.structure(value.get("events", []), tuple[RevenueEvent, ...]),
        error, converter.structure(value.get("replayed", False), bool))


converter.register_structure_hook_func(lambda t: t is Outcome, _structure_outcome)


def _unstructure_state(state: State) -> dict[str, Any]:
    out: dict[str, Any] = {"format": STATE_FORMAT}
    out.update(_plain_state(state))
    return out


def _structure_state(value: Any, _: type) -> State:
    if not isinstance(value, dict):
        raise _BadValue(f"expected an object, found {json_text(value)}")
    body = dict(value)
    found = body.pop("format", None)
    if found == _STATE_FORMAT_1:
        body = _from_format_1(body)
    elif found != STATE_FORMAT:
        raise _BadValue(f"not a revrules state file (format {json_text(found)}, expected "
                        f"{json_text(STATE_FORMAT)})")
    state = _plain_state_in(body, State)
    validate_state(state)
    return state


_STATE_FORMAT_1 = "revrules-state/1"


def _from_format_1(body: dict[str, Any]) -> dict[str, Any]:
    """A ``revrules-state/1`` body: its applied ids (``true``) carry no payload digest
    (``""``: any payload is a replay) and count as dated at the state's clock."""
    applied = body.get("applied", {})
    if isinstance(applied, dict):
        at = body.get("clock") or "1970-01-01T00:00:00Z"
        body["applied"] = {key: ({"digest": "", "at": at} if value is True else value)
                           for key, value in applied.items()}
    return body


# -- validation ----------------------------------------------------------------------

STATUSES = frozenset({"trialing", "active", "past_due", "paused", "unpaid", "canceled"})
_CHARGE_KINDS = frozenset({"checkout", "renewal", "proration", "retry"})
_CONSENT = frozenset({"requested", "collected"})
#: dates a state may hold (events are refused outside a narrower window)
_FIRST_DAY, _LAST_DAY = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
#: an amount in a state file has at most this many digits before the point, and 6 after
_MAX_DIGITS = 15
#: period counters: 400 years of weekly periods is far beyond what a date window holds
_MAX_COUNT = 1_000_000


class StateError(_BadValue):
    """A state that is not internally consistent; the message names the place."""


def validate_state(state: State) -> None:
    """Refuse a state that is not internally consistent, naming the first problem.

    Checks what needs no ruleset: every subscription is filed under its own id, the due
    index names only subscriptions that exist and can still have something due, counters
    and amounts are in range, charges and dunning are well formed, remembered ids are
    well formed. :meth:`revrules.Engine.verify` checks the rest against a ruleset.
    """
    for key, sub in state.subscriptions.items():
        _check_subscription(key, sub)
    for key, day in state.due.items():
        owner = state.subscriptions.get(key)
        if owner is None:
            raise StateError(f"$.due.{key}: no subscription {key!r}")
        if owner.status in ("canceled", "unpaid"):
            raise StateError(f"$.due.{key}: a {owner.status} subscription has nothing due")
        _check_day(day, f"$.due.{key}")
    for name, counters in (("redemptions", state.redemptions),
                           ("customer_redemptions", state.customer_redemptions)):
        for key, count in counters.items():
            if not key or not 0 <= count <= _MAX_COUNT:
                raise StateError(f"$.{name}.{key}: a count from 0 to {_MAX_COUNT}, "
                                 f"found {count}")
    for key, count in state.customer_redemptions.items():
        promotion, sep, customer = key.partition("\u001f")
        if not sep or not promotion or not customer:
            raise StateError(f"$.customer_redemptions.{key!r}: expected 'promotion\\u001f"
                             "customer'")
        if count > state.redemptions.get(promotion, 0):
            raise StateError(f"$.customer_redemptions.{key!r}: more than the "
                             f"{state.redemptions.get(promotion, 0)} redemptions of {promotion}")
    for key, seen in state.remembered():
        where = f"$.applied.{key}"
        if not key:
            raise StateError(f"{where}: an empty event id")
        if seen.digest and (len(seen.digest) != 32 or seen.digest.strip("0123456789abcdef")):
            raise StateError(f"{where}.digest: expected 32 hexadecimal digits (or \"\": "
                             "unknown, from an earlier format)")
        _check_day(seen.at, f"{where}.at")
        if (seen.code is None) != (seen.message is None) or seen.code == "":
            raise StateError(f"{where}: 'code' and 'message' go together")
    if state.clock is not None:
        _check_day(state.clock, "$.clock")
    if state.applied and state.clock is None and any(
            seen.code is None for _, seen in state.remembered()):
        raise StateError("$.clock: events were applied but there is no clock")
    if state.applied_limit < 0:
        raise StateError("$.applied_limit: cannot be negative")


def _check_subscription(key: str, sub: Subscription) -> None:
    where = f"$.subscriptions.{key}"
    if sub.id != key:
        raise StateError(f"{where}.id: {sub.id!r} is filed under {key!r}")
    for name in ("id", "customer_id", "storefront", "plan"):
        if not getattr(sub, name):
            raise StateError(f"{where}.{name}: cannot be empty")
    if sub.customer.get("id", sub.customer_id) != sub.customer_id:
        raise StateError(f"{where}.customer.id: differs from customer_id")
    if sub.status not in STATUSES:
        raise StateError(f"{where}.status: one of {', '.join(sorted(STATUSES))}, "
                         f"found {sub.status!r}")
    for name in ("index", "cycle"):
        if not 0 <= getattr(sub, name) <= _MAX_COUNT:
            raise StateError(f"{where}.{name}: from 0 to {_MAX_COUNT}, found "
                             f"{getattr(sub, name)}")
    for name in ("anchor", "trial_end", "cancel_at", "paused_at", "resume_by", "started"):
        value = getattr(sub, name)
        if value is not None:
            _check_day(value, f"{where}.{name}")
    _check_amount(sub.price, f"{where}.price")
    if sub.consent_price is not None:
        _check_amount(sub.consent_price, f"{where}.consent_price")
    if sub.consent is not None and sub.consent not in _CONSENT:
        raise StateError(f"{where}.consent: requested or collected, found {sub.consent!r}")
    if sub.pending_plan == "":
        raise StateError(f"{where}.pending_plan: cannot be empty")
    for i, promo in enumerate(sub.promotions):
        if not promo.name or not 0 <= promo.first_cycle <= _MAX_COUNT or (
                promo.last_cycle is not None
                and not promo.first_cycle <= promo.last_cycle <= _MAX_COUNT):
            raise StateError(f"{where}.promotions[{i}]: a name and cycles "
                             "0 ≤ first ≤ last")
    charge = sub.charge
    if charge is not None:
        cw = f"{where}.charge"
        if charge.kind not in _CHARGE_KINDS:
            raise StateError(f"{cw}.kind: one of {', '.join(sorted(_CHARGE_KINDS))}, "
                             f"found {charge.kind!r}")
        _check_currency(charge.currency, f"{cw}.currency")
        _check_day(charge.at, f"{cw}.at")
        _check_period(charge.period_start, charge.period_end, cw)
        for name in ("list", "discount", "credit", "tax", "net", "total", "gross_ex"):
            _check_amount(getattr(charge, name), f"{cw}.{name}")
        for name in ("discount_ex", "credit_ex"):  # a rounding residue may be negative
            _check_amount(getattr(charge, name), f"{cw}.{name}", signed=True)
        for i, d in enumerate(charge.discounts):
            _check_amount(d.amount, f"{cw}.discounts[{i}].amount")
    payment = sub.payment
    if payment is not None:
        pw = f"{where}.payment"
        _check_currency(payment.currency, f"{pw}.currency")
        _check_day(payment.at, f"{pw}.at")
        _check_period(payment.period_start, payment.period_end, pw)
        for name in ("total", "tax", "refunded", "base"):
            _check_amount(getattr(payment, name), f"{pw}.{name}")
        if payment.refunded > payment.total:
            raise StateError(f"{pw}.refunded: more than the {payment.total} paid")
    dunning = sub.dunning
    if dunning is not None:
        dw = f"{where}.dunning"
        if not dunning.policy:
            raise StateError(f"{dw}.policy: cannot be empty")
        if sub.charge is None:
            raise StateError(f"{dw}: dunning without an open charge")
        for name in ("first_failure", "grace_end", "ends"):
            value = getattr(dunning, name)
            if value is not None:
                _check_day(value, f"{dw}.{name}")
        for i, day in enumerate(dunning.retries):
            _check_day(day, f"{dw}.retries[{i}]")
        if list(dunning.retries) != sorted(dunning.retries):
            raise StateError(f"{dw}.retries: not in date order")
        if not 0 <= dunning.attempts <= _MAX_COUNT or not (
                len(dunning.retries) <= dunning.scheduled <= _MAX_COUNT):
            raise StateError(f"{dw}: attempts and scheduled out of range")
    if sub.status == "paused" and sub.paused_at is None:
        raise StateError(f"{where}.paused_at: a paused subscription needs it")


def _check_day(day: dt.date, where: str) -> None:
    if isinstance(day, dt.datetime):
        day = day.date()
    if not _FIRST_DAY <= day <= _LAST_DAY:
        raise StateError(f"{where}: {day.isoformat()} is outside {_FIRST_DAY.year}–"
                         f"{_LAST_DAY.year}")


def _check_period(start: dt.date, end: dt.date, where: str) -> None:
    _check_day(start, f"{where}.period_start")
    _check_day(end, f"{where}.period_end")


def _check_amount(amount: Decimal, where: str, *, signed: bool = False) -> None:
    sign, digits, exponent = amount.as_tuple()
    if sign and any(digits) and not signed:
        raise StateError(f"{where}: cannot be negative, found {amount}")
    assert isinstance(exponent, int)  # finite: the decimal hook refuses the others
    if exponent < -6 or len(digits) + exponent > _MAX_DIGITS:
        raise StateError(f"{where}: at most {_MAX_DIGITS} digits and 6 decimals, "
                         f"found {amount}")


def _check_currency(code: str, where: str) -> None:
    if len(code) != 3 or not code.isascii() or not code.isupper() or not code.isalpha():
        raise StateError(f"{where}: a 3-letter currency code, found {code!r}")


_plain_seen_in = cattrs.gen.make_dict_structure_fn(Seen, converter)


def _structure_seen(value: Any, _: type) -> Seen:
    if not isinstance(value, dict):
        raise _BadValue(f"expected an object {{\"digest\", \"at\", …}}, found "
                        f"{json_text(value)}")
    return _plain_seen_in(value, Seen)


converter.register_structure_hook(Seen, _structure_seen)
_plain_seen_out = cattrs.gen.make_dict_unstructure_fn(Seen, converter)
# State.applied keeps an applied event's Seen packed (revrules.state.pack_seen): written
# as the Seen it stands for, read back packed
converter.register_unstructure_hook_func(
    lambda t: t == Seen | int, lambda value: _plain_seen_out(unpack_seen(value)))
converter.register_structure_hook_func(
    lambda t: t == Seen | int, lambda value, _: pack_seen(_structure_seen(value, Seen)))
_plain_state = cattrs.gen.make_dict_unstructure_fn(State, converter)
_plain_state_in = cattrs.gen.make_dict_structure_fn(State, converter)
converter.register_unstructure_hook(State, _unstructure_state)
converter.register_structure_hook(State, _structure_state)


# -- reading -------------------------------------------------------------------------


def _where(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, format_exception=_format_error)
        return "; ".join(messages[:3]) + ("; …" if len(messages) > 3 else "")
    return str(exc)


def _format_error(exc: BaseException, kind: type | None) -> str:
    """One problem in words: the hooks' own message, else what was expected (never a
    Python type name)."""
    if isinstance(exc, _BadValue):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return f"unknown fields {', '.join(sorted(exc.extra_fields))}"
    return f"expected {_type_words(kind)}"


def _type_words(kind: type | None) -> str:
    words = {**_KIND_WORDS, Decimal: "a decimal string", dt.date: "a date YYYY-MM-DD",
             dt.datetime: "a datetime", tuple: "a list", immutables.Map: "an object"}
    if kind in words:
        return words[kind]
    if kind is not None and (_is_tuple(kind) or _is_map(kind)):
        return "a list" if _is_tuple(kind) else "an object"
    return "an object" if kind is not None and attrs.has(kind) else "another value"


def _loads(text: str) -> Any:
    try:
        return _decode(text)
    except json.JSONDecodeError as exc:
        raise WireError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") \
            from None
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not valid JSON: {exc}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number revrules accepts")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


_DECODER = json.JSONDecoder(parse_constant=_no_constant, object_pairs_hook=_no_duplicates)


def _decode(text: str) -> Any:
    """``json.loads(text, parse_constant=…, object_pairs_hook=…)`` with one decoder for
    every call (``json.loads`` with hooks builds a new one each time: a third of the
    time of reading a log line), raising what it raises."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


@in_context
def to_json(obj: Outcome | Decision | RevenueEvent | State | Any) -> str:
    """JSON for an :class:`Outcome`, :class:`Decision`, :class:`RevenueEvent` or :class:`State`."""
    return dumps(converter.unstructure(obj))


@in_context
def from_json(text: str, cls: type[T]) -> T:
    """Read what :func:`to_json` wrote; raise :class:`WireError` naming the bad field.

    An :class:`Outcome` read back has an empty ``state``: the wire form carries none.
    """
    data = _loads(text)
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        raise WireError(f"not a valid {cls.__name__}: {_where(exc)}") from None


def state_to_json(state: State) -> str:
    """The whole state as JSON; :func:`state_from_json` reads it back exactly."""
    return to_json(state)


def state_from_json(text: str) -> State:
    """Read a state written by :func:`state_to_json`; raise :class:`WireError` if it is not one."""
    return from_json(text, State)


def event_from_wire(obj: Mapping[str, Any]) -> Event:
    """One wire event as an :class:`Event`; raise :class:`EventError` with a stable code."""
    return parse_event(obj)


def read_events(lines: Iterable[str]) -> Iterator[tuple[int, Mapping[str, Any] | EventError]]:
    """Parse JSONL: ``(line number, object)`` per non-blank line, 1-based.

    A line that is not a JSON object yields an ``EventError("bad_json", "line N: …")``
    in place of the object, and a line longer than :data:`MAX_EVENT_LINE` characters an
    ``EventError("line_too_long", …)``, so one bad line never stops a log.
    """
    for number, line in enumerate(lines, 1):
        if number == 1:
            line = line.lstrip("\ufeff")
        if len(line) > MAX_EVENT_LINE and len(line.rstrip("\r\n")) > MAX_EVENT_LINE:
            yield number, EventError("line_too_long", f"line {number}: longer than "
                                     f"{MAX_EVENT_LINE:,} characters, the limit for one event")
            continue
        if not line.strip():
            continue
        try:
            obj = _decode(line)
        except json.JSONDecodeError as exc:
            yield number, EventError("bad_json", f"line {number}: not valid JSON: {exc.msg} "
                                     f"(column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:
            yield number, EventError("bad_json", f"line {number}: not valid JSON: {exc}")
            continue
        if not isinstance(obj, dict):
            yield number, EventError("bad_json", f"line {number}: an event is a JSON object, "
                                     f"found {_json_kind(obj)}")
            continue
        yield number, obj



def bounded_lines(handle: TextIO) -> Iterator[str]:
    """The lines of a text stream, none held longer than :data:`MAX_EVENT_LINE` + 1
    characters: of a longer line only its start is kept (for :func:`read_events` to
    refuse), the rest is read and dropped."""
    limit = MAX_EVENT_LINE + 1
    while True:
        line = handle.readline(limit)
        if not line:
            return
        if len(line) == limit and not line.endswith("\n"):
            while True:
                rest = handle.readline(limit)
                if not rest or rest.endswith("\n"):
                    break
        yield line


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"
