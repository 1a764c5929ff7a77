"""Growth and product figures from revenue events: conversion, retention, promotions.

:func:`growth` follows every subscription through its revenue events and reports:

* **conversion** per plan, storefront, channel and promotion (the one redeemed at
  checkout, or ``(none)``): subscriptions started, trials granted, trials converted
  (a trial followed by a paid charge) and first charges paid (a subscription with at
  least one ``payment.succeeded``);
* **retention** by monthly cohort (the month a subscription started) and plan: the
  cohort's size and, for each N, how many have paid at least N charges (proration
  charges excluded) — only for N the cohort is old enough to have reached by the
  last month of the log;
* **revenue per promotion**: redemptions, and the payments of the subscriptions that
  redeemed it from the redemption on — what they paid (gross, discounts, net). A
  subscription that redeemed two promotions counts for both.

Figures are exact: counts are integers, money ``Decimal``, rates ``Decimal``
fractions rounded to 0.1 % for display only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from .ledger import month_of, months_per_period
from .results import Outcome, RevenueEvent
from .ruleset import Ruleset
from .runtime import in_context, money_str
from .text import printable, printable_lines

__all__ = ["Cohort", "Conversion", "Growth", "PromotionFigures", "growth", "growth_of_outcomes",
           "growth_to_wire", "render_growth"]

ZERO = Decimal(0)
NONE = "(none)"


@attrs.frozen
class Conversion:
    dimension: str  # plan | storefront | channel | promotion
    value: str
    started: int = 0
    trials: int = 0
    trials_converted: int = 0
    first_charges: int = 0

    @property
    @in_context
    def trial_conversion(self) -> Decimal | None:
        return _rate(self.trials_converted, self.trials)

    @property
    @in_context
    def first_charge_conversion(self) -> Decimal | None:
        return _rate(self.first_charges, self.started)


@attrs.frozen
class Cohort:
    plan: str
    month: str
    size: int
    retained: tuple[int, ...]  # retained[n - 1]: paid at least n charges

    @in_context
    def share(self, n: int) -> Decimal | None:
        return _rate(self.retained[n - 1], self.size) if n <= len(self.retained) else None


@attrs.frozen
class PromotionFigures:
    promotion: str
    currency: str
    redemptions: int = 0
    payments: int = 0
    gross: Decimal = ZERO
    discounts: Decimal = ZERO
    net: Decimal = ZERO


@attrs.frozen
class Growth:
    conversions: tuple[Conversion, ...]
    cohorts: tuple[Cohort, ...]
    promotions: tuple[PromotionFigures, ...]

    def _repr_html_(self) -> str:
        """What a notebook shows: conversion, retention and promotions as tables
        (:func:`revrules.reports.growth_html`)."""
        from .reports import growth_html

        return growth_html(self)


@attrs.define
class _Life:
    plan: str
    storefront: str
    channel: str
    currency: str
    month: str
    start_input: str
    trial: bool = False
    checkout_promotions: list[str] = attrs.field(factory=list)
    promotions: list[str] = attrs.field(factory=list)
    payments: int = 0


def _rate(part: int, whole: int) -> Decimal | None:
    return Decimal(part) / Decimal(whole) if whole else None


def _input(revenue_event_id: str) -> str:
    return revenue_event_id.rpartition(".")[0] or revenue_event_id


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7])


@in_context
def growth(events: Iterable[RevenueEvent], ruleset: Ruleset | None = None) -> Growth:
    """Conversion, retention and revenue per promotion of a stream of revenue events."""
    lives: dict[str, _Life] = {}
    promos: dict[tuple[str, str], PromotionFigures] = {}
    pending: dict[str, list[str]] = {}  # campaign.applied before subscription.started
    last_month: str | None = None
    for e in events:
        month = month_of(e.at)
        last_month = month if last_month is None or month > last_month else last_month
        life = lives.get(e.subscription)
        if e.type == "subscription.started" and life is None:
            life = _Life(e.plan, e.storefront, e.channel, e.currency, month, _input(e.id))
            for promotion in pending.pop(e.subscription, []):
                life.checkout_promotions.append(promotion)
                life.promotions.append(promotion)
            lives[e.subscription] = life
        elif e.type == "trial.granted":  # comes before subscription.started
            if life is None:
                life = lives[e.subscription] = _Life(e.plan, e.storefront, e.channel,
                                                     e.currency, month, _input(e.id))
            life.trial = True
        elif e.type == "campaign.applied" and e.rule:
            key = (e.rule, e.currency)
            figures = promos.get(key, PromotionFigures(e.rule, e.currency))
            promos[key] = attrs.evolve(figures, redemptions=figures.redemptions + 1)
            if life is None:
                pending.setdefault(e.subscription, []).append(e.rule)
            else:
                if _input(e.id) == life.start_input:
                    life.checkout_promotions.append(e.rule)
                life.promotions.append(e.rule)
        elif e.type == "payment.succeeded" and life is not None:
            if not (e.rule or "").endswith((" upgrade", " downgrade")):
                life.payments += 1
            for promotion in dict.fromkeys(life.promotions):
                key = (promotion, e.currency)
                f = promos.get(key, PromotionFigures(promotion, e.currency))
                promos[key] = attrs.evolve(f, payments=f.payments + 1, gross=f.gross + e.gross,
                                           discounts=f.discounts + e.discount,
                                           net=f.net + e.net)
        elif e.type == "payment.refunded" and life is not None:
            for promotion in dict.fromkeys(life.promotions):
                key = (promotion, e.currency)
                f = promos.get(key, PromotionFigures(promotion, e.currency))
                promos[key] = attrs.evolve(f, net=f.net - e.net)
    return Growth(_conversions(lives), _cohorts(lives, last_month, ruleset),
                  tuple(sorted(promos.values(), key=lambda p: (p.promotion, p.currency))))


@in_context
def growth_of_outcomes(outcomes: Iterable[Outcome], ruleset: Ruleset | None = None) -> Growth:
    return growth((e for o in outcomes if o.ok for e in o.events), ruleset)


def _conversions(lives: Mapping[str, _Life]) -> tuple[Conversion, ...]:
    table: dict[tuple[str, str], Conversion] = {}
    for life in lives.values():
        keys = [("plan", life.plan), ("storefront", life.storefront),
                ("channel", life.channel)]
        keys += [("promotion", p) for p in dict.fromkeys(life.checkout_promotions)] or [
            ("promotion", NONE)]
        for key in keys:
            c = table.get(key, Conversion(*key))
            table[key] = attrs.evolve(
                c, started=c.started + 1, trials=c.trials + life.trial,
                trials_converted=c.trials_converted + (life.trial and life.payments > 0),
                first_charges=c.first_charges + (life.payments > 0))
    order = {"plan": 0, "storefront": 1, "channel": 2, "promotion": 3}
    return tuple(sorted(table.values(), key=lambda c: (order[c.dimension], c.value)))


def _cohorts(lives: Mapping[str, _Life], last: str | None,
             ruleset: Ruleset | None) -> tuple[Cohort, ...]:
    if last is None:
        return ()
    periods = months_per_period(ruleset) if ruleset is not None else {}
    groups: dict[tuple[str, str], list[_Life]] = {}
    for life in lives.values():
        groups.setdefault((life.plan, life.month), []).append(life)
    cohorts = []
    for (plan, month), members in sorted(groups.items()):
        every = periods.get(plan, Decimal(1)) or Decimal(1)
        reachable = int(Decimal(_months_between(month, last)) / every) + 1
        retained = tuple(sum(1 for life in members if life.payments >= n)
                         for n in range(1, reachable + 1))
        cohorts.append(Cohort(plan, month, len(members), retained))
    return tuple(cohorts)


# -- rendering -------------------------------------------------------------------------


def _pct(rate: Decimal | None) -> str:
    return "-" if rate is None else f"{(rate * 100).quantize(Decimal('0.1'))}%"


@in_context
def render_growth(g: Growth, cycles: int = 12) -> str:
    """Conversion, retention (up to ``cycles`` charges) and promotions as text tables."""
    lines = ["conversion"]
    rows = [[c.dimension, c.value, str(c.started), str(c.trials), str(c.trials_converted),
             _pct(c.trial_conversion), str(c.first_charges), _pct(c.first_charge_conversion)]
            for c in g.conversions]
    lines += _grid(["by", "value", "started", "trials", "converted", "trial→paid",
                    "first paid", "first charge"], rows, 2)
    lines += ["", "retention: share of each cohort that paid at least N charges"]
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
                        "first_charge_conversion": rate(c.first_charge_conversion)}
                       for c in g.conversions],
        "retention": [{"plan": c.plan, "cohort": c.month, "size": c.size,
                       "retained": list(c.retained)} for c in g.cohorts],
        "promotions": [{"promotion": p.promotion, "currency": p.currency,
                        "redemptions": p.redemptions, "payments": p.payments,
                        "gross": money_str(p.gross, p.currency),
                        "discounts": money_str(p.discounts, p.currency),
                        "net": money_str(p.net, p.currency)} for p in g.promotions],
    }
