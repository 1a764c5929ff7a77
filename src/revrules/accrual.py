"""Recognised and deferred revenue: the accrual view of the revenue events.

The cash ledger (:mod:`revrules.ledger`) counts a charge in the month it is paid. The
accrual view counts it over the days of service it pays for (ASC 606 / IFRS 15 style,
one performance obligation per charge, satisfied evenly over its service period):

* every **paid charge** (the net of a ``subscription.started``, ``subscription.renewed``
  or prorated ``subscription.upgraded`` / ``downgraded`` that a ``payment.succeeded``
  settled, tax-exclusive) is **recognised ratably by day** over its service period:
  the period it charges, from its first day to the next charge date (a proration: from
  the day of the change to the end of the period);
* **rounding**: after ``k`` of the period's ``N`` days, ``round(amount × k / N)`` (half
  even, to the currency's minor units) has been recognised; a month recognises what that
  figure grew by in it, and the **last day of the period takes the residue**, so a
  charge's recognised parts always add up to it exactly;
* recognition starts when the charge is paid: days of service before the payment are
  recognised in the month of the payment (a catch-up), never in a month already closed;
* a **refund** reverses what it covers: it first comes off the part not yet recognised
  (the rest of the period is recognised at the lower rate), and whatever it gives back
  beyond that reverses recognised revenue in the month of the refund;
* a **proration credit** (``credit.issued`` of a prorated plan change) moves the unused
  part of the old charge to the new one: the old charge stops being recognised for the
  days the credit pays back and the new charge recognises its full price;
* a **pause** stops the clock: the rest of the charge is recognised over the same number
  of days from the resume on (the engine shifts the paid period by the days paused);
* a **cancellation** ends the obligation: what is left of a paid charge is recognised
  in the month of the cancellation (after the refund the same event may carry);
* per month end: **deferred** revenue (paid, not yet recognised), **receivable** (charges
  decided but not paid, tax-exclusive: the cash ledger's ``outstanding``) and
  **unbilled**, the part of a receivable whose service days have already been delivered
  (recognised once the charge is paid; written off with it when a cancellation leaves it
  unpaid).

Months are calendar months of the service days and events in the ruleset's timezone
(UTC unless the ruleset says otherwise). At every month end::

    recognised (to date) + deferred = paid − refunded (to date)

An :class:`Accrual` is a fold of revenue events, additive over logs split by
subscription (:meth:`Accrual.merge`, ``+``), like the cash :class:`~revrules.ledger.Ledger`.
Service periods are derived from the events and the ruleset's billing periods (``every``):
the fold needs the ruleset the log was written under.

>>> Accrual().rows()
()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import immutables

from . import runtime as rt
from .ledger import Group
from .nodes import Duration
from .results import Outcome, RevenueEvent
from .runtime import CONTEXT, in_context, money_str, quantize

if TYPE_CHECKING:
    from .ruleset import Ruleset

__all__ = ["ACCRUAL_FIELDS", "Accrual", "AccrualFigures", "month_of_day"]

ZERO = Decimal(0)
_MONTH = Duration(1, "month")
_OPENING = frozenset({"subscription.started", "subscription.renewed",
                      "subscription.upgraded", "subscription.downgraded"})

#: The figures of an :class:`AccrualFigures`, in report order: three flows in the month,
#: three balances at its end.
ACCRUAL_FIELDS = ("paid", "refunded", "recognised", "deferred", "receivable", "unbilled")
_BALANCES = frozenset({"deferred", "receivable", "unbilled"})


def month_of_day(day: dt.date) -> str:
    """``2026-03`` for any day of March 2026."""
    return f"{day.year:04d}-{day.month:02d}"


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}"


def _first_day(month: str) -> dt.date:
    return dt.date(int(month[:4]), int(month[5:7]), 1)


@attrs.frozen
class AccrualFigures:
    """Accrual figures of one group and month (or a total), exact ``Decimal``.

    ``paid``, ``refunded`` and ``recognised`` are flows in the month; ``deferred``,
    ``receivable`` and ``unbilled`` are balances at its end.
    """

    paid: Decimal = ZERO
    refunded: Decimal = ZERO
    recognised: Decimal = ZERO
    deferred: Decimal = ZERO
    receivable: Decimal = ZERO
    unbilled: Decimal = ZERO

    def __add__(self, other: AccrualFigures) -> AccrualFigures:
        if not isinstance(other, AccrualFigures):
            return NotImplemented
        return AccrualFigures(*[CONTEXT.add(getattr(self, f), getattr(other, f))
                                for f in ACCRUAL_FIELDS])

    @property
    def is_zero(self) -> bool:
        return all(not getattr(self, f) for f in ACCRUAL_FIELDS)

    def flows_only(self) -> AccrualFigures:
        return attrs.evolve(self, deferred=ZERO, receivable=ZERO, unbilled=ZERO)

    def to_wire(self, currency: str) -> dict[str, str]:
        return {f: money_str(getattr(self, f), currency) for f in ACCRUAL_FIELDS}


_EMPTY = AccrualFigures()


@attrs.frozen
class Op:
    """Something that happened to a charge: paid, refunded, credited, paused …"""

    at: dt.datetime
    day: dt.date  # the local day it happened on
    kind: str  # pay | refund | credit_out | credit_in | pause | resume | cancel
    amount: Decimal = ZERO


@attrs.frozen
class Charge:
    """One charge as the accrual view sees it: its service period and what happened."""

    key: str
    subscription: str
    currency: str
    storefront: str
    channel: str
    plan: str
    opened: dt.datetime
    opened_day: dt.date
    net: Decimal  # tax-exclusive: what the customer owes for it, tax aside
    start: dt.date
    end: dt.date  # exclusive: the next charge date
    ops: tuple[Op, ...] = ()

    @property
    def group_key(self) -> tuple[str, str, str, str]:
        return self.currency, self.storefront, self.channel, self.plan


@attrs.frozen
class SubTrack:
    """What the fold needs to know of a subscription to place its next charge."""

    anchor: dt.date | None = None
    index: int = 0
    plan: str | None = None
    charges: tuple[str, ...] = ()  # keys of its charges, oldest first
    open: str | None = None  # the charge opened and not yet paid
    last_paid: str | None = None


def _empty_map() -> immutables.Map[Any, Any]:
    return immutables.Map()


@attrs.frozen
class Accrual:
    """The accrual view folded from revenue events; immutable, exact, additive.

    Build one with :meth:`fold` or :meth:`from_outcomes` (both need the ruleset the
    events were decided under, for the billing periods and the timezone); read it with
    :meth:`rows`, :meth:`by_month`, :meth:`totals` and :meth:`schedule`.
    """

    charges: immutables.Map[str, Charge] = attrs.field(factory=_empty_map)
    subs: immutables.Map[str, SubTrack] = attrs.field(factory=_empty_map)
    every: immutables.Map[str, Duration] = attrs.field(factory=_empty_map)
    tz: str = "UTC"
    last_day: dt.date | None = None  # the latest day any event falls on

    # -- building ----------------------------------------------------------------------
    @classmethod
    @in_context
    def fold(cls, events: Iterable[RevenueEvent], ruleset: Ruleset) -> Accrual:
        """The accrual view of ``events`` (in order) decided under ``ruleset``."""
        every = immutables.Map({name: plan.every for name, plan in ruleset.plans.items()})
        return cls(every=every, tz=ruleset.model.timezone)._extend(events)

    @classmethod
    def from_outcomes(cls, outcomes: Iterable[Outcome], ruleset: Ruleset) -> Accrual:
        return cls.fold((e for o in outcomes if o.ok for e in o.events), ruleset)

    @in_context
    def extend(self, events: Iterable[RevenueEvent]) -> Accrual:
        """A new view with ``events`` folded in, in order (this one is unchanged)."""
        return self._extend(events)

    def _extend(self, events: Iterable[RevenueEvent]) -> Accrual:
        charges = self.charges.mutate()
        subs = self.subs.mutate()
        last_day = self.last_day
        for event in events:
            day = rt.local_date(event.at, self.tz)
            if last_day is None or day > last_day:
                last_day = day
            track = subs.get(event.subscription) or SubTrack()
            subs[event.subscription] = self._step(charges, track, event, day)
        return Accrual(charges.finish(), subs.finish(), self.every, self.tz, last_day)

    def _period(self, plan: str | None) -> Duration:
        return self.every.get(plan, _MONTH) if plan is not None else _MONTH

    def _step(self, charges: immutables.MapMutation[str, Charge], track: SubTrack,
              event: RevenueEvent, day: dt.date) -> SubTrack:
        kind = event.type
        anchor, index, plan = track.anchor, track.index, track.plan
        if kind == "trial.granted" and event.date is not None:
            return attrs.evolve(track, anchor=event.date, index=0, plan=event.plan)
        if kind in _OPENING:
            every = self._period(event.plan)
            start, end = day, day
            if kind == "subscription.started":
                if anchor is not None and index == 0 and event.amount == 0 and \
                        not event.charge:
                    return attrs.evolve(track, plan=event.plan)  # a trial: charged later
                anchor, index = day, 1
                start, end = day, rt.add_periods(day, every, 1)
            elif kind == "subscription.renewed":
                start = event.date or day
                if anchor is not None and rt.add_periods(anchor, every, index) == start:
                    end = rt.add_periods(anchor, every, index + 1)
                    index += 1
                else:
                    anchor, index = start, 1
                    end = rt.add_periods(start, every, 1)
            else:  # a plan change now
                old = self._period(plan)
                if event.charge is not None:  # prorated
                    if every != old or anchor is None:
                        anchor, index = day, 1
                        end = rt.add_periods(day, every, 1)
                    else:
                        end = rt.add_periods(anchor, every, index)
                elif every != old and anchor is not None:
                    anchor, index = rt.add_periods(anchor, old, index), 0
            track = attrs.evolve(track, anchor=anchor, index=index, plan=event.plan)
            if event.amount and event.net >= 0:
                key = event.charge or f"{event.subscription}#{len(track.charges) + 1}"
                charges[key] = Charge(key, event.subscription, event.currency,
                                      event.storefront, event.channel, event.plan, event.at,
                                      day, event.net, start, max(end, start))
                track = attrs.evolve(track, charges=track.charges + (key,), open=key)
            return track
        if kind == "credit.issued" and event.credit > 0 and track.last_paid is not None:
            old_key = track.last_paid
            before = charges[old_key]
            moved = min(event.credit, _remaining(before, day))
            if moved <= 0:
                return track
            charges[old_key] = _with(before, Op(event.at, day, "credit_out", moved))
            new_key: str = event.charge or track.open or ""
            new = charges.get(new_key)
            if new is None:  # the credit pays the whole change: no charge to pay
                new_key = event.charge or f"{event.subscription}#{len(track.charges) + 1}"
                new = Charge(new_key, event.subscription, event.currency, event.storefront,
                             event.channel, event.plan, event.at, day, ZERO, day,
                             max(before.end, day))
                track = attrs.evolve(track, charges=track.charges + (new_key,))
            charges[new_key] = _with(new, Op(event.at, day, "credit_in", moved))
            return track
        if kind == "payment.succeeded":
            paid = event.charge if event.charge in charges else track.open
            if paid is not None and paid in charges:
                charges[paid] = _with(charges[paid], Op(event.at, day, "pay",
                                                        charges[paid].net))
                return attrs.evolve(track, open=None if paid == track.open else track.open,
                                    last_paid=paid)
            return track
        if kind == "payment.refunded":
            refunded = event.charge if event.charge in charges else track.last_paid
            if refunded is not None and refunded in charges and event.net:
                charges[refunded] = _with(charges[refunded],
                                          Op(event.at, day, "refund", event.net))
            return track
        if kind in ("subscription.canceled", "subscription.paused"):
            op = "cancel" if kind == "subscription.canceled" else "pause"
            for key in track.charges:
                charges[key] = _with(charges[key], Op(event.at, day, op))
            if op == "cancel":
                return attrs.evolve(track, open=None)
            return track
        if kind == "subscription.resumed":
            for key in track.charges:
                charges[key] = _with(charges[key], Op(event.at, day, "resume"))
            if event.date is not None:
                return attrs.evolve(track, anchor=event.date, index=0)
        return track

    @in_context
    def merge(self, other: Accrual) -> Accrual:
        """The view of both logs (for logs split by subscription: exactly the whole)."""
        charges = self.charges.mutate()
        for key, charge in other.charges.items():
            mine = charges.get(key)
            charges[key] = charge if mine is None else attrs.evolve(
                mine, ops=tuple(sorted(mine.ops + charge.ops, key=lambda o: o.at)))
        subs = self.subs.mutate()
        for sub, track in other.subs.items():
            subs[sub] = track
        every = self.every.mutate()
        for plan, period in other.every.items():
            every[plan] = period
        days = [d for d in (self.last_day, other.last_day) if d is not None]
        return Accrual(charges.finish(), subs.finish(), every.finish(), self.tz,
                       max(days) if days else None)

    def __add__(self, other: Accrual) -> Accrual:
        if not isinstance(other, Accrual):
            return NotImplemented
        return self.merge(other)

    # -- reading -----------------------------------------------------------------------
    @property
    def last_month(self) -> str | None:
        return month_of_day(self.last_day) if self.last_day is not None else None

    @in_context
    def rows(self) -> tuple[tuple[Group, AccrualFigures], ...]:
        """Every (currency, storefront, channel, plan, month) with a non-zero figure,
        sorted by currency, month, storefront, channel and plan."""
        last = self.last_month
        if last is None:
            return ()
        cells: dict[Group, AccrualFigures] = {}
        for charge in self.charges.values():
            for month, figures in _simulate(charge, last).items():
                group = Group(charge.currency, charge.storefront, charge.channel,
                              charge.plan, month)
                cells[group] = cells.get(group, _EMPTY) + figures
        ordered = sorted(cells.items(), key=lambda kv: (
            kv[0].currency, kv[0].month, kv[0].storefront, kv[0].channel, kv[0].plan))
        return tuple((g, f) for g, f in ordered if not f.is_zero)

    @in_context
    def by_month(self) -> dict[tuple[str, str], AccrualFigures]:
        """Figures per (currency, month), every group together; the months between a
        currency's first and the last month are all there."""
        result: dict[tuple[str, str], AccrualFigures] = {}
        for group, figures in self.rows():
            key = (group.currency, group.month)
            result[key] = result.get(key, _EMPTY) + figures
        last = self.last_month
        for currency in sorted({c for c, _ in result}):
            month = min(m for c, m in result if c == currency)
            while last is not None and month <= last:
                result.setdefault((currency, month), _EMPTY)
                month = _next_month(month)
        return dict(sorted(result.items()))

    @in_context
    def totals(self) -> dict[str, AccrualFigures]:
        """Per currency: the flows summed over every month, the balances at the end of
        the last month."""
        result: dict[str, AccrualFigures] = {}
        last = self.last_month
        for (currency, month), figures in self.by_month().items():
            part = figures if month == last else figures.flows_only()
            result[currency] = result.get(currency, _EMPTY) + part
        return dict(sorted(result.items()))

    @in_context
    def schedule(self, key: str) -> dict[str, Decimal]:
        """How one charge (by its id, ``SUB:N``) is recognised, month by month, to the
        end of its service period (past the end of the log too)."""
        charge = self.charges[key]
        months = _simulate(charge, None)
        return {m: f.recognised for m, f in sorted(months.items()) if f.recognised}

    def to_json(self) -> str:
        """:meth:`to_wire` as one deterministic JSON document."""
        from .wire import dumps

        return dumps(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        """JSON-ready data: totals, months and groups, money in the currency's minor units."""
        return {
            "basis": "accrual",
            "totals": {c: f.to_wire(c) for c, f in self.totals().items()},
            "months": [{"currency": c, "month": m, **f.to_wire(c)}
                       for (c, m), f in self.by_month().items()],
            "groups": [{"currency": g.currency, "month": g.month,
                        "storefront": g.storefront, "channel": g.channel, "plan": g.plan,
                        **f.to_wire(g.currency)} for g, f in self.rows()],
        }


def _with(charge: Charge, op: Op) -> Charge:
    return attrs.evolve(charge, ops=charge.ops + (op,))


def _remaining(charge: Charge, day: dt.date) -> Decimal:
    """What of a paid charge is not yet recognised at the start of ``day``."""
    run = _Run(charge)
    for op in charge.ops:
        if op.day > day:
            break
        run.apply(op)
    run.advance(day)
    return run.deferred()


class _Run:
    """One charge's recognition, replayed from its operations (at read time)."""

    def __init__(self, charge: Charge) -> None:
        self.charge = charge
        self.currency = charge.currency
        self.paid = False
        self.credit = ZERO  # credit moved in, recognisable before the charge is paid
        self.pool = charge.net  # to recognise over the schedule from ``base``
        self.base = charge.start
        self.segments: list[tuple[dt.date, dt.date]] = [(charge.start, charge.end)]
        self.done = ZERO  # recognised of ``pool`` so far
        self.paused_days: int | None = None
        self.closed = False
        self.booked: dict[str, Decimal] = {}
        self.month = month_of_day(charge.opened_day)

    # the schedule ----------------------------------------------------------------------
    def _days(self) -> int:
        return sum((b - a).days for a, b in self.segments) + (self.paused_days or 0)

    def _served(self, day: dt.date) -> int:
        return sum(max(0, (min(b, day) - a).days) for a, b in self.segments)

    def _through(self, day: dt.date) -> Decimal:
        """round(pool × days served before ``day`` / days); the last day takes the residue."""
        total = self._days()
        served = self._served(day)
        if total <= 0 or served >= total:
            return self.pool
        return quantize(CONTEXT.divide(CONTEXT.multiply(self.pool, Decimal(served)),
                                       Decimal(total)), self.currency)

    @property
    def live(self) -> bool:
        return (self.paid or self.charge.net == 0) and not self.closed

    def book(self, amount: Decimal) -> None:
        if amount:
            self.booked[self.month] = CONTEXT.add(self.booked.get(self.month, ZERO), amount)

    def advance(self, day: dt.date) -> None:
        if not self.live:
            return
        now = self._through(day)
        self.book(CONTEXT.subtract(now, self.done))
        self.done = now

    def deferred(self) -> Decimal:
        if self.closed:
            return ZERO
        if not self.live:
            return self.credit
        return CONTEXT.subtract(self.pool, self.done)

    def _rebase(self, day: dt.date, pool: Decimal) -> None:
        self.pool, self.done, self.base = pool, ZERO, day
        self.segments = [(max(a, day), b) for a, b in self.segments if b > day]

    # operations ------------------------------------------------------------------------
    def apply(self, op: Op) -> None:
        if self.closed:
            if op.kind == "refund":  # after the obligation ended: reverses revenue
                self.book(-op.amount)
            return
        self.advance(op.day)
        kind = op.kind
        if kind == "pay":
            self.paid = True
            self.pool = CONTEXT.add(self.pool, self.credit)
            self.credit = ZERO
            self.advance(op.day)  # days already served are caught up in this month
        elif kind == "credit_in":
            if self.live:
                self._rebase(op.day, CONTEXT.add(self.deferred(), op.amount))
            else:
                self.credit = CONTEXT.add(self.credit, op.amount)
        elif kind in ("refund", "credit_out"):
            left = self.deferred()
            if op.amount <= left:
                self._rebase(op.day, CONTEXT.subtract(left, op.amount))
            else:
                self.book(CONTEXT.subtract(left, op.amount))
                self._rebase(op.day, ZERO)
        elif kind == "pause" and self.paused_days is None and self.live:
            rest = sum((b - max(a, op.day)).days for a, b in self.segments if b > op.day)
            if rest > 0:
                self._rebase(op.day, self.deferred())
                self.segments, self.paused_days = [], rest
        elif kind == "resume" and self.paused_days is not None:
            self.segments = [(op.day, op.day + dt.timedelta(days=self.paused_days))]
            self.paused_days = None
        elif kind == "cancel":
            if self.live:
                self.book(self.deferred())
            else:
                self.book(self.credit)  # an unpaid charge is written off; its credit stays
            self.closed = True

    def receivable(self) -> Decimal:
        return self.charge.net if not self.paid and not self.closed else ZERO

    def unbilled(self, day: dt.date) -> Decimal:
        """The delivered part of a receivable: round(net × days served / days)."""
        if not self.receivable():
            return ZERO
        total = self._days()
        if total <= 0:
            return self.charge.net
        return quantize(CONTEXT.divide(CONTEXT.multiply(self.charge.net,
                                                        Decimal(self._served(day))),
                                       Decimal(total)), self.currency)

    def finished(self) -> bool:
        return (self.closed or (self.live and self.done == self.pool
                                and self.paused_days is None)) and not self.credit


def _simulate(charge: Charge, last: str | None) -> dict[str, AccrualFigures]:
    """A charge's figures per month, from the month it opened to ``last`` (None: until
    its recognition ends)."""
    run = _Run(charge)
    out: dict[str, AccrualFigures] = {}
    flows: dict[str, tuple[Decimal, Decimal]] = {}
    for op in charge.ops:
        if op.kind == "pay":
            paid, refunded = flows.get(month_of_day(op.day), (ZERO, ZERO))
            flows[month_of_day(op.day)] = (paid + charge.net, refunded)
        elif op.kind == "refund":
            paid, refunded = flows.get(month_of_day(op.day), (ZERO, ZERO))
            flows[month_of_day(op.day)] = (paid, refunded + op.amount)
    ops: Iterator[Op] = iter(charge.ops)
    pending = next(ops, None)
    month = run.month
    end_month = month_of_day(max([charge.end, charge.opened_day]
                                 + [op.day for op in charge.ops]))
    while True:
        if last is not None and month > last:
            break
        boundary = _first_day(_next_month(month))
        while pending is not None and pending.day < boundary:
            run.apply(pending)
            pending = next(ops, None)
        run.advance(boundary)
        paid, refunded = flows.get(month, (ZERO, ZERO))
        out[month] = AccrualFigures(paid=paid, refunded=refunded,
                                    recognised=run.booked.get(month, ZERO),
                                    deferred=run.deferred(), receivable=run.receivable(),
                                    unbilled=run.unbilled(boundary))
        if pending is None and month >= end_month and (run.finished() or last is None and
                                                       not run.receivable()):
            break
        if last is None and month > end_month and pending is None:
            break
        month = _next_month(month)
        run.month = month
    return {m: f for m, f in out.items() if not f.is_zero}


def accrual_figures(accrual: Accrual) -> Mapping[tuple[str, str], AccrualFigures]:
    """:meth:`Accrual.by_month` (a function, for renderers)."""
    return accrual.by_month()
