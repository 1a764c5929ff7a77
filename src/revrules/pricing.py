"""Pricing: what a charge costs, as pure functions of the ruleset, the rule context and
the day.

The list price comes from price schedules and contracts, discounts from promotions
(which ones apply, why the others were refused, how much each takes off), tax from the
first matching rate of each tax table (split out of an inclusive price, or added to an
exclusive one), and the PSP from the first route line that holds. :func:`quote` puts
these together into a :class:`Quote`. Nothing here reads or writes a state or emits an
event: the transaction (:mod:`revrules.transaction`) passes in what it knows and records
what these functions decide. ``cite`` is the engine's trace-entry maker
(:meth:`revrules.engine.Engine.trace`), so that a trace names the rules used.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from . import model as m
from . import runtime as rt
from .compiler import Ctx
from .diagnostics import did_you_mean
from .results import Discount, Trace
from .ruleset import Ruleset
from .state import Subscription

__all__ = ["Quote", "choose_promotions", "contract", "price_entry", "quote", "tax_rates"]

ZERO = Decimal(0)
NO_DISCOUNTS: tuple[Discount, ...] = ()

#: makes the (shared) trace entry citing a rule at a span
Cite = Callable[[str, m.Span], Trace]


@attrs.frozen
class Quote:
    """A priced charge before it becomes a decision."""

    currency: str
    list: Decimal
    discounts: tuple[Discount, ...]
    credit: Decimal
    tax: Decimal
    net: Decimal
    total: Decimal
    psp: str | None
    gross_ex: Decimal
    discount_ex: Decimal
    credit_ex: Decimal
    trace: tuple[Trace, ...]
    # the recurring price this charge implies: list less recurring discounts, tax-exclusive
    # (what MRR counts; meaningless for a proration, whose list is a part of a period)
    recurring: Decimal = ZERO

    @property
    def discount(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)


# -- list prices -----------------------------------------------------------------------
def price_entry(rules: Ruleset, plan: str, storefront: str, day: dt.date,
                existing: bool) -> m.PriceEntry | None:
    """The price line in force on ``day`` for a new (or an ``existing``) subscription."""
    # a bisect table over the lines' start dates: the last line (in schedule order) that
    # has started, found without scanning the schedule (revrules.decision.Schedule)
    return rules.decision_tables.schedule(plan, storefront, existing).on(day)


def contract(rules: Ruleset, customer_id: str, plan: str, day: dt.date) -> m.Contract | None:
    """The customer's contract for ``plan`` valid on ``day``, if any."""
    for c in rules.contracts.get((customer_id, plan), ()):
        if c.valid_from <= day <= c.valid_to:
            return c
    return None


def held_price_entry(rules: Ruleset, sub: Subscription,
                     pending: m.PriceEntry) -> m.PriceEntry:
    """The price line a subscription held at its old price pays by: the latest line
    before ``pending`` with that amount (else any with it, else ``pending``)."""
    entries = rules.prices.get((sub.plan, sub.storefront), ())
    same = [e for e in entries if e.amount == sub.price and e is not pending]
    before = [e for e in same if (e.effective or dt.date.min) <= (
        pending.effective or dt.date.min)]
    return (before or same or [pending])[-1]


# -- the quote -------------------------------------------------------------------------
def quote(rules: Ruleset, rounding: str, ctx: Ctx, list_amount: Decimal,
          discounts: tuple[Discount, ...], credit: Decimal, trace: list[Trace],
          cite: Cite) -> Quote:
    """Price a charge: ``list_amount`` less ``discounts`` and ``credit``, taxed as the
    storefront says, routed to a PSP. ``ctx`` is what the rules see (with the cycle being
    charged); its ``total`` is set to the charge's total for the route lines."""
    sf = ctx.storefront
    rates = tax_rates(rules, ctx, trace, cite)
    if discounts or credit or credit.is_signed():
        figures = _figures(rules, rounding, sf, list_amount, discounts, credit, rates)
    else:
        # undiscounted figures are a pure function of (storefront, rounding, list price,
        # rates), remembered per ruleset; keyed by the objects' identities, which is
        # cheaper than hashing Decimals (the rates are the model's; the entry keeps the
        # list price alive, so no other amount takes its id, and a hit checks it)
        memo = rules.decision_tables.figures
        key = (sf.name, rounding, id(list_amount), *map(id, rates))
        found = memo.get(key)
        if found is not None and found[-1] is list_amount:
            figures = found
        else:
            figures = _figures(rules, rounding, sf, list_amount, discounts, credit, rates)
            if len(memo) >= _FIGURES:
                memo.clear()
            memo[key] = figures
    total = figures[4]
    ctx.total = rt.Money(sf.currency, total)
    psp = route(rules, ctx, trace, cite)
    return Quote(sf.currency, figures[0], discounts, figures[1], figures[2], figures[3],
                 total, psp, figures[5], figures[6], figures[7], tuple(trace), figures[8])


#: how many undiscounted charges' figures a ruleset remembers (cleared when full)
_FIGURES = 4096


def _figures(rules: Ruleset, rounding: str, sf: m.Storefront, given: Decimal,
             discounts: tuple[Discount, ...], credit: Decimal,
             rates: list[Decimal]) -> tuple[Any, ...]:
    """(list, credit, tax, net, total, gross_ex, discount_ex, credit_ex, recurring,
    ``given``) of a charge of ``given`` less ``discounts`` and ``credit`` at ``rates``."""
    currency, mode = sf.currency, rounding
    # quantize the inputs once; every figure below is then a sum or difference of
    # amounts in the currency's minor units, or rounded to them where it is computed
    zero = rt.quantize(ZERO, currency)
    list_amount = rt.quantize(given, currency)
    credit = rt.quantize(credit, currency)
    discount = sum((d.amount for d in discounts), zero)
    amount = list_amount - discount - credit
    if amount < 0:
        amount = zero
    if sf.tax_inclusive:
        # the tax is computed once, on the amount charged; the discount and the credit
        # are split with the same rate, and gross is their sum with the net, so that a
        # rounding residue never shows as a discount (LANGUAGE.md §5.1)
        tax = inner_tax(amount, rates, currency, rounding) or zero
        net, total = amount - tax, amount
        discount_ex = discount - inner_tax(discount, rates, currency, rounding)
        credit_ex = credit - inner_tax(credit, rates, currency, rounding)
        gross_ex = net + discount_ex + credit_ex
    else:
        tax = zero
        for r in rates:
            tax += rt.percent_of(amount, r, currency, mode)
        net, total = amount, amount + tax
        gross_ex, credit_ex, discount_ex = list_amount, credit, discount
    recurring = recurring_net(rules, rounding, list_amount, discounts, rates, sf.name)
    return (list_amount, credit, tax, net, total, gross_ex, discount_ex, credit_ex, recurring,
            given)


def route(rules: Ruleset, ctx: Ctx, trace: list[Trace], cite: Cite) -> str | None:
    """The PSP of a charge: the first route line whose PSP the storefront lists and whose
    condition holds, else the storefront's first PSP (cited in ``trace``)."""
    sf = ctx.storefront
    lines = rules.route
    # the first line in order, with equality runs looked up (revrules.decision.FirstMatch)
    found = rules.decision_tables.route.first(ctx, lambda i: lines[i][0].psp in sf.psps)
    if found is not None:
        line = lines[found][0]
        trace.append(cite(line.rule.name, line.rule.span))
        return line.psp
    if sf.psps:
        trace.append(cite(f"storefront {sf.name} psp", sf.span))
        return sf.psps[0]
    return None


# -- tax -------------------------------------------------------------------------------
def tax_rates(rules: Ruleset, ctx: Ctx, trace: list[Trace], cite: Cite) -> list[Decimal]:
    """Each tax table's first rate whose condition holds (cited in ``trace``)."""
    rates: list[Decimal] = []
    # each table's first rate in order, with equality runs looked up in one dict
    # (revrules.decision.FirstMatch): the cost does not grow with the table
    for table, index in zip(rules.taxes, rules.decision_tables.taxes, strict=True):
        found = index.first(ctx)
        if found is not None:
            rate = table[found][0]
            rates.append(rate.rate)
            trace.append(cite(rate.rule.name, rate.rule.span))
    return rates


def inner_tax(amount: Decimal, rates: list[Decimal], currency: str, rounding: str) -> Decimal:
    """The tax inside a tax-inclusive amount: Σ round(amount × r / (1 + Σr)), one
    rounding per tax table."""
    if not rates or not amount:
        return ZERO
    if len(rates) == 1:
        return rt.split_inclusive(amount, rates[0], currency, rounding)
    combined = sum(rates, ZERO)
    return sum((rt.split_inclusive(amount, r, currency, rounding, combined)
                for r in rates), ZERO)


def tax_exclusive(rules: Ruleset, rounding: str, amount: Decimal, rates: list[Decimal],
                  storefront: str) -> Decimal:
    """``amount`` as the ruleset states it, without tax (split out on an inclusive
    storefront with the rates of the charge, exactly as a charge of it is split)."""
    sf = rules.storefronts[storefront]
    amount = rt.quantize(amount, sf.currency)
    if not sf.tax_inclusive:
        return amount
    return amount - inner_tax(amount, rates, sf.currency, rounding)


def recurring_net(rules: Ruleset, rounding: str, list_amount: Decimal,
                  discounts: tuple[Discount, ...], rates: list[Decimal],
                  storefront: str) -> Decimal:
    """The recurring price per period: the list price less the discounts that recur (a
    promotion for more than one cycle, or forever), tax-exclusive."""
    promotions = rules.promotions
    off = sum((d.amount for d in discounts if recurs(promotions.get(d.rule))), ZERO)
    return tax_exclusive(rules, rounding, max(list_amount - off, ZERO), rates, storefront)


def recurring_price(rules: Ruleset, rounding: str, sub: Subscription, ctx: Ctx, day: dt.date,
                    cite: Cite) -> Decimal:
    """What ``sub`` will recur at from its next charge, as known now (its price and the
    promotions attached to it): what MRR counts after a plan change. ``ctx`` is for the
    next cycle."""
    cycle = sub.cycle + 1
    discounts: tuple[Discount, ...] = NO_DISCOUNTS
    if sub.contract is None:
        # only attached promotions count (no code, no automatic ones): no redemption
        # counts are read
        chosen = choose_promotions(rules, rounding, sub, ctx, sub.price, cycle, day, None, [],
                                   _NO_COUNTS, _NO_COUNTS, automatic=False)
        discounts = tuple(Discount(p.name, amount) for p, amount, _ in chosen)
    rates = tax_rates(rules, ctx, [], cite)
    return recurring_net(rules, rounding, sub.price, discounts, rates, sub.storefront)


def price_figures(rules: Ruleset, rounding: str, ctx: Ctx, sub: Subscription, amount: Decimal,
                  cite: Cite) -> dict[str, Any]:
    """What a price event carries: ``gross`` tax-exclusive, as a renewal at that price
    would carry it (``ctx`` is for the next cycle), and ``list``, the price as the ruleset
    states it."""
    rates = tax_rates(rules, ctx, [], cite)
    return {"gross": tax_exclusive(rules, rounding, amount, rates, sub.storefront),
            "list": rt.quantize(amount, rules.storefronts[sub.storefront].currency)}


# -- promotions ------------------------------------------------------------------------
_NO_COUNTS: Mapping[str, int] = {}


def promotion_refusal(rules: Ruleset, p: m.Promotion, sub: Subscription, ctx: Ctx,
                      day: dt.date, redemptions: Mapping[str, int],
                      customer_redemptions: Mapping[str, int]) -> str | None:
    """Why promotion ``p`` cannot be redeemed now, or None (``ctx``: for the cycle it
    would discount; the redemption counts so far)."""
    sf = rules.storefronts[sub.storefront]
    if p.plans is not None and sub.plan not in p.plans:
        return f"{p.name} does not apply to plan {sub.plan}"
    if p.storefronts is not None and sub.storefront not in p.storefronts:
        return f"{p.name} is not offered in storefront {sub.storefront}"
    if p.currency is not None and p.currency != sf.currency:
        return f"{p.name} takes {p.currency} off but {sf.name} sells in {sf.currency}"
    if (p.valid_from and day < p.valid_from) or (p.valid_to and day > p.valid_to):
        return f"{p.name} not valid on {day}"
    test = rules.promotion_tests[p.name]
    if test is not None and p.condition is not None and not test(ctx):
        return f"{p.name} requires {rules.source_text(p.condition)}"
    if p.limit_total is not None and redemptions.get(p.name, 0) >= p.limit_total:
        return f"{p.name} is exhausted ({p.limit_total} redemptions)"
    if p.limit_per_customer is not None and customer_redemptions.get(
            redemption_key(p.name, sub.customer_id), 0) >= p.limit_per_customer:
        return f"{p.name} already redeemed by {sub.customer_id}"
    return None


def discount_of(p: m.Promotion, list_amount: Decimal, currency: str, rounding: str) -> Decimal:
    """What promotion ``p`` takes off ``list_amount``."""
    if p.kind == "percent":
        return rt.percent_of(list_amount, p.value, currency, rounding)
    return min(p.value, list_amount)


def choose_promotions(rules: Ruleset, rounding: str, sub: Subscription, ctx: Ctx,
                      list_amount: Decimal, cycle: int, day: dt.date, code: str | None,
                      reasons: list[str], redemptions: Mapping[str, int],
                      customer_redemptions: Mapping[str, int],
                      automatic: bool = True) -> list[tuple[m.Promotion, Decimal, bool]]:
    """The promotions that discount this charge: (promotion, amount, newly redeemed).

    ``ctx`` is for ``cycle``; why a code (or an automatic promotion against it) does not
    apply goes to ``reasons``."""
    currency = rules.storefronts[sub.storefront].currency
    candidates: list[tuple[m.Promotion, Decimal, bool]] = []
    attached = {a.name: a for a in sub.promotions}
    for a in sub.promotions:
        p = rules.promotions[a.name]
        if p.plans is not None and sub.plan not in p.plans:
            continue  # the subscription changed to a plan the promotion does not cover
        if a.first_cycle <= cycle and (a.last_cycle is None or cycle <= a.last_cycle):
            test = rules.promotion_tests[p.name]
            if p.automatic and test is not None and not test(ctx):
                continue
            candidates.append((p, discount_of(p, list_amount, currency, rounding), False))
    code_promo = None
    if code is not None:
        code_promo = rules.codes.get(code.upper())
        if code_promo is None:
            reasons.append(f"unknown promotion code \"{code}\""
                           f"{did_you_mean(code.upper(), rules.codes)}")
        elif code_promo.name in attached:
            reasons.append(f"{code_promo.name} is already applied")
            code_promo = None
        else:
            refusal = promotion_refusal(rules, code_promo, sub, ctx, day, redemptions,
                                        customer_redemptions)
            if refusal:
                reasons.append(refusal)
                code_promo = None
            else:
                candidates.append((code_promo, discount_of(
                    code_promo, list_amount, currency, rounding), True))
    for p in rules.automatic.get((sub.plan, sub.storefront), ()) if automatic else ():
        if p.name in attached:
            continue
        if promotion_refusal(rules, p, sub, ctx, day, redemptions,
                             customer_redemptions) is None:
            candidates.append((p, discount_of(p, list_amount, currency, rounding), True))
    if not candidates:
        return []
    single = [c for c in candidates if not c[0].stackable]
    chosen = [c for c in candidates if c[0].stackable]
    if single:
        best = min(single, key=lambda c: (-c[1], c[0].order))
        chosen.append(best)
        for c in single:
            # a rejected candidate: the code, or an automatic promotion that lost to it
            if c is not best and c[2] and code_promo is not None and (
                    c[0] is code_promo or best[0] is code_promo):
                reasons.append(f"{c[0].name} outbid by {best[0].name}")
    chosen.sort(key=lambda c: c[0].order)
    # never discount below zero
    remaining = list_amount
    result = []
    for p, amount, new in chosen:
        amount = min(amount, remaining)
        remaining -= amount
        result.append((p, amount, new))
    return result


def recurs(promotion: m.Promotion | None) -> bool:
    """A discount that recurs: a promotion for more than one charged cycle, or forever."""
    return promotion is not None and (promotion.cycles is None or promotion.cycles > 1)


def redemption_key(promotion: str, customer: str) -> str:
    """The key of a customer's redemptions of a promotion in the state."""
    return f"{promotion}\u001f{customer}"
