"""Input events: what happens to subscriptions (WIRE.md "Input events").

:func:`parse_event` turns one JSON object into an :class:`Event` or raises
:class:`EventError` with a stable code; nothing about the state is consulted here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import attrs

from .diagnostics import did_you_mean
from .runtime import in_context

__all__ = ["Event", "EventError", "EVENT_TYPES", "parse_event"]

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
    "refund_requested": (("subscription",), ("amount",)),
    "tick": ((), ()),
}
_STRING_FIELDS = ("subscription", "storefront", "plan", "code", "reason", "currency", "psp",
                  "reference", "notification", "subtype")


class EventError(Exception):
    """An event that cannot be applied; the state stays as it was."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
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
                             f"{value!r}") from None
    else:
        raise EventError("bad_field", f"'{field}' must be an ISO 8601 string, found "
                         f"{type(value).__name__}")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise EventError("naive_datetime", f"'{field}' has no UTC offset: {value!r} "
                         "(write 'Z' or '+01:00')")
    return parsed.astimezone(dt.timezone.utc)


@in_context
def parse_event(data: Mapping[str, Any]) -> Event:
    """Validate one wire object; raise :class:`EventError` naming the first problem."""
    if not isinstance(data, Mapping):
        raise EventError("bad_event", "an event is a JSON object")
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EventError("missing_field", "the event has no 'id' (a non-empty string)")
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
        if key in _STRING_FIELDS:
            if not isinstance(value, str) or not value:
                raise EventError("bad_field", f"'{key}' must be a non-empty string")
        elif key == "customer":
            value = _customer(value)
        elif key == "amount":
            value = _amount(value)
        elif key == "attempt":
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise EventError("bad_field", "'attempt' must be a whole number")
        values[key] = value
    return Event(id=event_id, type=kind, at=at, **values)


def _customer(value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise EventError("bad_field", "'customer' must be an object with an 'id'")
    cid = value.get("id")
    if not isinstance(cid, str) or not cid:
        raise EventError("missing_field", "'customer' needs an 'id' (a non-empty string)")
    return dict(value)


def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise EventError("bad_field", "'amount' must be a decimal string like \"12.99\" "
                         "(never a float)")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise EventError("bad_field", f"'amount' is not a number: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise EventError("bad_field", f"'amount' must be a non-negative number: {value!r}")
    return amount
