"""Immutable engine state: subscriptions, promotion counters and applied event ids.

Maps are ``immutables.Map`` (a persistent hash array mapped trie): applying an event
copies only the path it changes, so state stays cheap to keep for every step of a
replay. Nothing here is iterated in hash order where order reaches output.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import immutables

from .drafts import drafts
from .results import Discount

__all__ = ["State", "Subscription", "Charge", "Payment", "AttachedPromotion", "Dunning",
           "Seen", "RulesetStamp", "evolve", "pack_seen", "unpack_seen"]


_T = TypeVar("_T")
_MAKERS: dict[type, Any] = {}


def evolve(inst: _T, **changes: Any) -> _T:
    """``attrs.evolve`` for the engine's hot path.

    The state classes have no validators or converters, so a copy built as a mutable
    draft and then frozen (:func:`revrules.drafts.drafts`) is the same value, built
    several times faster than ``attrs.evolve`` builds it. Other attrs classes fall
    back to it.
    """
    make = _EVOLVERS.get(inst.__class__)
    if make is None:
        result: _T = attrs.evolve(inst, **changes)  # type: ignore[misc]  # any attrs class
        return result
    return make(inst, changes)  # type: ignore[no-any-return]


@attrs.frozen(weakref_slot=False)
class AttachedPromotion:
    """A promotion redeemed by a subscription: it discounts charged cycles first..last."""

    name: str
    first_cycle: int
    last_cycle: int | None  # None: forever


@attrs.frozen(weakref_slot=False)
class Charge:
    """An open (decided, not yet paid) charge."""

    kind: str  # checkout | renewal | proration | retry
    at: dt.datetime
    period_start: dt.date
    period_end: dt.date
    currency: str
    list: Decimal
    discount: Decimal
    credit: Decimal
    tax: Decimal
    net: Decimal
    total: Decimal
    psp: str | None
    gross_ex: Decimal  # ledger figures, tax-exclusive
    discount_ex: Decimal
    credit_ex: Decimal
    rule: str | None = None
    source: str | None = None
    discounts: tuple[Discount, ...] = ()
    id: str | None = None  # the charge id decisions and revenue events carry: "SUB:N"


@attrs.frozen(weakref_slot=False)
class Payment:
    """A settled charge, kept for refunds."""

    at: dt.datetime
    period_start: dt.date
    period_end: dt.date
    currency: str
    total: Decimal
    tax: Decimal
    refunded: Decimal = Decimal(0)
    psp: str | None = None
    base: Decimal = Decimal(0)  # list − discounts: what proration credits back
    charge: str | None = None  # the id of the charge it paid
    refunded_tax: Decimal = Decimal(0)  # the tax part of ``refunded``


@attrs.frozen(weakref_slot=False)
class Dunning:
    """A failed charge being recovered."""

    policy: str
    first_failure: dt.date
    retries: tuple[dt.date, ...]  # still pending, in order
    grace_end: dt.date | None
    ends: dt.date  # when the `then` action runs: the later of grace end and last retry + 1
    attempts: int = 1
    via: str | None = None
    scheduled: int = 0  # how many retries were scheduled in all


@attrs.frozen(weakref_slot=False)
class Subscription:
    id: str
    customer_id: str
    customer: immutables.Map[str, Any]
    storefront: str
    plan: str
    status: str
    anchor: dt.date  # the first charged period starts here
    index: int  # the next period to charge: it starts at anchor + index × every
    cycle: int  # charged periods so far
    price: Decimal  # the list price the subscription pays now
    contract: str | None = None
    promotions: tuple[AttachedPromotion, ...] = ()
    charge: Charge | None = None
    payment: Payment | None = None
    trial_end: dt.date | None = None
    consent: str | None = None  # requested | collected
    consent_price: Decimal | None = None
    pending_plan: str | None = None
    cancel_at: dt.date | None = None
    paused_at: dt.date | None = None
    resume_by: dt.date | None = None
    dunning: Dunning | None = None
    entitlements: tuple[str, ...] = ()
    started: dt.date | None = None
    charge_count: int = 0  # charges opened so far: the next one is "SUB:charge_count+1"
    earlier_payments: tuple[Payment, ...] = ()  # paid before ``payment``, oldest first
    credit_balance: Decimal = Decimal(0)  # granted credit the next charges use up


@attrs.frozen(weakref_slot=False)
class Seen:
    """What the state remembers of an event id (docs/semantics.md "Replays").

    ``digest`` is the digest of the event's canonical payload (everything but its id),
    ``at`` its time (what the replay window counts from); ``code`` and ``message`` are
    the error of a refused event, None for an applied one.
    """

    digest: str
    at: dt.datetime
    code: str | None = None
    message: str | None = None


#: An applied event's :class:`Seen` as ``State.applied`` keeps it (:func:`pack_seen`):
#: the digest's 128 bits above the event time's microseconds since 1900-01-01 UTC.
#: A million remembered ids take 52 MB of these instead of 190 MB of ``Seen`` objects
#: with their digest strings and times.
_AT_BITS = 56
_AT_MASK = (1 << _AT_BITS) - 1
_SINCE = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_MICRO = dt.timedelta(microseconds=1)
#: the last value packed, keyed by its digest and time objects: two engines fed one
#: parsed event (a what-if diff) keep one value for it, not one each
_last_packed: tuple[object, object, Seen | int] = (None, None, 0)


def pack_seen(seen: Seen) -> Seen | int:
    """What ``State.applied`` keeps for ``seen``: an ``int`` for an applied event with a
    digest, dated 1900–2999, which :func:`unpack_seen` reads back as an equal ``Seen``
    (its time in UTC); ``seen`` itself for anything else (a refusal, an id from a state
    file without digests)."""
    global _last_packed
    digest, at = seen.digest, seen.at
    last = _last_packed
    if last[0] is digest and last[1] is at and seen.code is None and seen.message is None:
        return last[2]
    if seen.code is not None or seen.message is not None or len(digest) != 32 \
            or at.utcoffset() is None:
        return seen
    try:
        number = int(digest, 16)
    except ValueError:
        return seen
    micros = _micros(at)
    if not 0 <= micros <= _AT_MASK or f"{number:032x}" != digest:
        return seen  # out of range, or a digest not written as the engine writes it
    value = number << _AT_BITS | micros
    _last_packed = (digest, at, value)
    return value


def unpack_seen(value: Seen | int) -> Seen:
    """The :class:`Seen` a value of ``State.applied`` stands for."""
    if isinstance(value, Seen):
        return value
    return Seen(f"{value >> _AT_BITS:032x}", _SINCE + (value & _AT_MASK) * _MICRO)


def seen_before(value: Seen | int, cutoff: dt.datetime) -> bool:
    """Whether the event ``value`` remembers is dated before ``cutoff`` (aware)."""
    if isinstance(value, Seen):
        return value.at < cutoff
    return value & _AT_MASK < _micros(cutoff)


def _micros(at: dt.datetime) -> int:
    """Microseconds from 1900-01-01 UTC to ``at`` (aware), exactly."""
    span = at - _SINCE
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


@attrs.frozen(weakref_slot=False)
class RulesetStamp:
    """The ruleset a state was last written under: name, version and content digest."""

    name: str
    version: str | None
    digest: str


def _empty_map() -> immutables.Map[Any, Any]:
    return immutables.Map()


def _packed(applied: immutables.Map[str, Seen | int]) -> immutables.Map[str, Seen | int]:
    """``applied`` as the engine keeps it: what two states are compared by, so that a
    state built with ``Seen`` objects equals the same state read back packed."""
    if not any(isinstance(value, Seen) for value in applied.values()):
        return applied
    with applied.mutate() as packed:
        for key, value in applied.items():
            if isinstance(value, Seen):
                packed[key] = pack_seen(value)
        result = packed.finish()
    return result


@attrs.frozen(weakref_slot=False)
class State:
    """Everything the engine knows. Immutable: :meth:`Engine.apply` returns a new one."""

    subscriptions: immutables.Map[str, Subscription] = attrs.field(factory=_empty_map)
    redemptions: immutables.Map[str, int] = attrs.field(factory=_empty_map)  # promo → count
    customer_redemptions: immutables.Map[str, int] = attrs.field(factory=_empty_map)
    # event id → what became of it (applied, or refused with an error), within the
    # engine's replay window; an applied event's Seen is kept packed (pack_seen): read
    # it with seen()
    applied: immutables.Map[str, Seen | int] = attrs.field(factory=_empty_map,
                                                           eq=_packed)
    clock: dt.datetime | None = None
    # subscription id → the earliest date something falls due for it (a trial end, a
    # retry, a grace end, a period-end cancel, a pause end); only subscriptions with
    # something pending, so that `tick` need not look at every subscription
    due: immutables.Map[str, dt.date] = attrs.field(factory=_empty_map)
    # LANGUAGE.md §5.1 "Time order": an event dated before the last event applied to its
    # subscription (subscription id → that time), or before the last `tick`, is refused
    # with `out_of_order`
    last_event: immutables.Map[str, dt.datetime] = attrs.field(factory=_empty_map)
    last_tick: dt.datetime | None = None
    # the ruleset the state was last written under (None: a new state)
    ruleset: RulesetStamp | None = None
    # `applied` is pruned of ids older than the replay window when it grows past this
    applied_limit: int = 0

    def subscription(self, sub_id: str) -> Subscription | None:
        return self.subscriptions.get(sub_id)

    def seen(self, event_id: str) -> Seen | None:
        """What the state remembers of ``event_id``, or None."""
        value = self.applied.get(event_id)
        return None if value is None else unpack_seen(value)

    def remembered(self) -> Iterator[tuple[str, Seen]]:
        """Every remembered event id with its :class:`Seen`, in the map's order."""
        for key, value in self.applied.items():
            yield key, unpack_seen(value)


_EVOLVERS: dict[type, Any] = {}
for _cls in (AttachedPromotion, Charge, Payment, Dunning, Subscription, Seen, State):
    _make, _EVOLVERS[_cls] = drafts(_cls)
    _MAKERS[_cls] = _make

#: Fast constructors (:mod:`revrules.drafts`): the same values as the classes build.
make_subscription: Callable[..., Subscription] = _MAKERS[Subscription]
make_charge: Callable[..., Charge] = _MAKERS[Charge]
make_payment: Callable[..., Payment] = _MAKERS[Payment]
make_seen: Callable[..., Seen] = _MAKERS[Seen]
make_state: Callable[..., State] = _MAKERS[State]
