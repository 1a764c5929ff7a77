"""Renewals and time passing: ``renewal_due``, the renewal charge and its price (a
contract, a scheduled price change, a price held until the customer consents), and
``tick``, which settles in order whatever is due: trial ends, cancellations, resumes,
dunning retries and dunning's end."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from .. import runtime as rt
from .. import emission, pricing
from ..pricing import NO_DISCOUNTS, ZERO
from ..results import Trace
from ..state import Subscription, evolve
from ..transaction import Tx, fail
from . import pauses, payments, plan_changes


def on_renewal_due(tx: Tx) -> None:
    sub = tx.subscription()
    require_renewable(tx, sub)
    if sub.charge is not None:
        raise fail("past_due", f"subscription '{sub.id}' has an unpaid charge from "
                   f"{sub.charge.period_start}; settle it before the next renewal")
    due = tx.next_charge(sub)
    if tx.day != due:
        raise fail("not_due", f"subscription '{sub.id}' renews on {due}, not {tx.day}")
    renew(tx, sub, due)


def renew(tx: Tx, sub: Subscription, day: dt.date) -> None:
    """Charge the period starting ``day`` (the subscription's next charge date)."""
    rules = tx.rules
    at = max(tx.event.at, tx.at_time(day)) if tx.event.type == "tick" else tx.event.at
    if sub.cancel_at is not None and day >= sub.cancel_at:
        pauses.cancel(tx, sub, at, "lifecycle cancel", rules.model.lifecycle.span)
        return
    if sub.status == "trialing":
        plan = rules.plans[sub.plan]
        tx.emit("trial.expired", sub, at=at, rule=f"plan {plan.name} trial",
                source=plan.trial.span if plan.trial else plan.span)
        sub = evolve(sub, status="active", trial_end=None)
    trace: list[Trace] = []
    if sub.pending_plan is not None:
        cadence = rules.plans[sub.plan].every
        sub = plan_changes.change_plan(tx, sub, sub.pending_plan, at, day)
        if rules.plans[sub.plan].every != cadence:
            sub = evolve(sub, anchor=day, index=0)  # the new cadence starts today
    reasons: list[str] = []
    sub, list_amount = renewal_price(tx, sub, day, at, trace, reasons)
    cycle = sub.cycle + 1
    if sub.contract is None:
        sub, discounts = tx.apply_promotions(sub, list_amount, cycle, day, None, reasons,
                                             trace)
    else:
        discounts = NO_DISCOUNTS
    # a credit balance comes off the charge before anything is paid
    credit = min(sub.credit_balance, list_amount - sum((d.amount for d in discounts), ZERO))
    quote = tx.quote(sub, list_amount, discounts, credit, cycle, trace)
    start, end = tx.period(sub, sub.index)
    # the period index and cycle move on with the charge (one copy: open_charge makes it);
    # nothing before that reads them
    index = sub.index + 1
    if quote.credit:
        sub = evolve(sub, credit_balance=sub.credit_balance - quote.credit)
        reasons.append(tx.credit_note(quote.credit, sub))
    charge_id = payments.charge_id(tx, sub)
    tx.emit("subscription.renewed", sub, at=at, rule=trace[0].rule, source=trace[0].source,
            date=start, recurring=quote.recurring, **emission.charged(quote, charge_id))
    sub = payments.open_charge(tx, sub, quote, "renewal", start, end, trace[0].rule,
                               trace[0].source, index=index, cycle=cycle)
    tx.put(sub)
    sf = rules.storefronts[sub.storefront]
    due = rt.add(day, sf.terms) if sf.terms else None
    tx.decision(sub, "charge", quote, due=due, reasons=tuple(reasons), charge=charge_id)


def renewal_price(tx: Tx, sub: Subscription, day: dt.date, at: dt.datetime,
                  trace: list[Trace],
                  reasons: list[str] | None = None) -> tuple[Subscription, Decimal]:
    """The list price an existing subscription pays from ``day``; emits price events
    and says in ``reasons`` why a price is held."""
    rules = tx.rules
    contract = pricing.contract(tx.rules, sub.customer_id, sub.plan, day)
    if contract is not None and contract.currency == rules.storefronts[sub.storefront].currency:
        trace.append(tx.engine.trace(f"contract {contract.name}", contract.span))
        if contract.amount != sub.price:
            tx.emit("price.changed", sub, at=at, rule=f"contract {contract.name}",
                    source=contract.span, **tx.price_figures(sub, contract.amount))
        return evolve(sub, price=contract.amount, contract=contract.name), \
            contract.amount
    entry = pricing.price_entry(tx.rules, sub.plan, sub.storefront, day, existing=True)
    if entry is None:
        raise fail("not_sold", f"plan '{sub.plan}' has no price in '{sub.storefront}' "
                   f"on {day}")
    rule = f"price {sub.plan} {sub.storefront}"
    trace.append(tx.engine.trace(rule, entry.span))
    if entry.amount == sub.price:
        return (sub if sub.contract is None else evolve(sub, contract=None)), sub.price
    if sub.contract is None and entry.consent and not (
            sub.consent == "collected" and sub.consent_price == entry.amount):
        # held at the old price: the charge follows the line that price came from
        old = pricing.held_price_entry(tx.rules, sub, entry)
        trace[-1] = tx.engine.trace(rule, old.span)
        if reasons is not None:
            currency = rules.storefronts[sub.storefront].currency
            reasons.append(
                f"held at the old price {currency} {rt.money_str(sub.price, currency)} "
                f"until the customer consents to {currency} "
                f"{rt.money_str(entry.amount, currency)}"
                + (f" from {entry.effective}" if entry.effective else "")
                + f" ({emission.where(entry.span)})")
        if sub.consent == "requested" and sub.consent_price == entry.amount:
            tx.emit("consent.deferred", sub, at=at, rule=rule, source=entry.span,
                    **tx.price_figures(sub, entry.amount))
        else:
            tx.emit("consent.requested", sub, at=at, rule=rule, source=entry.span,
                    **tx.price_figures(sub, entry.amount))
            sub = evolve(sub, consent="requested", consent_price=entry.amount)
        return sub, sub.price
    tx.emit("price.changed", sub, at=at, rule=rule, source=entry.span,
            **tx.price_figures(sub, entry.amount))
    return evolve(sub, price=entry.amount, contract=None, consent=None,
                  consent_price=None), entry.amount


def require_renewable(tx: Tx, sub: Subscription) -> None:
    if sub.status in ("canceled", "unpaid", "paused"):
        raise fail("not_active", f"subscription '{sub.id}' is {sub.status}")


def on_tick(tx: Tx) -> None:
    until = tx.day
    pending = []
    # the due index holds only subscriptions with something pending: no full scan
    for sub_id in sorted(k for k, day in tx.due.items() if day <= until):
        if tx.engine.cannot_serve(tx.subs[sub_id]) is not None:
            continue  # left as it is: `revrules check --state` lists it
        item = tx.due_item(tx.subs[sub_id], until)
        if item is not None:
            pending.append((item, sub_id))
    # in order of due date, then subscription id; only the items of one subscription on
    # one date keep their kind order (a retry before the `then` action)
    while pending:
        pending.sort(key=lambda p: (p[0][0], p[1], p[0][1]))
        settled, sub_id = pending.pop(0)
        settle_due(tx, tx.subs[sub_id], settled[0], settled[2])
        item = tx.due_item(tx.subs[sub_id], until)
        if item is not None:
            if item == settled:  # settling it changed nothing: it would never end
                raise rt.EvaluationError(
                    "inconsistent_state", f"subscription '{sub_id}': settling its "
                    f"{settled[2]} of {settled[0].isoformat()} changes nothing")
            pending.append((item, sub_id))


def settle_due(tx: Tx, sub: Subscription, day: dt.date, kind: str) -> None:
    at = tx.at_time(day)
    rules = tx.rules
    if kind == "trial_end":
        renew(tx, sub, day)
    elif kind == "cancel":
        pauses.cancel(tx, sub, at, "lifecycle cancel", rules.model.lifecycle.span)
    elif kind == "resume":
        pauses.resume(tx, sub, day, at)
    elif kind == "retry":
        assert sub.dunning is not None and sub.charge is not None
        charge = sub.charge  # unchanged by the evolve below
        dunning = evolve(sub.dunning, retries=sub.dunning.retries[1:])
        sub = tx.put(evolve(sub, dunning=dunning))
        tx.decision(sub, "charge", currency=charge.currency, list=charge.list,
                    discounts=charge.discounts, credit=charge.credit, tax=charge.tax, net=charge.net,
                    total=charge.total, psp=dunning.via, retry_at=day,
                    grace_ends=dunning.grace_end,
                    reasons=(f"dunning {dunning.policy}: retry "
                             f"{dunning.scheduled - len(dunning.retries)} of "
                             f"{dunning.scheduled}",), charge=charge.id)
    else:
        payments.dunning_end(tx, sub, at)
