"""Growth and product figures from revenue events: conversion, retention, promotions.

A :class:`Growth` is a fold: it reads outcomes (or revenue events) one at a time and
keeps a few facts per subscription, never the events themselves, so its memory grows
with the number of subscriptions, not with the log. Two folds of a log split by
subscription merge (:meth:`Growth.merge`, ``+``) into exactly the fold of the whole
log. The figures are read from the facts (docs/growth.md defines each one):

* **conversion** per plan, storefront, channel, price point and promotion (the ones
  redeemed at checkout, or ``(none)``), and over ``all`` subscriptions: started,
  trials granted, trials converted (a trial followed by a paid charge), first charges
  paid, and how many of those first payments were refunded;
* **price points**: plan × storefront × list-price version, the price line of the
  ruleset in force for a new subscription on the checkout day (or the contract that
  priced it), ``premium_monthly@web_eu#2`` for the plan's second ``price web_eu`` line;
* **retention by month** per cohort (the month of ``subscription.started``), split by
  plan, price point, price change (moved to a new list price, with or without consent),
  promotion, channel, entitlement set, trial length, pause used and dunning outcome: for each N, how many of the cohort had paid a charge and not churned
  by the end of month cohort + N;
* **retention by charges** per cohort and plan: how many have paid at least N charges
  (proration charges excluded), for the N the cohort can have reached;
* **revenue per promotion**: redemptions, and the payments of the subscriptions that
  redeemed it from the redemption on — what they paid (gross, discounts, net). A
  subscription that redeemed two promotions counts for both.

Figures are exact: counts are integers, money ``Decimal``, rates ``Decimal``
fractions rounded for display only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs

from . import accounting, pricing
from .ledger import month_of, months_per_period
from .results import Outcome, RevenueEvent
from .ruleset import Ruleset
from .runtime import in_context, local_date, money_str
from .text import printable, printable_lines

__all__ = ["CONVERSION_DIMENSIONS", "RETENTION_DIMENSIONS", "Cohort", "Conversion", "Growth",
           "PricePoint", "PromotionFigures", "Retention", "growth", "growth_of_outcomes",
           "growth_to_wire", "render_growth"]

ZERO = Decimal(0)
NONE = "(none)"
ALL = "all"

#: The dimensions conversion is split by, in report order (``all``: every subscription).
CONVERSION_DIMENSIONS = ("all", "plan", "storefront", "channel", "price", "promotion")
#: The dimensions retention by month is split by, in report order.
RETENTION_DIMENSIONS = ("all", "plan", "price", "price_change", "promotion", "channel",
                        "entitlements", "trial", "pause", "dunning")
#: Dunning outcomes: never past due; the last dunning recovered (paid), ended the
#: subscription (``then cancel``, ``then unpaid`` or a cancellation while past due), or
#: is still open at the end of the log.
DUNNING_OUTCOMES = ("none", "recovered", "canceled", "open")


@attrs.frozen
class Conversion:
    dimension: str  # all | plan | storefront | channel | price | promotion
    value: str
    started: int = 0
    trials: int = 0
    trials_converted: int = 0
    first_charges: int = 0
    refunded: int = 0  # first payments refunded, in whole or in part

    @property
    @in_context
    def trial_conversion(self) -> Decimal | None:
        return _rate(self.trials_converted, self.trials)

    @property
    @in_context
    def first_charge_conversion(self) -> Decimal | None:
        return _rate(self.first_charges, self.started)


@attrs.frozen
class PricePoint:
    """A plan × storefront × list-price version: one ``price`` line, or a contract."""

    id: str  # plan@storefront#N (the N-th price line), plan@storefront#contract:NAME, or #?
    plan: str
    storefront: str
    currency: str
    list: Decimal | None  # the list price as the ruleset states it (None: no ruleset)
    effective: dt.date | None = None  # the line's `from` date (None: from the start)
    contract: str | None = None


@attrs.frozen
class Cohort:
    """Retention by charges: a cohort of one plan, ``retained[n - 1]`` paid ≥ n charges."""

    plan: str
    month: str
    size: int
    retained: tuple[int, ...]

    @in_context
    def share(self, n: int) -> Decimal | None:
        return _rate(self.retained[n - 1], self.size) if n <= len(self.retained) else None


@attrs.frozen
class Retention:
    """Retention by month: ``retained[n]`` of the cohort paid and had not churned by the
    end of month ``month`` + n (n = 0 is the cohort's own month)."""

    dimension: str
    value: str
    month: str
    size: int
    retained: tuple[int, ...]

    @in_context
    def share(self, n: int) -> Decimal | None:
        return _rate(self.retained[n], self.size) if 0 <= n < len(self.retained) else None


@attrs.frozen
class PromotionFigures:
    promotion: str
    currency: str
    redemptions: int = 0
    payments: int = 0
    gross: Decimal = ZERO
    discounts: Decimal = ZERO
    net: Decimal = ZERO


@attrs.define(slots=True)
class _Life:
    """What growth keeps of one subscription."""

    plan: str
    storefront: str
    channel: str
    currency: str
    month: str  # the cohort: the month of subscription.started (or of trial.granted)
    start_input: str
    point: str = ""
    trial_days: int | None = None
    entitlements: tuple[str, ...] | None = None
    checkout_promotions: list[str] = attrs.field(factory=list)
    promotions: list[str] = attrs.field(factory=list)
    payments: int = 0  # paid charges, proration charges excluded
    first_charge: str | None = None
    first_paid: str | None = None  # the month of the first paid charge
    refunded: bool = False  # the first paid charge was refunded (in whole or part)
    account: accounting.Account = attrs.field(factory=accounting.Account)
    churned: str | None = None  # the month it churned (canceled, or unpaid by dunning)
    paused: bool = False
    dunning: str = "none"
    moved: bool = False  # a price.changed moved it to another list price
    asked: bool = False  # a consent.requested asked it to accept a new price
    consented: bool = False  # consent.collected

    def copy(self) -> _Life:
        return attrs.evolve(self, checkout_promotions=list(self.checkout_promotions),
                            promotions=list(self.promotions))


@attrs.define(slots=True)
class _Sums:
    redemptions: int = 0
    payments: int = 0
    gross: Decimal = ZERO
    discounts: Decimal = ZERO
    net: Decimal = ZERO


def _rate(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


def _input(revenue_event_id: str) -> str:
    return revenue_event_id.rpartition(".")[0] or revenue_event_id


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])


def _plus(month: str, n: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + n
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


class Growth:
    """The growth fold: conversion, price points, retention and promotions of a log.

    Build one with :meth:`fold` (outcomes), :meth:`from_events` (revenue events), or
    ``Growth(rules)`` and :meth:`add` / :meth:`add_event` / :meth:`extend`, which fold
    in place. :meth:`merge` (``+``) gives a new fold of two logs split by subscription.
    Read it with :attr:`conversions`, :attr:`price_points`, :attr:`retention`,
    :attr:`cohorts`, :attr:`promotions`, :meth:`rows` or :meth:`to_json`.

    >>> Growth().conversions
    ()
    """

    __slots__ = ("_lives", "_pending", "_points", "_promos", "_ruleset", "last_month",
                 "periods")

    def __init__(self, ruleset: Ruleset | None = None) -> None:
        self._ruleset = ruleset
        self.periods: dict[str, Decimal] = (dict(months_per_period(ruleset))
                                            if ruleset is not None else {})
        self._lives: dict[str, _Life] = {}
        self._pending: dict[str, list[str]] = {}  # campaign.applied before the start
        self._points: dict[str, PricePoint] = {}
        self._promos: dict[tuple[str, str], _Sums] = {}
        self.last_month: str | None = None

    # -- building ----------------------------------------------------------------------
    @classmethod
    @in_context
    def fold(cls, outcomes: Iterable[Outcome], ruleset: Ruleset | None = None) -> Growth:
        """The growth figures of ``outcomes`` in order (failed outcomes have no events)."""
        return cls(ruleset).extend(outcomes)

    @classmethod
    @in_context
    def from_events(cls, events: Iterable[RevenueEvent],
                    ruleset: Ruleset | None = None) -> Growth:
        """The growth figures of a stream of revenue events, in order."""
        g = cls(ruleset)
        for event in events:
            g._event(event)
        return g

    @in_context
    def add(self, outcome: Outcome) -> Growth:
        """Fold one outcome in (in place); returns this fold."""
        if outcome.ok:
            for event in outcome.events:
                self._event(event)
        return self

    @in_context
    def add_event(self, event: RevenueEvent) -> Growth:
        """Fold one revenue event in (in place); returns this fold."""
        self._event(event)
        return self

    @in_context
    def extend(self, outcomes: Iterable[Outcome]) -> Growth:
        """Fold every outcome of ``outcomes`` in, in order (in place); returns this fold."""
        for outcome in outcomes:
            if outcome.ok:
                for event in outcome.events:
                    self._event(event)
        return self

    @in_context
    def merge(self, other: Growth) -> Growth:
        """A new fold of both logs; for a log split by subscription, exactly the fold of
        the whole log. A subscription in both is an error (``ValueError``)."""
        both = self._lives.keys() & other._lives.keys()
        if both:
            raise ValueError(f"subscription {min(both)!r} is in both folds: growth merges "
                             "folds of a log split by subscription")
        merged = Growth(self._ruleset if self._ruleset is not None else other._ruleset)
        merged.periods = {**other.periods, **self.periods}
        # copies: folding more into either part later leaves the merged fold alone
        merged._lives = {sub: life.copy() for part in (self, other)
                         for sub, life in part._lives.items()}
        merged._pending = {k: list(v) for k, v in self._pending.items()}
        for sub, promotions in other._pending.items():
            merged._pending.setdefault(sub, []).extend(promotions)
        merged._points = {**other._points, **self._points}
        for source in (self._promos, other._promos):
            for key, s in source.items():
                t = merged._promos.setdefault(key, _Sums())
                t.redemptions += s.redemptions
                t.payments += s.payments
                t.gross += s.gross
                t.discounts += s.discounts
                t.net += s.net
        months = [m for m in (self.last_month, other.last_month) if m is not None]
        merged.last_month = max(months) if months else None
        return merged

    def __add__(self, other: object) -> Growth:
        if not isinstance(other, Growth):
            return NotImplemented
        return self.merge(other)

    def __len__(self) -> int:
        """The number of subscriptions followed."""
        return len(self._lives)

    def _start(self, e: RevenueEvent, month: str) -> _Life:
        life = _Life(e.plan, e.storefront, e.channel, e.currency, month, _input(e.id))
        life.point = self._price_point(e)
        for promotion in self._pending.pop(e.subscription, []):
            life.checkout_promotions.append(promotion)
            life.promotions.append(promotion)
        self._lives[e.subscription] = life
        return life

    def _price_point(self, e: RevenueEvent) -> str:
        rules = self._ruleset
        base = f"{e.plan}@{e.storefront}"
        if rules is None:
            point = PricePoint(base + "#?", e.plan, e.storefront, e.currency, None)
        else:
            day = local_date(e.at, rules.model.timezone)
            deal = pricing.contract(rules, e.customer, e.plan, day)
            sf = rules.storefronts.get(e.storefront)
            entries = rules.prices.get((e.plan, e.storefront), ())
            entry = pricing.price_entry(rules, e.plan, e.storefront, day, existing=False)
            if deal is not None and sf is not None and deal.currency == sf.currency:
                point = PricePoint(f"{base}#contract:{deal.name}", e.plan, e.storefront,
                                   deal.currency, deal.amount, deal.valid_from, deal.name)
            elif entry is not None:
                n = next(i for i, x in enumerate(entries, 1) if x is entry)
                point = PricePoint(f"{base}#{n}", e.plan, e.storefront, entry.currency,
                                   entry.amount, entry.effective)
            else:  # a log from another ruleset
                point = PricePoint(base + "#?", e.plan, e.storefront, e.currency, None)
        self._points.setdefault(point.id, point)
        return point.id

    def _event(self, e: RevenueEvent) -> None:
        month = month_of(e.at)
        if self.last_month is None or month > self.last_month:
            self.last_month = month
        kind = e.type
        life = self._lives.get(e.subscription)
        if kind == "subscription.started" and life is None:
            life = self._start(e, month)
        elif kind == "trial.granted":  # comes before subscription.started
            if life is None:
                life = self._start(e, month)
            if e.date is not None:
                tz = self._ruleset.model.timezone if self._ruleset is not None else "UTC"
                life.trial_days = (e.date - local_date(e.at, tz)).days
            else:
                life.trial_days = 0
        elif kind == "campaign.applied" and e.rule:
            sums = self._promos.setdefault((e.rule, e.currency), _Sums())
            sums.redemptions += 1
            if life is None:
                self._pending.setdefault(e.subscription, []).append(e.rule)
            else:
                if _input(e.id) == life.start_input:
                    life.checkout_promotions.append(e.rule)
                life.promotions.append(e.rule)
        if life is None:
            return
        if kind == "payment.succeeded":
            if not (e.rule or "").endswith((" upgrade", " downgrade")):
                life.payments += 1
                if life.first_paid is None:
                    life.first_paid, life.first_charge = month, e.charge
            for promotion in dict.fromkeys(life.promotions):
                sums = self._promos.setdefault((promotion, e.currency), _Sums())
                sums.payments += 1
                sums.gross += e.gross
                sums.discounts += e.discount
                sums.net += e.net
        elif kind == "payment.refunded":
            if life.first_paid is not None:
                if e.charge is not None and life.first_charge is not None:
                    first = e.charge == life.first_charge
                else:  # a log without charge ids: a refund before any renewal
                    first = life.payments == 1
                life.refunded = life.refunded or first
            for promotion in dict.fromkeys(life.promotions):
                sums = self._promos.setdefault((promotion, e.currency), _Sums())
                sums.net -= e.net
        elif kind == "entitlement.granted" and life.entitlements is None:
            life.entitlements = e.entitlements
        elif kind == "subscription.paused":
            life.paused = True
        elif kind == "price.changed":
            life.moved = True
        elif kind == "consent.requested":
            life.asked = True
        elif kind == "consent.collected":
            life.consented = True
        before = life.account.status
        done = accounting.step(life.account, e)
        life.account = after = done.account
        status = after.status
        if status == "past_due" and before != "past_due":
            life.dunning = "open"
        elif before == "past_due" and status != "past_due":
            life.dunning = "canceled" if done.churn else (
                "recovered" if kind == "payment.succeeded" else life.dunning)
        if done.churn:
            life.churned = month
        elif status in accounting.MRR_STATUSES or status == "trialing":
            life.churned = None

    # -- reading -----------------------------------------------------------------------
    def _values(self, life: _Life, dimension: str) -> list[str]:
        if dimension == "all":
            return [ALL]
        if dimension == "plan":
            return [life.plan]
        if dimension == "storefront":
            return [life.storefront]
        if dimension == "channel":
            return [life.channel]
        if dimension == "price":
            return [life.point]
        if dimension == "promotion":
            return list(dict.fromkeys(life.checkout_promotions)) or [NONE]
        if dimension == "entitlements":
            return [", ".join(sorted(set(life.entitlements))) or NONE
                    if life.entitlements is not None else NONE]
        if dimension == "trial":
            return ["none" if life.trial_days is None else f"{life.trial_days} days"]
        if dimension == "price_change":
            if life.asked:
                return ["consented" if life.consented or life.moved else "not consented"]
            return ["moved" if life.moved else "none"]
        if dimension == "pause":
            return ["paused" if life.paused else "never paused"]
        return [life.dunning]

    @property
    @in_context
    def conversions(self) -> tuple[Conversion, ...]:
        """Conversion per dimension value, in :data:`CONVERSION_DIMENSIONS` order."""
        table: dict[tuple[str, str], list[int]] = {}
        for life in self._lives.values():
            trial = life.trial_days is not None
            paid = life.payments > 0
            for dimension in CONVERSION_DIMENSIONS:
                for value in self._values(life, dimension):
                    c = table.setdefault((dimension, value), [0, 0, 0, 0, 0])
                    c[0] += 1
                    c[1] += trial
                    c[2] += trial and paid
                    c[3] += paid
                    c[4] += paid and life.refunded
        order = {d: i for i, d in enumerate(CONVERSION_DIMENSIONS)}
        return tuple(Conversion(d, v, *c) for (d, v), c in
                     sorted(table.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])))

    @property
    def price_points(self) -> tuple[PricePoint, ...]:
        """Every price point a subscription started at, sorted by id."""
        return tuple(self._points[k] for k in sorted(self._points))

    @property
    @in_context
    def retention(self) -> tuple[Retention, ...]:
        """Retention by month per cohort and dimension value (:data:`RETENTION_DIMENSIONS`)."""
        last = self.last_month
        if last is None:
            return ()
        # per (dimension, value, cohort): its size and a difference array over months;
        # a subscription is retained from the month of its first payment up to, not
        # including, the month it churned
        groups: dict[tuple[str, str, str], tuple[list[int], list[int]]] = {}
        for life in self._lives.values():
            reachable = max(_months_between(life.month, last), 0) + 1
            lo = hi = 0
            if life.first_paid is not None:
                lo = min(max(_months_between(life.month, life.first_paid), 0), reachable)
                hi = reachable if life.churned is None else min(
                    max(_months_between(life.month, life.churned), 0), reachable)
            for dimension in RETENTION_DIMENSIONS:
                for value in self._values(life, dimension):
                    size, diff = groups.setdefault((dimension, value, life.month),
                                                   ([0], [0] * (reachable + 1)))
                    size[0] += 1
                    if lo < hi:
                        diff[lo] += 1
                        diff[hi] -= 1
        order = {d: i for i, d in enumerate(RETENTION_DIMENSIONS)}
        rows = []
        for (dimension, value, month), (size, diff) in sorted(
                groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1], kv[0][2])):
            retained, running = [], 0
            for step in diff[:-1]:
                running += step
                retained.append(running)
            rows.append(Retention(dimension, value, month, size[0], tuple(retained)))
        return tuple(rows)

    @property
    @in_context
    def cohorts(self) -> tuple[Cohort, ...]:
        """Retention by charges per cohort month and plan."""
        last = self.last_month
        if last is None:
            return ()
        groups: dict[tuple[str, str], list[_Life]] = {}
        for life in self._lives.values():
            groups.setdefault((life.plan, life.month), []).append(life)
        cohorts = []
        for (plan, month), members in sorted(groups.items()):
            every = self.periods.get(plan, Decimal(1)) or Decimal(1)
            reachable = int(Decimal(_months_between(month, last)) / every) + 1
            retained = tuple(sum(1 for life in members if life.payments >= n)
                             for n in range(1, reachable + 1))
            cohorts.append(Cohort(plan, month, len(members), retained))
        return tuple(cohorts)

    @property
    def promotions(self) -> tuple[PromotionFigures, ...]:
        """Revenue per promotion and currency, sorted."""
        return tuple(PromotionFigures(p, c, s.redemptions, s.payments, s.gross, s.discounts,
                                      s.net) for (p, c), s in sorted(self._promos.items()))

    @in_context
    def rows(self) -> dict[str, list[dict[str, Any]]]:
        """Every table as plain rows with exact values (``Decimal`` money and rates,
        ``None`` for a rate of nothing), keyed like :meth:`to_json`."""
        return {
            "conversion": [{"by": c.dimension, "value": c.value, "started": c.started,
                            "trials": c.trials, "trials_converted": c.trials_converted,
                            "trial_conversion": c.trial_conversion,
                            "first_charges": c.first_charges,
                            "first_charge_conversion": c.first_charge_conversion,
                            "refunded": c.refunded} for c in self.conversions],
            "price_points": [{"id": p.id, "plan": p.plan, "storefront": p.storefront,
                              "currency": p.currency, "list": p.list,
                              "effective": p.effective, "contract": p.contract}
                             for p in self.price_points],
            "retention_by_month": [{"by": r.dimension, "value": r.value, "cohort": r.month,
                                    "size": r.size, "retained": list(r.retained)}
                                   for r in self.retention],
            "retention": [{"plan": c.plan, "cohort": c.month, "size": c.size,
                           "retained": list(c.retained)} for c in self.cohorts],
            "promotions": [{"promotion": p.promotion, "currency": p.currency,
                            "redemptions": p.redemptions, "payments": p.payments,
                            "gross": p.gross, "discounts": p.discounts, "net": p.net}
                           for p in self.promotions],
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data (:func:`growth_to_wire`)."""
        return growth_to_wire(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Growth):
            return NotImplemented
        return self.rows() == other.rows()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Growth({len(self._lives)} subscriptions, last month {self.last_month})"

    def _repr_html_(self) -> str:
        """What a notebook shows: every table as HTML
        (:func:`revrules.reports.growth_html`)."""
        from .reports import growth_html

        return growth_html(self)


@in_context
def growth(events: Iterable[RevenueEvent], ruleset: Ruleset | None = None) -> Growth:
    """Conversion, retention and revenue per promotion of a stream of revenue events."""
    return Growth.from_events(events, ruleset)


@in_context
def growth_of_outcomes(outcomes: Iterable[Outcome], ruleset: Ruleset | None = None) -> Growth:
    """The growth figures of outcomes (:meth:`Growth.fold`)."""
    return Growth.fold(outcomes, ruleset)


# -- rendering -------------------------------------------------------------------------


def _pct(rate: Decimal | None) -> str:
    return "-" if rate is None else f"{(rate * 100).quantize(Decimal('0.1'))}%"


def _list_price(p: PricePoint) -> str:
    if p.list is None:
        return "?"
    return f"{p.currency} {money_str(p.list, p.currency)}"


@in_context
def render_growth(g: Growth, cycles: int = 12) -> str:
    """Every table as text; retention columns up to ``cycles`` (months or charges)."""
    lines = ["conversion"]
    rows = [[c.dimension, c.value, str(c.started), str(c.trials), str(c.trials_converted),
             _pct(c.trial_conversion), str(c.first_charges), _pct(c.first_charge_conversion),
             str(c.refunded)]
            for c in g.conversions]
    lines += _grid(["by", "value", "started", "trials", "converted", "trial→paid",
                    "first paid", "first charge", "refunded"], rows, 2)
    lines += ["", "price points: plan@storefront#N is the plan's N-th price line there"]
    rows = [[p.id, _list_price(p), "contract" if p.contract else
             (f"from {p.effective}" if p.effective else "from the start")]
            for p in g.price_points]
    lines += _grid(["price point", "list price", "in force"], rows, 3)
    lines += ["", "retention by month: share of each cohort paying and not churned at the "
                  "end of month N"]
    width = min(cycles, max((len(r.retained) for r in g.retention), default=0))
    rows = [[r.dimension, r.value, r.month, str(r.size)] + [
        _pct(r.share(n)) if n < len(r.retained) else "" for n in range(width)]
        for r in g.retention]
    lines += _grid(["by", "value", "cohort", "size"] + [f"M{n}" for n in range(width)],
                   rows, 3)
    lines += ["", "retention by charges: share of each cohort that paid at least N charges"]
    width = min(cycles, max((len(c.retained) for c in g.cohorts), default=0))
    rows = [[c.plan, c.month, str(c.size)] + [_pct(c.share(n)) if n <= len(c.retained)
                                             else "" for n in range(1, width + 1)]
            for c in g.cohorts]
    lines += _grid(["plan", "cohort", "size"] + [f"N={n}" for n in range(1, width + 1)], rows, 2)
    lines += ["", "promotions: redemptions, and what the redeeming subscriptions paid since"]
    rows = [[p.promotion, p.currency, str(p.redemptions), str(p.payments),
             money_str(p.gross, p.currency), money_str(p.discounts, p.currency),
             money_str(p.net, p.currency)] for p in g.promotions]
    lines += _grid(["promotion", "currency", "redeemed", "payments", "gross", "given away",
                    "net"], rows, 2)
    return printable_lines(line.rstrip() for line in lines)


def _grid(headings: list[str], rows: list[list[str]], text_columns: int) -> list[str]:
    if not rows:
        return ["  (none)"]
    rows = [[printable(c) for c in r] for r in rows]  # escaped before measuring
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(c.ljust(w) if i < text_columns else c.rjust(w)
                                for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return [line(headings), "  " + "  ".join("-" * w for w in widths), *map(line, rows)]


@in_context
def growth_to_wire(g: Growth) -> dict[str, Any]:
    """JSON-ready data; rates as decimal strings with 4 places, money as strings."""
    def rate(r: Decimal | None) -> str | None:
        return None if r is None else str(r.quantize(Decimal("0.0001")))

    return {
        "conversion": [{"by": c.dimension, "value": c.value, "started": c.started,
                        "trials": c.trials, "trials_converted": c.trials_converted,
                        "trial_conversion": rate(c.trial_conversion),
                        "first_charges": c.first_charges,
                        "first_charge_conversion": rate(c.first_charge_conversion),
                        "refunded": c.refunded}
                       for c in g.conversions],
        "price_points": [{"id": p.id, "plan": p.plan, "storefront": p.storefront,
                          "currency": p.currency,
                          "list": None if p.list is None else money_str(p.list, p.currency),
                          "effective": None if p.effective is None else p.effective.isoformat(),
                          "contract": p.contract} for p in g.price_points],
        "retention_by_month": [{"by": r.dimension, "value": r.value, "cohort": r.month,
                                "size": r.size, "retained": list(r.retained)}
                               for r in g.retention],
        "retention": [{"plan": c.plan, "cohort": c.month, "size": c.size,
                       "retained": list(c.retained)} for c in g.cohorts],
        "promotions": [{"promotion": p.promotion, "currency": p.currency,
                        "redemptions": p.redemptions, "payments": p.payments,
                        "gross": money_str(p.gross, p.currency),
                        "discounts": money_str(p.discounts, p.currency),
                        "net": money_str(p.net, p.currency)} for p in g.promotions],
    }
