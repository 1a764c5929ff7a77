"""The ledger: revenue events folded into revenue figures (LANGUAGE.md §6).

A :class:`Ledger` is built by folding :class:`~revrules.results.RevenueEvent`\\ s. It
keeps two things, both additive, so that the ledger of a log equals the sum
(:meth:`Ledger.merge`, ``+``) of the ledgers of any split of it by subscription:

* **cells** per (currency, storefront, channel, plan, month): gross sales,
  discounts, credits, tax, refunds, net revenue and commission, exact ``Decimal``,
  and churn, counted in the month it happens;
* a **track** per subscription: its status, plan, recurring amount and amount owed at
  the last change of each month, from which month-end counts (active, trialing,
  outstanding) and MRR are derived (a track grows with its months, not its events).

Conventions (written down because §6 leaves them to us):

* Cash basis: a charge counts in the calendar month (UTC) of its
  ``payment.succeeded``; a refund in the month of its ``payment.refunded``.
  Failed or open charges are not sales.
* Every figure is tax-exclusive. ``gross`` is the list price, ``discounts`` and
  ``credits`` (proration credit used) come off it; ``refunds`` is the tax-exclusive
  part of the money given back; ``net`` = gross − discounts − refunds − credits,
  summed from the events' own ``net`` (so the identity is a real check).
* ``tax`` is tax collected net of refunds: the tax on payments minus the tax part
  of refunds.
* ``commission`` is what the storefront keeps of each payment (``payment.succeeded``
  carries it) less what it gives back on refunds (``payment.refunded`` carries the
  commission on the refunded net); ``proceeds`` = net − commission.
* ``active`` counts subscriptions that are active or past due (in dunning, still
  subscribed) at the end of the month; ``trialing`` those in a trial; a
  subscription counts under the plan and storefront it has at month end.
* ``mrr``, ``outstanding`` and ``written_off`` follow LANGUAGE.md §5.1, defined once
  in :mod:`revrules.accounting` (which reconciliation uses too): MRR counts every
  subscription active or past due at month end, paid up or not, at its recurring
  price (tax-exclusive, after recurring discounts) divided by the months in its
  billing period (a yearly plan counts 1/12), rounded once to the currency's minor
  units. The period comes from the ruleset when one is given, otherwise from the gap
  between the subscription's period starts, otherwise 12 for a plan whose name says
  ``annual`` or ``year`` and 1 for any other.
* ``churned`` counts subscriptions canceled in the month (or moved to ``unpaid``
  by dunning).
* ``outstanding`` is what is decided but not paid at the end of the month: the
  tax-exclusive net of every open charge of a subscription that is not canceled (a
  dunning pause or ``unpaid`` keeps it). A cancellation writes an open charge off:
  it leaves outstanding and counts as ``written_off`` in the month of the
  cancellation.

Totals per currency (:meth:`Ledger.totals`) sum the money figures and churn over
every month; active, trialing, MRR and outstanding are those at the end of the last
month.

>>> from revrules.ledger import Ledger
>>> Ledger().rows()
()
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import immutables

from . import accounting
from .accounting import Account
from .results import Outcome, RevenueEvent
from .runtime import CONTEXT, in_context, shared

if TYPE_CHECKING:
    from .movements import Movements
    from .ruleset import Ruleset

__all__ = [
    "COUNT_FIELDS",
    "FIELDS",
    "MONEY_FIELDS",
    "Figures",
    "Group",
    "Ledger",
    "month_of",
    "months_per_period",
]

ZERO = Decimal(0)

#: The money figures of a :class:`Figures`, in report order.
MONEY_FIELDS = ("gross", "discounts", "credits", "refunds", "net", "tax", "commission",
                "proceeds", "mrr", "outstanding", "written_off")
#: The counts of a :class:`Figures`, in report order.
COUNT_FIELDS = ("payments", "refund_count", "active", "trialing", "churned")
#: Every figure, in report order.
FIELDS = ("payments", "gross", "discounts", "credits", "refunds", "net", "tax", "commission",
          "proceeds", "refund_count", "active", "trialing", "mrr", "churned", "outstanding",
          "written_off")


@attrs.frozen(order=True)
class Group:
    """Where figures belong: a currency, storefront, channel, plan and month (``YYYY-MM``)."""

    currency: str
    storefront: str
    channel: str
    plan: str
    month: str


@attrs.frozen
class Figures:
    """Revenue figures of one group (or a total); money is exact ``Decimal``.

    ``proceeds`` is net − commission. Adding two :class:`Figures` adds every field.
    """

    payments: int = 0
    gross: Decimal = ZERO
    discounts: Decimal = ZERO
    credits: Decimal = ZERO
    refunds: Decimal = ZERO
    net: Decimal = ZERO
    tax: Decimal = ZERO
    commission: Decimal = ZERO
    refund_count: int = 0
    active: int = 0
    trialing: int = 0
    mrr: Decimal = ZERO
    churned: int = 0
    outstanding: Decimal = ZERO
    written_off: Decimal = ZERO  # open charges a cancellation left unpaid, tax-exclusive

    @property
    def proceeds(self) -> Decimal:
        return CONTEXT.subtract(self.net, self.commission)

    def __add__(self, other: Figures) -> Figures:
        if not isinstance(other, Figures):
            return NotImplemented
        add: Any = CONTEXT.add
        return Figures(*[add(a, b) if money else a + b
                         for money, a, b in zip(_MONEY_SLOTS, _values(self), _values(other),
                                                 strict=True)])

    def __sub__(self, other: Figures) -> Figures:
        if not isinstance(other, Figures):
            return NotImplemented
        subtract: Any = CONTEXT.subtract
        return Figures(*[subtract(a, b) if money else a - b
                         for money, a, b in zip(_MONEY_SLOTS, _values(self), _values(other),
                                                 strict=True)])

    def get(self, name: str) -> Decimal | int:
        """A figure by name, ``proceeds`` included."""
        value: Decimal | int = getattr(self, name)
        return value

    @property
    def is_zero(self) -> bool:
        return all(not self.get(name) for name in FIELDS)


_EMPTY = Figures()
# Figures add field by field: money with the library's context (never the caller's),
# counts as integers.
_values = operator.attrgetter(*(f.name for f in attrs.fields(Figures)))
_MONEY_SLOTS = tuple(isinstance(v, Decimal) for v in _values(_EMPTY))


@attrs.frozen
class Point:
    """A subscription's situation from ``at`` on (one step of its track)."""

    at: dt.datetime
    status: str | None  # None: not started yet (trial.blocked, campaign.applied …)
    currency: str
    storefront: str
    channel: str
    plan: str
    basis: Decimal | None  # the recurring price per period (tax-exclusive, after
    # recurring discounts), as accounting.Account.recurring
    owed: Decimal = ZERO  # outstanding: tax-exclusive net of the open charge


@attrs.frozen
class Track:
    """One subscription's last step of each month, plus the period starts seen (to infer
    billing periods)."""

    points: tuple[Point, ...] = ()
    starts: tuple[tuple[str, dt.date], ...] = ()  # (plan, period start)
    account: Account = Account()  # the books' view after the last event

    @property
    def last(self) -> Point | None:
        return self.points[-1] if self.points else None


def month_of(at: dt.datetime) -> str:
    """The calendar month (UTC) of a datetime: ``2026-11``."""
    utc = at.astimezone(dt.UTC) if at.tzinfo is not None else at
    return f"{utc.year:04d}-{utc.month:02d}"


def _month_start(month: str) -> dt.datetime:
    year, mon = int(month[:4]), int(month[5:7])
    return dt.datetime(year, mon, 1, tzinfo=dt.UTC)


def _next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return f"{year:04d}-{mon:02d}"


def _months(first: str, last: str) -> Iterator[str]:
    month = first
    while month <= last:
        yield month
        month = _next_month(month)


def month_ends(points: tuple[Point, ...], last: str) -> Iterator[tuple[str, Point, bool]]:
    """One subscription's months, from the month of its first point to ``last``: each
    month, the point in force at its end, and whether that is the subscription's last
    point (months before its first status are skipped)."""
    i = 0
    current: Point | None = None
    for month in _months(month_of(points[0].at), last):
        end = _month_start(_next_month(month))
        while i < len(points) and points[i].at < end:
            current = points[i]
            i += 1
        if current is not None and current.status is not None:
            yield month, current, i >= len(points)


def months_per_period(ruleset: Ruleset) -> dict[str, Decimal]:
    """Each plan's billing period in months (``every 1 year`` → 12, ``every 2 weeks`` → 12/26)."""
    result: dict[str, Decimal] = {}
    for name, plan in ruleset.plans.items():
        count = Decimal(plan.every.count)
        unit = plan.every.unit
        per_month = {"month": Decimal(1), "year": Decimal(12),
                     "week": CONTEXT.divide(Decimal(12), Decimal(52)),
                     "day": CONTEXT.divide(Decimal(12), Decimal(365))}[unit]
        result[name] = CONTEXT.multiply(count, per_month)
    return result


def _empty_map() -> immutables.Map[Any, Any]:
    return immutables.Map()


@attrs.frozen
class Ledger:
    """Revenue figures folded from revenue events; immutable, exact, additive.

    Build one with :meth:`fold`, :meth:`from_outcomes` or :meth:`add`; read it with
    :meth:`rows`, :meth:`totals` and :meth:`by_month`.

    >>> from revrules.ledger import Ledger
    >>> ledger = Ledger.fold([])
    >>> ledger.totals()
    {}
    """

    cells: immutables.Map[Group, Figures] = attrs.field(factory=_empty_map)
    tracks: immutables.Map[str, Track] = attrs.field(factory=_empty_map)
    periods: immutables.Map[str, Decimal] = attrs.field(factory=_empty_map)

    # -- building ----------------------------------------------------------------------
    @classmethod
    @in_context
    def fold(cls, events: Iterable[RevenueEvent], ruleset: Ruleset | None = None,
             periods: Mapping[str, Decimal] | None = None) -> Ledger:
        """The ledger of ``events`` (in order). ``ruleset`` (or ``periods``, plan →
        months per billing period) tells MRR how long each plan's period is."""
        known = dict(months_per_period(ruleset)) if ruleset is not None else {}
        known.update(periods or {})
        start = cls(periods=immutables.Map(known))
        return start._extend(events)

    @classmethod
    @in_context
    def from_outcomes(cls, outcomes: Iterable[Outcome], ruleset: Ruleset | None = None,
                      periods: Mapping[str, Decimal] | None = None) -> Ledger:
        """The ledger of every revenue event of ``outcomes`` (failed outcomes have none)."""
        return cls.fold((e for o in outcomes if o.ok for e in o.events), ruleset, periods)

    @in_context
    def add(self, event: RevenueEvent) -> Ledger:
        """A new ledger with ``event`` folded in (this one is unchanged)."""
        return self._extend((event,))

    @in_context
    def extend(self, events: Iterable[RevenueEvent]) -> Ledger:
        """A new ledger with every event of ``events`` folded in, in order."""
        return self._extend(events)

    def _extend(self, events: Iterable[RevenueEvent]) -> Ledger:
        cells = self.cells.mutate()
        tracks = self.tracks.mutate()
        for event in events:
            _fold_money(cells, event)
            track = tracks.get(event.subscription) or Track()
            track, written_off, churn = _fold_track(track, event)
            tracks[event.subscription] = track
            if written_off or churn:
                # churn is counted in the month it happens (the track keeps month ends)
                group = Group(event.currency, event.storefront, event.channel, event.plan,
                              month_of(event.at))
                cells[group] = cells.get(group, _EMPTY) + Figures(
                    written_off=written_off, churned=1 if churn else 0)
        return Ledger(cells.finish(), tracks.finish(), self.periods)

    @in_context
    def merge(self, other: Ledger) -> Ledger:
        """The ledger of both logs (for logs split by subscription: exactly the whole)."""
        cells = self.cells.mutate()
        for group, figures in other.cells.items():
            cells[group] = cells.get(group, _EMPTY) + figures
        tracks = self.tracks.mutate()
        for sub, track in other.tracks.items():
            mine = tracks.get(sub)
            if mine is None:
                tracks[sub] = track
            else:
                points = sorted(mine.points + track.points, key=lambda p: p.at)
                later = track if (track.points and mine.points and track.points[-1].at
                                  >= mine.points[-1].at) or not mine.points else mine
                tracks[sub] = Track(_month_ends_only(points), mine.starts + track.starts,
                                    later.account)
        periods = self.periods.mutate()
        for plan, months in other.periods.items():
            periods[plan] = months
        return Ledger(cells.finish(), tracks.finish(), periods.finish())

    def __add__(self, other: Ledger) -> Ledger:
        if not isinstance(other, Ledger):
            return NotImplemented
        return self.merge(other)

    # -- reading -----------------------------------------------------------------------
    @property
    def last_month(self) -> str | None:
        """The latest month any event falls in."""
        months = [g.month for g in self.cells]
        months += [month_of(t.points[-1].at) for t in self.tracks.values() if t.points]
        return max(months) if months else None

    @in_context
    def rows(self) -> tuple[tuple[Group, Figures], ...]:
        """Every group with a non-zero figure, sorted by currency, month, storefront,
        channel and plan."""
        figures: dict[Group, Figures] = dict(self.cells.items())
        for group, counts in self._counts().items():
            figures[group] = figures.get(group, _EMPTY) + counts
        ordered = sorted(figures.items(), key=lambda kv: (
            kv[0].currency, kv[0].month, kv[0].storefront, kv[0].channel, kv[0].plan))
        return tuple((g, f) for g, f in ordered if not f.is_zero)

    @in_context
    def by_month(self) -> dict[tuple[str, str], Figures]:
        """Figures per (currency, month), every storefront, channel and plan together;
        months without figures between the first and last are included (all zero)."""
        result: dict[tuple[str, str], Figures] = {}
        for group, figures in self.rows():
            key = (group.currency, group.month)
            result[key] = result.get(key, _EMPTY) + figures
        last = self.last_month
        for currency in {c for c, _ in result}:
            first = min(m for c, m in result if c == currency)
            if last is not None:
                for month in _months(first, last):
                    result.setdefault((currency, month), _EMPTY)
        return dict(sorted(result.items()))

    @in_context
    def totals(self) -> dict[str, Figures]:
        """Figures per currency: money and churn summed over every month; active,
        trialing and MRR at the end of the last month."""
        result: dict[str, Figures] = {}
        last = self.last_month
        for group, f in self.rows():
            at_end = group.month == last
            part = attrs.evolve(f, active=f.active if at_end else 0,
                                trialing=f.trialing if at_end else 0,
                                mrr=f.mrr if at_end else ZERO,
                                outstanding=f.outstanding if at_end else ZERO)
            result[group.currency] = result.get(group.currency, _EMPTY) + part
        return dict(sorted(result.items()))

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({g.currency for g, _ in self.rows()}))

    def movements(self) -> Movements:
        """The MRR movements per month (:func:`revrules.movements.movements`)."""
        from .movements import movements

        return movements(self)

    # -- month-end counts ----------------------------------------------------------------
    def _counts(self) -> dict[Group, Figures]:
        last = self.last_month
        if last is None:
            return {}
        inferred = self._inferred_periods()
        counts: dict[Group, Figures] = {}

        def bump(point: Point, month: str, figures: Figures) -> None:
            group = Group(point.currency, point.storefront, point.channel, point.plan, month)
            counts[group] = counts.get(group, _EMPTY) + figures

        for track in self.tracks.values():
            points = track.points
            if not points:
                continue
            for month, current, final in month_ends(points, last):
                if current.owed:
                    bump(current, month, Figures(outstanding=current.owed))
                if current.status == "trialing":
                    bump(current, month, Figures(trialing=1))
                elif current.status in accounting.MRR_STATUSES:
                    bump(current, month, Figures(active=1, mrr=self._mrr(current, inferred)))
                elif final and not current.owed:
                    break  # canceled, or paused or unpaid owing nothing, and nothing follows
        return counts

    def _mrr(self, point: Point, inferred: Mapping[str, Decimal]) -> Decimal:
        if point.basis is None:
            return ZERO
        months = self.periods.get(point.plan) or inferred.get(point.plan) or _guess(point.plan)
        return accounting.monthly(point.basis, months, point.currency)

    def _inferred_periods(self) -> dict[str, Decimal]:
        """Plan → months per period, from consecutive period starts on the same plan."""
        seen: dict[str, list[int]] = {}
        for track in self.tracks.values():
            for (plan_a, a), (plan_b, b) in zip(track.starts, track.starts[1:], strict=False):
                if plan_a == plan_b and b > a:
                    months = (b.year - a.year) * 12 + b.month - a.month
                    if months > 0:
                        seen.setdefault(plan_a, []).append(months)
        return {plan: Decimal(min(gaps)) for plan, gaps in seen.items()}

    # -- data out ------------------------------------------------------------------------
    @in_context
    def to_rows(self, currency: str | None = None) -> list[dict[str, str | int | Decimal]]:
        """Every group of :meth:`rows` as a plain dict, in the same order: ``currency``,
        ``month``, ``storefront``, ``channel``, ``plan``, then every figure of
        :data:`FIELDS` (money as exact ``Decimal``, counts as ``int``). ``currency``
        keeps one currency's rows only.

        >>> Ledger().to_rows()
        []
        """
        out: list[dict[str, str | int | Decimal]] = []
        for group, figures in self.rows():
            if currency is not None and group.currency != currency:
                continue
            row: dict[str, str | int | Decimal] = {
                "currency": group.currency, "month": group.month,
                "storefront": group.storefront, "channel": group.channel, "plan": group.plan}
            for name in FIELDS:
                row[name] = self._exact(figures.get(name), group.currency)
            out.append(row)
        return out

    @in_context
    def to_arrow(self, currency: str | None = None) -> Any:  # a pyarrow.Table
        """The rows of :meth:`to_rows` as a ``pyarrow.Table`` (needs ``revrules[data]``).

        Money columns are ``decimal128(38, scale)``, never float: ``scale`` is the
        currency's minor units (JPY 0, EUR 2, KWD 3) for a one-currency ledger or with
        ``currency``, and the largest of them when currencies are mixed (a ``JPY`` 1200
        is then ``1200.00``, still exact; the schema's ``revrules.scales`` metadata
        records each currency's own scale). A value with more places than the scale is
        an error, never rounded. Counts are ``int64``, the group columns strings.
        """
        from babel.numbers import get_currency_precision

        pa = self._import_data("pyarrow", "to_arrow")
        rows = self.to_rows(currency)
        currencies = sorted({str(r["currency"]) for r in rows} | (
            {currency} if currency is not None else set()))
        scales = {c: int(get_currency_precision(c)) for c in currencies}
        scale = max(scales.values(), default=0)
        fields = [pa.field(n, pa.string())
                  for n in ("currency", "month", "storefront", "channel", "plan")]
        for name in FIELDS:
            kind = pa.decimal128(38, scale) if name in MONEY_FIELDS else pa.int64()
            fields.append(pa.field(name, kind))
        quantum = Decimal(1).scaleb(-scale)
        for row in rows:
            for name in MONEY_FIELDS:
                value = row[name]
                assert isinstance(value, Decimal)
                if value.quantize(quantum, context=CONTEXT) != value:
                    raise ValueError(f"{row['currency']} {name} {value} of {row['month']} has "
                                     f"more than {scale} decimal places: not rounded")
        metadata = {"revrules.scales": ",".join(f"{c}={s}" for c, s in scales.items())}
        schema = pa.schema(fields, metadata=metadata)
        columns = [pa.array([r[f.name] for r in rows], type=f.type) for f in fields]
        return pa.Table.from_arrays(columns, schema=schema)

    @in_context
    def to_pandas(self, currency: str | None = None) -> Any:  # a pandas.DataFrame
        """:meth:`to_arrow` as a ``pandas.DataFrame`` backed by Arrow (needs
        ``revrules[data]``): money columns keep the ``decimal128`` dtype, so sums stay
        exact ``Decimal``; counts are ``int64[pyarrow]``, the group columns strings."""
        pd = self._import_data("pandas", "to_pandas")
        return self.to_arrow(currency).to_pandas(types_mapper=pd.ArrowDtype)

    @in_context
    def _repr_html_(self) -> str:
        """The totals per currency and the figures by month, for a notebook."""
        from .reports import ledger_html

        return ledger_html(self)

    @staticmethod
    def _import_data(module: str, method: str) -> Any:
        """``pandas`` or ``pyarrow``, imported on first use, with a clear error when the
        optional ``data`` extra is not installed."""
        import importlib

        try:
            return importlib.import_module(module)
        except ImportError:
            raise ImportError(f"Ledger.{method}() needs {module}: "
                              "pip install 'revrules[data]'") from None

    @staticmethod
    def _exact(value: Decimal | int, currency: str) -> Decimal | int:
        """Money with the currency's minor units when that loses nothing (``0`` →
        ``0.00``, never ``-0.00``), else unchanged: exact either way."""
        from .runtime import exponent

        if not isinstance(value, Decimal):
            return value
        if not value:
            return ZERO.quantize(exponent(currency), context=CONTEXT)
        shown = value.quantize(exponent(currency), context=CONTEXT)
        return shown if shown == value else value


def _guess(plan: str) -> Decimal:
    return Decimal(12) if re.search(r"annual|year", plan) else Decimal(1)


def _fold_money(cells: immutables.MapMutation[Group, Figures], event: RevenueEvent) -> None:
    if event.type == "payment.succeeded":
        figures = Figures(payments=1, gross=event.gross, discounts=event.discount,
                          credits=event.credit, net=event.net, tax=event.tax,
                          commission=event.commission)
    elif event.type == "payment.refunded":
        figures = Figures(refunds=event.net, net=-event.net, tax=-event.tax, refund_count=1,
                          commission=-event.commission)
    else:
        return
    group = Group(event.currency, event.storefront, event.channel, event.plan,
                  month_of(event.at))
    cells[group] = cells.get(group, _EMPTY) + figures


def _month_ends_only(points: list[Point]) -> tuple[Point, ...]:
    """``points`` (in time order) without those a later one of the same month replaces."""
    kept: list[Point] = []
    for point in points:
        if kept and month_of(kept[-1].at) == month_of(point.at):
            kept[-1] = point
        else:
            kept.append(point)
    return tuple(kept)


def _fold_track(track: Track, event: RevenueEvent) -> tuple[Track, Decimal, bool]:
    """The track after ``event``, the net it wrote off (zero mostly), and whether the
    subscription churned."""
    last = track.last
    done = accounting.step(track.account, event)
    account = done.account
    starts = track.starts
    kind = event.type
    if kind == "trial.granted" and event.date is not None:
        starts += ((event.plan, event.date),)
    elif kind == "subscription.started" and track.account.status != "trialing":
        starts += ((event.plan, event.at.date()),)
    elif kind == "subscription.renewed" and event.date is not None:
        starts += ((event.plan, event.date),)
    written_off = done.written_off.net if done.written_off is not None else ZERO
    status, basis, owed = account.status, account.recurring, account.outstanding
    plan, storefront, channel, currency = event.plan, event.storefront, event.channel, \
        event.currency
    if last is not None and (status, currency, storefront, channel, plan, basis, owed) == (
            last.status, last.currency, last.storefront, last.channel, last.plan, last.basis,
            last.owed):
        if starts is track.starts and account is track.account:
            return track, written_off, done.churn
        return Track(track.points, starts, account), written_off, done.churn
    # a track keeps its subscription's last step of each month (what month-end figures
    # and movements read), its amounts shared (rt.shared)
    point = Point(event.at, status, currency, storefront, channel, plan,
                  None if basis is None else shared(basis), shared(owed))
    points = track.points
    if points and month_of(points[-1].at) == month_of(event.at):
        points = points[:-1]
    return Track(points + (point,), starts, account), written_off, done.churn
