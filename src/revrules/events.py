"""Input events: what happens to subscriptions (WIRE.md "Input events").

:func:`parse_event` turns one JSON object into an :class:`Event` or raises
:class:`EventError` with a stable code; nothing about the state is consulted here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .diagnostics import did_you_mean, json_text
from .drafts import drafts
from .runtime import in_context

__all__ = ["Event", "EventError", "EVENT_TYPES", "parse_event", "EARLIEST", "LATEST",
           "MAX_STRING", "MAX_INTEGER_DIGITS", "MAX_FRACTION_DIGITS", "MAX_ATTRIBUTES"]

# -- limits (docs/wire.md "Limits") ----------------------------------------------------
#: Every time an event carries lies in [EARLIEST, LATEST), in UTC after conversion, and
#: so does every date a customer attribute holds: far enough from the ends of Python's
#: calendar (years 1–9999) that dates computed from them never overflow.
EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.timezone.utc)
LATEST = dt.datetime(3000, 1, 1, tzinfo=dt.timezone.utc)
#: The longest id, name, code, reason or string attribute value, in characters.
MAX_STRING = 256
#: Amounts and decimal attributes: at most this many digits before the point ...
MAX_INTEGER_DIGITS = 15
#: ... and after it (a currency's own precision is checked where the currency is known).
MAX_FRACTION_DIGITS = 6
#: Whole numbers (``attempt``, int attributes) are below 10 ** MAX_INTEGER_DIGITS too.
#: A customer object has at most this many attributes.
MAX_ATTRIBUTES = 256
_MAX_INT = 10 ** MAX_INTEGER_DIGITS
_MAX_NUMBER_TEXT = 64  # characters of an amount string, before it is parsed

# type → (required fields, optional fields) beyond id, type and at
EVENT_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "checkout": (("subscription", "storefront", "plan", "customer"), ("code",)),
    "renewal_due": (("subscription",), ()),
    "payment_succeeded": (("subscription",), ("amount", "currency", "psp", "reference",
                                              "attempt")),
    "payment_failed": (("subscription",), ("reason", "amount", "currency", "psp", "reference",
                                           "attempt")),
    "store_notification": (("subscription", "notification"), ("subtype", "reason", "amount",
                                                             "currency", "psp", "reference")),
    "plan_change_requested": (("subscription", "plan"), ()),
    "pause_requested": (("subscription",), ()),
    "resume_requested": (("subscription",), ()),
    "cancel_requested": (("subscription",), ()),
    "consent_given": (("subscription",), ()),
    "consent_declined": (("subscription",), ()),
    "refund_requested": (("subscription",), ("amount", "charge", "cancel")),
    "credit_granted": (("subscription", "amount"), ("reason",)),
    "tick": ((), ()),
}
_STRING_FIELDS = ("subscription", "storefront", "plan", "code", "reason", "currency", "psp",
                  "reference", "notification", "subtype", "charge")


class EventError(Exception):
    """An event that cannot be applied; the state stays as it was."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen(weakref_slot=False)
class Event:
    """One input event. Fields a type does not carry are None."""

    id: str
    type: str
    at: dt.datetime
    subscription: str | None = None
    storefront: str | None = None
    plan: str | None = None
    customer: Mapping[str, Any] | None = None
    code: str | None = None
    reason: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    psp: str | None = None
    reference: str | None = None
    attempt: int | None = None
    notification: str | None = None
    subtype: str | None = None
    charge: str | None = None  # refund_requested: the id of the paid charge to refund
    cancel: bool | None = None  # refund_requested with an amount: cancel as well


#: A fast constructor (:mod:`revrules.drafts`): the same value as ``Event(...)`` builds.
make_event: Callable[..., Event] = drafts(Event)[0]


def parse_time(value: object, field: str = "at") -> dt.datetime:
    """An ISO 8601 date (00:00 UTC) or datetime with an offset, as an aware UTC datetime."""
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime.combine(value, dt.time(), dt.timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                parsed = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(),
                                             dt.timezone.utc)
            else:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise EventError("bad_field", f"'{field}' is not an ISO 8601 date or datetime: "
                             f"{json_text(value)}") from None
    else:
        raise EventError("bad_field", f"'{field}' must be an ISO 8601 string, found "
                         f"{json_text(value)}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise EventError("naive_datetime", f"'{field}' has no UTC offset: {json_text(value)} "
                         "(write 'Z' or '+01:00')")
    try:
        utc = parsed.astimezone(dt.timezone.utc)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise EventError("out_of_range", f"'{field}' must lie between {EARLIEST.date()} and "
                         f"{(LATEST - dt.timedelta(days=1)).date()} (UTC), found {json_text(value)}")
    return utc


def check_date(value: dt.date, what: str) -> dt.date:
    """A calendar date inside the same window as event times."""
    if not EARLIEST.date() <= value < LATEST.date():
        raise EventError("out_of_range", f"{what} must lie between {EARLIEST.date()} and "
                         f"{(LATEST - dt.timedelta(days=1)).date()}, found {value}")
    return value


def check_string(value: str, what: str) -> str:
    if len(value) > MAX_STRING:
        raise EventError("too_long", f"{what} is {len(value)} characters long; at most "
                         f"{MAX_STRING} are allowed")
    return value


def check_decimal(value: Decimal, what: str) -> Decimal:
    """A finite decimal with at most MAX_INTEGER_DIGITS digits before the point and
    MAX_FRACTION_DIGITS after it (``bad_field`` for NaN and infinities)."""
    if not value.is_finite():
        raise EventError("bad_field", f"{what} must be a finite number, found {value}")
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if value and (value.adjusted() >= MAX_INTEGER_DIGITS or exponent < -MAX_FRACTION_DIGITS):
        raise EventError("out_of_range", f"{what} must have at most {MAX_INTEGER_DIGITS} "
                         f"digits before the decimal point and {MAX_FRACTION_DIGITS} after it")
    return value.copy_abs() if not value else value  # never a negative zero


def check_int(value: int, what: str) -> int:
    if not -_MAX_INT < value < _MAX_INT:
        raise EventError("out_of_range", f"{what} must have at most {MAX_INTEGER_DIGITS} "
                         "digits")
    return value


# type → (its fields beyond id, type and at in order, the set of every allowed field)
_FIELDS: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    kind: ((*required, *optional), frozenset({"id", "type", "at", *required, *optional}))
    for kind, (required, optional) in EVENT_TYPES.items()
}
_STRING_FIELD_SET = frozenset(_STRING_FIELDS)


def parse_event(data: Mapping[str, Any]) -> Event:
    """Validate one wire object; raise :class:`EventError` naming the first problem.

    Its Decimal work (an ``amount``) runs under :data:`revrules.runtime.CONTEXT`."""
    if type(data) is not dict and not isinstance(data, Mapping):
        raise EventError("bad_event", "an event is a JSON object")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EventError("missing_field", "the event has no 'id' (a non-empty string)")
    if len(event_id) > MAX_STRING:
        check_string(event_id, "'id'")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise EventError("missing_field", f"event {event_id} has no 'type'")
    fields = _FIELDS.get(kind)
    if fields is None:
        raise EventError("unknown_type", f"unknown event type '{kind}'"
                         f"{did_you_mean(kind, EVENT_TYPES)}")
    if "at" not in data:
        raise EventError("missing_field", f"event {event_id} has no 'at'")
    at = parse_time(data["at"])
    names, allowed = fields
    if not allowed.issuperset(data.keys()):
        for key in sorted(data):  # the first unknown field in sorted order is reported
            if key not in allowed:
                raise EventError("unknown_field", f"{kind} events have no field '{key}'"
                                 f"{did_you_mean(key, allowed)}")
    for key in EVENT_TYPES[kind][0]:
        if data.get(key) is None:
            raise EventError("missing_field", f"{kind} event {event_id} needs '{key}'")
    values: dict[str, Any] = {}
    for key in names:
        value = data.get(key)
        if value is None:
            continue
        if key in _STRING_FIELD_SET:
            if not isinstance(value, str) or not value:
                raise EventError("bad_field", f"'{key}' must be a non-empty string")
            if len(value) > MAX_STRING:
                check_string(value, f"'{key}'")
        elif key == "customer":
            value = _customer(value)
        elif key == "amount":
            value = _amount(value)
        elif key == "attempt":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EventError("bad_field", "'attempt' must be a whole number")
            check_int(value, "'attempt'")
        elif key == "cancel":
            if not isinstance(value, bool):
                raise EventError("bad_field", "'cancel' must be true or false")
        values[key] = value
    return make_event(event_id, kind, at, **values)


def _customer(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EventError("bad_field", "'customer' must be an object with an 'id'")
    cid = value.get("id")
    if not isinstance(cid, str) or not cid:
        raise EventError("missing_field", "'customer' needs an 'id' (a non-empty string)")
    if len(value) > MAX_ATTRIBUTES + 1:
        raise EventError("too_long", f"'customer' has {len(value) - 1} attributes; at most "
                         f"{MAX_ATTRIBUTES} are allowed")
    for key in value:  # input order: the first bad attribute is the one reported
        if not isinstance(key, str):
            raise EventError("bad_field", "customer attribute names are strings")
        if len(key) > MAX_STRING:
            check_string(key, "a customer attribute name")
        item = value[key]
        kind = type(item)
        if kind is str:
            if len(item) <= MAX_STRING:
                continue
        elif kind is int:
            if -_MAX_INT < item < _MAX_INT:
                continue
        elif kind is bool or item is None:
            continue
        what = f"customer attribute '{key}'"
        if isinstance(item, str):
            check_string(item, what)
        elif isinstance(item, int) and not isinstance(item, bool):
            check_int(item, what)
        elif item is not None and not isinstance(item, bool):
            raise EventError("bad_field", f"{what} must be a string, a whole number, true, "
                             f"false or null, found {_json_type(item)}")
    return dict(value)


def _json_type(value: object) -> str:
    if isinstance(value, float):
        return "a number with a fraction (write decimals as strings)"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


@in_context
def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventError("bad_field", "'amount' must be a decimal string like \"12.99\" "
                         "(never a float)")
    if isinstance(value, int):
        check_int(value, "'amount'")
    elif len(value) > _MAX_NUMBER_TEXT:
        raise EventError("out_of_range", f"'amount' is {len(value)} characters long: at most "
                         f"{MAX_INTEGER_DIGITS} digits before the point and "
                         f"{MAX_FRACTION_DIGITS} after it")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise EventError("bad_field", f"'amount' is not a number: {json_text(value)}") from None
    # a negative zero ("-0") is refused with the negatives: it would print as -0.00
    if not amount.is_finite() or amount.is_signed():
        raise EventError("bad_field", f"'amount' must be a non-negative number: {json_text(value)}")
    return check_decimal(amount, "'amount'")
