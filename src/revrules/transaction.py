"""The transaction: one event's work over a copy-on-write draft of the state.

A :class:`Tx` holds the draft (subscriptions, the due index, redemption counts), the
decisions and the revenue events of one event, and the steps every family of
transitions shares: looking up the subscription, storing it (and keeping the due index
in step), the rule context, decisions, entitlements, promotion redemptions and the
commit. The transitions themselves live in :mod:`revrules.transitions`, one module per
event family, as functions of a ``Tx``; prices come from :mod:`revrules.pricing` and
revenue events are built by :mod:`revrules.emission`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import immutables

from . import emission, pricing
from . import model as m
from . import runtime as rt
from .compiler import Ctx
from .diagnostics import did_you_mean, one_edit_away
from .drafts import maker
from .events import Event, EventError
from .pricing import Quote
from .results import Decision, Discount, RevenueEvent, Trace
from .state import (AttachedPromotion, Seen, State, Subscription, evolve, make_seen,
                    pack_seen, seen_before)

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Tx", "Unserved", "fail"]


class Unserved(EventError):
    """An event about a subscription the ruleset cannot serve (:meth:`Engine.cannot_serve`)."""


def fail(code: str, message: str) -> EventError:
    """The clean error of an event (``ok: false`` with ``code``)."""
    return EventError(code, message)


#: ``applied`` is never pruned below this many ids (pruning is a scan: amortised over them)
PRUNE_MIN = 4096


def remember(applied: immutables.Map[str, Seen | int], limit: int, event_id: str, seen: Seen,
             clock: dt.datetime | None,
             window: dt.timedelta) -> tuple[immutables.Map[str, Seen | int], int]:
    """``applied`` with ``event_id``; when it has grown past ``limit``, the ids of events
    dated before ``clock - window`` are dropped
    and the next limit is twice what is left, so the scans cost O(1) per event. An id
    dated within ``window`` of the newest event is always kept."""
    applied = applied.set(event_id, pack_seen(seen))
    if len(applied) <= max(limit, PRUNE_MIN) or clock is None:
        return applied, limit
    cutoff, ahead = clock - window, clock + window
    with applied.mutate() as kept:
        for key, value in applied.items():
            # a refusal dated more than a window after every applied event is dropped too,
            # or refused events from the far future would be kept for ever
            if seen_before(value, cutoff) or (isinstance(value, Seen) and value.code is not None
                                              and value.at > ahead):
                del kept[key]
        applied = kept.finish()
    return applied, max(PRUNE_MIN, 2 * len(applied))


def time_text(at: dt.datetime) -> str:
    return at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Tx:
    """One event's work over a copy-on-write view of the state."""

    def __init__(self, engine: Engine, state: State, event: Event):
        self.engine = engine
        self.rules = engine.rules
        self.state = state
        self.event = event
        self.tz = engine.tz
        self.rounding = engine.rounding
        self.subs = state.subscriptions
        self.due = state.due
        self.redemptions = state.redemptions
        self.customer_redemptions = state.customer_redemptions
        self.decisions: list[Decision] = []
        self.events: list[RevenueEvent] = []
        self.day = rt.local_date(event.at, self.tz)

    # -- plumbing ----------------------------------------------------------------------
    def check_order(self) -> None:
        """LANGUAGE.md §5.1 "Time order": nothing before the last tick, nothing before the
        last event of its subscription; a tick is compared only with the last tick."""
        ev = self.event
        last_tick = self.state.last_tick
        if last_tick is not None and ev.at < last_tick:
            raise fail("out_of_order", f"{ev.type} at {time_text(ev.at)} is before the last "
                       f"tick, at {time_text(last_tick)}")
        if ev.subscription is None or ev.type == "tick":
            return
        last = self.state.last_event.get(ev.subscription)
        if last is not None and ev.at < last:
            raise fail("out_of_order", f"{ev.type} at {time_text(ev.at)} is before the last "
                       f"event of subscription '{ev.subscription}', at {time_text(last)}")

    def commit(self, digest: str) -> State:
        ev = self.event
        clock = self.state.clock
        if clock is None or ev.at > clock:
            clock = ev.at
        last_tick = ev.at if ev.type == "tick" else self.state.last_tick
        last_event = self.state.last_event
        if ev.subscription is not None and ev.subscription in self.subs and \
                last_event.get(ev.subscription) != ev.at:
            last_event = last_event.set(ev.subscription, ev.at)
        applied, limit = remember(self.state.applied, self.state.applied_limit, ev.id,
                                   make_seen(digest, ev.at), clock, self.engine.replay_window)
        # the state carries this ruleset's stamp (Engine.adopt)
        return maker(State)(self.subs, self.redemptions, self.customer_redemptions,
                            applied, clock, self.due, last_event, last_tick,
                            self.rules.stamp, limit)

    def check_precision(self, amount: Decimal, currency: str) -> None:
        if rt.quantize(amount, currency) != amount:
            places = -int(rt.exponent(currency).as_tuple().exponent)
            raise fail("bad_precision", f"{currency} amounts have at most {places} decimals, "
                       f"found {amount}")

    def put(self, sub: Subscription) -> Subscription:
        """Store ``sub`` and keep the due index (what ``tick`` looks at) in step."""
        self.subs = self.subs.set(sub.id, sub)
        item = self.next_due(sub)
        day = item[0] if item is not None else None
        if self.due.get(sub.id) != day:
            self.due = self.due.delete(sub.id) if day is None else self.due.set(sub.id, day)
        return sub

    def emit(self, kind: str, sub: Subscription, *, at: dt.datetime | None = None,
             rule: str | None = None, source: Any = None, **fields: Any) -> None:
        self.events.append(emission.revenue_event(
            self.rules, f"{self.event.id}.{len(self.events) + 1}", kind, sub,
            at or self.event.at, rule, source, **fields))

    def subscription(self) -> Subscription:
        sub_id = self.event.subscription
        assert sub_id is not None
        sub = self.subs.get(sub_id)
        if sub is None:
            raise fail("unknown_subscription", f"unknown subscription '{sub_id}'"
                       f"{did_you_mean(sub_id, self._nearby_ids(sub_id))}")
        error = self.engine.cannot_serve(sub)
        if error is not None:
            raise Unserved(error.code, error.message)
        return sub

    def _nearby_ids(self, sub_id: str) -> list[str]:
        # bounded: look up the ids one typo away, never scan (or sort) every id
        return one_edit_away(sub_id, self.subs.__contains__)

    def at_time(self, day: dt.date) -> dt.datetime:
        return rt.start_of(day, self.tz)

    def ctx(self, sub: Subscription, cycle: int | None = None) -> Ctx:
        """What rules see: ``subscription.cycle`` is ``cycle`` when pricing a charge (the
        cycle being charged), else the charged periods so far."""
        return Ctx(sub.customer, sub.customer_id, self.rules.storefronts[sub.storefront],
                   self.rules.plans[sub.plan], sub.cycle if cycle is None else cycle,
                   sub.status, self.event.at, self.event.type, None, self.event.reason,
                   self.event.attempt or 0, self.event.psp)

    def next_charge(self, sub: Subscription) -> dt.date:
        return rt.add_periods(sub.anchor, self.rules.plans[sub.plan].every, sub.index)

    def period(self, sub: Subscription, index: int) -> tuple[dt.date, dt.date]:
        every = self.rules.plans[sub.plan].every
        return rt.add_periods(sub.anchor, every, index), rt.add_periods(sub.anchor, every,
                                                                          index + 1)

    # -- what is due -------------------------------------------------------------------
    def due_item(self, sub: Subscription, until: dt.date) -> tuple[dt.date, int, str] | None:
        """The earliest thing due for ``sub`` on or before ``until``: (date, order, kind)."""
        item = self.next_due(sub)
        return item if item is not None and item[0] <= until else None

    def next_due(self, sub: Subscription) -> tuple[dt.date, int, str] | None:
        """The earliest thing ``tick`` will have to settle for ``sub``, if any."""
        items: list[tuple[dt.date, int, str]] = []
        if sub.status in ("canceled", "unpaid"):
            return None
        if sub.status == "paused":
            if sub.resume_by is not None:
                items.append((sub.resume_by, 0, "resume"))
        else:
            if sub.cancel_at is not None:
                items.append((sub.cancel_at, 1, "cancel"))
            if sub.status == "trialing" and sub.charge is None:
                items.append((self.next_charge(sub), 2, "trial_end"))
            if sub.dunning is not None:
                if sub.dunning.retries:
                    items.append((sub.dunning.retries[0], 3, "retry"))
                else:
                    items.append((sub.dunning.ends, 4, "dunning_end"))
        return min(items) if items else None

    # -- pricing, with what this transaction knows -------------------------------------
    def quote(self, sub: Subscription, list_amount: Decimal, discounts: tuple[Discount, ...],
              credit: Decimal, cycle: int, trace: list[Trace]) -> Quote:
        """:func:`revrules.pricing.quote` for charging ``cycle`` of ``sub`` now."""
        return pricing.quote(self.rules, self.rounding, self.ctx(sub, cycle), list_amount,
                             discounts, credit, trace, self.engine.trace)

    def recurring_price(self, sub: Subscription, day: dt.date) -> Decimal:
        """:func:`revrules.pricing.recurring_price` of ``sub`` from its next charge."""
        return pricing.recurring_price(self.rules, self.rounding, sub,
                                       self.ctx(sub, sub.cycle + 1), day, self.engine.trace)

    def price_figures(self, sub: Subscription, amount: Decimal) -> dict[str, Any]:
        """:func:`revrules.pricing.price_figures`: what a price event of ``sub`` carries."""
        return pricing.price_figures(self.rules, self.rounding, self.ctx(sub, sub.cycle + 1),
                                     sub, amount, self.engine.trace)

    # -- promotions --------------------------------------------------------------------
    def redeem(self, sub: Subscription, p: m.Promotion, cycle: int) -> AttachedPromotion:
        count = self.redemptions.get(p.name, 0) + 1
        self.redemptions = self.redemptions.set(p.name, count)
        key = pricing.redemption_key(p.name, sub.customer_id)
        self.customer_redemptions = self.customer_redemptions.set(
            key, self.customer_redemptions.get(key, 0) + 1)
        self.emit("campaign.applied", sub, rule=p.name, source=p.span)
        if p.limit_total is not None and count == p.limit_total:
            self.emit("promo.exhausted", sub, rule=p.name, source=p.span)
        last = None if p.cycles is None else cycle + p.cycles - 1
        return AttachedPromotion(p.name, cycle, last)

    def apply_promotions(self, sub: Subscription, list_amount: Decimal, cycle: int,
                         day: dt.date, code: str | None, reasons: list[str],
                         trace: list[Trace],
                         automatic: bool = True) -> tuple[Subscription, tuple[Discount, ...]]:
        """The promotions chosen for this charge, redeemed (and attached) where new."""
        chosen = pricing.choose_promotions(self.rules, self.rounding, sub, self.ctx(sub, cycle),
                                           list_amount, cycle, day, code, reasons,
                                           self.redemptions, self.customer_redemptions,
                                           automatic)
        attached = list(sub.promotions)
        discounts = []
        for p, amount, new in chosen:
            if new:
                attached.append(self.redeem(sub, p, cycle))
            discounts.append(Discount(p.name, amount))
            trace.append(self.engine.trace(p.name, p.span))
        if len(attached) != len(sub.promotions):
            sub = evolve(sub, promotions=tuple(attached))
        return sub, tuple(discounts)

    # -- decisions and entitlements ----------------------------------------------------
    def decision(self, sub: Subscription, kind: str, quote: Quote | None = None,
                 **fields: Any) -> None:
        if quote is not None:
            fields.update(currency=quote.currency, list=quote.list, discounts=quote.discounts,
                          credit=quote.credit, tax=quote.tax, net=quote.net, total=quote.total,
                          psp=quote.psp, trace=quote.trace + tuple(fields.pop("trace", ())))
        else:
            fields.setdefault("currency", self.rules.storefronts[sub.storefront].currency)
        fields.setdefault("next_charge", None if sub.status == "canceled"
                          else self.next_charge(sub))
        self.decisions.append(maker(Decision)(sub.id, kind, **fields))

    def deny(self, sub: Subscription, reason: str, trace: tuple[Trace, ...] = ()) -> None:
        self.decision(sub, "deny", reasons=(reason,), trace=trace)

    def set_entitlements(self, sub: Subscription, wanted: tuple[str, ...], rule: str,
                         source: Any, at: dt.datetime | None = None) -> Subscription:
        revoked = tuple(e for e in sub.entitlements if e not in wanted)
        granted = tuple(e for e in wanted if e not in sub.entitlements)
        if revoked:
            self.emit("entitlement.revoked", sub, at=at, rule=rule, source=source,
                      entitlements=revoked)
        if granted:
            self.emit("entitlement.granted", sub, at=at, rule=rule, source=source,
                      entitlements=granted)
        return evolve(sub, entitlements=wanted)

    def credit_note(self, used: Decimal, sub: Subscription) -> str:
        currency = self.rules.storefronts[sub.storefront].currency
        return (f"credit {rt.money_str(used, currency)} {currency} used, "
                f"{rt.money_str(sub.credit_balance, currency)} {currency} left")
