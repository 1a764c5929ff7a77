"""Plan changes: ``plan_change_requested`` (at once, prorated, or at the period end)
and the move to another plan that a renewal also makes for a pending change."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import model as m
from .. import runtime as rt
from .. import emission, pricing
from ..diagnostics import did_you_mean
from ..pricing import NO_DISCOUNTS
from ..results import Trace
from ..state import Subscription, evolve
from ..transaction import Tx, fail
from . import payments


def on_plan_change_requested(tx: Tx) -> None:
    rules, ev = tx.rules, tx.event
    sub = tx.subscription()
    assert ev.plan is not None
    if ev.plan not in rules.plans:
        raise fail("unknown_plan", f"unknown plan '{ev.plan}'"
                   f"{did_you_mean(ev.plan, rules.plans)}")
    if sub.status not in ("active", "trialing"):
        return tx.deny(sub, f"subscription is {sub.status}")
    plan = rules.plans[sub.plan]
    change = next((c for c in plan.changes if c.target == ev.plan), None)
    if change is None:
        return tx.deny(sub, f"plan {plan.name} does not allow a change to {ev.plan}")
    trace = (tx.engine.trace(f"plan {plan.name} {change.kind}", change.span),)
    if pricing.price_entry(tx.rules, ev.plan, sub.storefront, tx.day, existing=False) is None:
        return tx.deny(sub, f"plan {ev.plan} is not sold in {sub.storefront}", trace)
    if change.timing == "period_end":
        sub = tx.put(evolve(sub, pending_plan=ev.plan))
        tx.decision(sub, "none", trace=trace)
        return None
    if sub.charge is not None:
        return tx.deny(sub, "an unpaid charge is open; pay it before changing plan", trace)
    if not change.prorate or sub.status == "trialing" or sub.payment is None:
        next_charge = tx.next_charge(sub)
        sub = change_plan(tx, sub, ev.plan, ev.at, tx.day)
        if rules.plans[ev.plan].every != plan.every:
            # a new cadence starts where the paid (or trial) period ends
            sub = evolve(sub, anchor=next_charge, index=0)
        tx.put(sub)
        tx.decision(sub, "none", trace=trace)
        return None
    prorated_change(tx, sub, change, trace)
    return None


def prorated_change(tx: Tx, sub: Subscription, change: m.PlanChange,
                    trace: tuple[Trace, ...]) -> None:
    start, end = tx.period(sub, sub.index - 1)
    whole = (end - start).days
    unused = max(0, min(whole, (end - tx.day).days))
    currency = tx.rules.storefronts[sub.storefront].currency
    assert sub.payment is not None
    credit = rt.prorate(sub.payment.base, unused, whole, currency, tx.rounding)
    entry = pricing.price_entry(tx.rules, change.target, sub.storefront, tx.day, existing=False)
    assert entry is not None  # checked by on_plan_change_requested
    notes = [f"{unused} unused of {whole} days"]
    new_cadence = tx.rules.plans[change.target].every != tx.rules.plans[sub.plan].every
    if new_cadence:
        # another billing period (monthly → yearly): the new plan's first full period
        # starts today, against the credit for the old one's unused days
        charge = entry.amount
        end = rt.add(tx.day, tx.rules.plans[change.target].every)
        notes.append(f"new billing period from {tx.day}")
    else:
        charge = rt.prorate(entry.amount, unused, whole, currency, tx.rounding)
    credit_used = min(credit, charge)
    # the credit balance pays what the proration credit leaves, and what the proration
    # credit leaves over goes to the balance
    balance_used = min(sub.credit_balance, charge - credit_used)
    price = tx.engine.trace(f"price {change.target} {sub.storefront}", entry.span)
    quote = tx.quote(evolve(sub, plan=change.target), charge, NO_DISCOUNTS,
                     credit_used + balance_used, sub.cycle, [*trace, price])
    charge_id = payments.charge_id(tx, sub)
    sub = change_plan(tx, sub, change.target, tx.event.at, tx.day,
                      **emission.charged(quote, charge_id))
    if new_cadence:
        sub = evolve(sub, anchor=tx.day, index=1)
    credit_ex = quote.credit_ex if not balance_used else rt.prorate(
        quote.credit_ex, credit_used, credit_used + balance_used, currency, tx.rounding)
    tx.emit("credit.issued", sub, rule=trace[0].rule, source=trace[0].source,
            credit=credit_ex, amount=credit, charge=charge_id)
    sub = evolve(sub, credit_balance=sub.credit_balance - balance_used + credit - credit_used)
    if balance_used:
        notes.append(tx.credit_note(balance_used, sub))
    sub = payments.open_charge(tx, sub, quote, "proration", tx.day, end, trace[0].rule,
                               trace[0].source)
    tx.put(sub)
    kind = "charge" if credit <= charge else "credit"
    if credit > charge:
        notes.append(f"{rt.money_str(credit - charge, currency)} {currency} left as credit")
    tx.decision(sub, kind, quote, reasons=tuple(notes), charge=charge_id)


def change_plan(tx: Tx, sub: Subscription, target: str, at: dt.datetime,
                day: dt.date, **charged: Any) -> Subscription:
    """Move to ``target`` now (anchor unchanged); entitlement and plan-change events.

    ``charged`` are the figures of a charge the change opens (a proration)."""
    rules = tx.rules
    old = rules.plans[sub.plan]
    new = rules.plans[target]
    change = next((c for c in old.changes if c.target == target), None)
    kind = change.kind if change else "upgrade"
    source = change.span if change else new.span
    # the subscription moves in as an existing one: the price its later renewals keep
    # (else a pending scheduled price would read as a change that never happened)
    entry = pricing.price_entry(tx.rules, target, sub.storefront, day, existing=True) or \
        pricing.price_entry(tx.rules, target, sub.storefront, day, existing=False)
    price = entry.amount if entry is not None else sub.price
    sub = evolve(sub, plan=target, price=price, pending_plan=None, consent=None,
                 consent_price=None, contract=None)
    # the event names the plan moved to; its rule names the plan left
    rule = f"plan {old.name} {kind}"
    tx.emit(f"subscription.{kind}d", sub, at=at, rule=rule, source=source,
            recurring=tx.recurring_price(sub, day), **charged)
    return tx.set_entitlements(sub, new.entitlements, rule, source, at)
