"""Pause, resume, cancel and consent: the customer's requests that change whether and
when a subscription renews, and the cancellation every other family ends with."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .. import runtime as rt
from .. import emission
from ..state import Subscription, evolve
from ..transaction import Tx, fail


def on_pause_requested(tx: Tx) -> None:
    sub = tx.subscription()
    policy = tx.rules.model.lifecycle
    if policy.pause_max is None or policy.pause_rule is None:
        return tx.deny(sub, "this ruleset does not allow pauses")
    rule = policy.pause_rule
    trace = (tx.engine.trace(rule.name, rule.span),)
    test = tx.rules.pause_test
    if test is not None and not test(tx.ctx(sub)):
        return tx.deny(sub, f"{rule.name}: requires {tx.rules.source_text(rule)} "
                       f"({emission.where(rule.span)})", trace)
    if sub.status != "active" or sub.charge is not None:
        return tx.deny(sub, f"only an active, paid-up subscription can pause "
                       f"(this one is {sub.status}"
                       f"{' with an unpaid charge' if sub.charge else ''})", trace)
    sub = evolve(sub, status="paused", paused_at=tx.day,
                 resume_by=rt.add(tx.day, policy.pause_max))
    tx.emit("subscription.paused", sub, rule=rule.name, source=rule.span,
            date=sub.resume_by)
    sub = tx.put(tx.set_entitlements(sub, (), rule.name, rule.span))
    tx.decision(sub, "none", next_charge=None, trace=trace)
    return None


def on_resume_requested(tx: Tx) -> None:
    sub = tx.subscription()
    if sub.status != "paused" or sub.paused_at is None:
        return tx.deny(sub, _not_paused(sub))
    resume(tx, sub, tx.day, tx.event.at)
    return None


def resume(tx: Tx, sub: Subscription, day: dt.date, at: dt.datetime) -> None:
    assert sub.paused_at is not None
    plan = tx.rules.plans[sub.plan]
    # the paid-up days are kept: the next charge is the paid-through date at the pause
    # plus the calendar days paused, and that date is the new anchor (period 0)
    shift = dt.timedelta(days=(day - sub.paused_at).days)
    paid_through = tx.next_charge(sub)
    payment = sub.payment
    if payment is not None and payment.period_end == paid_through:
        # the paid period ends as many days later (prorated refunds count from it)
        payment = evolve(payment, period_start=payment.period_start + shift,
                         period_end=payment.period_end + shift)
    # a cancel at the period end waits for the end of the paid days too
    cancel_at = sub.cancel_at + shift if sub.cancel_at == paid_through else sub.cancel_at
    sub = evolve(sub, status="active", anchor=paid_through + shift, index=0,
                 paused_at=None, resume_by=None, payment=payment, cancel_at=cancel_at)
    rule = tx.rules.model.lifecycle.pause_rule
    tx.emit("subscription.resumed", sub, at=at, rule=rule.name if rule else None,
            source=rule.span if rule else None, date=tx.next_charge(sub))
    sub = tx.put(tx.set_entitlements(sub, plan.entitlements, f"plan {plan.name}",
                                     plan.span, at))
    tx.decision(sub, "none")


def on_cancel_requested(tx: Tx) -> None:
    sub = tx.subscription()
    if sub.status in ("canceled",):
        raise fail("already_canceled", f"subscription '{sub.id}' is already canceled")
    policy = tx.rules.model.lifecycle
    if policy.cancel == "immediate" or sub.status in ("past_due", "paused", "unpaid"):
        cancel(tx, sub, tx.event.at, "lifecycle cancel", policy.span)
        return
    sub = tx.put(evolve(sub, cancel_at=tx.next_charge(sub)))
    tx.decision(sub, "none", reasons=(f"cancels at period end, {sub.cancel_at}",),
                trace=(tx.engine.trace("lifecycle cancel", policy.span),))


def cancel(tx: Tx, sub: Subscription, at: dt.datetime, rule: str, source: Any,
           status: str = "canceled") -> Subscription:
    if status == "canceled":
        tx.emit("subscription.canceled", sub, at=at, rule=rule, source=source)
    elif status == "paused":
        tx.emit("subscription.paused", sub, at=at, rule=rule, source=source)
    sub = evolve(sub, status=status, cancel_at=None, charge=None if status ==
                 "canceled" else sub.charge, dunning=None, pending_plan=None)
    sub = tx.set_entitlements(sub, (), rule, source, at)
    tx.put(sub)
    tx.decision(sub, "none", next_charge=None)
    return sub


def on_consent_given(tx: Tx) -> None:
    sub = tx.subscription()
    if sub.consent != "requested":
        raise fail("no_consent_pending", f"subscription '{sub.id}' has no price change "
                   "waiting for consent")
    sub = evolve(sub, consent="collected")
    price = sub.consent_price if sub.consent_price is not None else sub.price
    # the price line that asked for the consent: the latest one at that price
    entry = next((e for e in reversed(tx.rules.prices.get((sub.plan, sub.storefront), ()))
                  if e.consent and e.amount == price), None)
    plan = tx.rules.plans[sub.plan]
    tx.emit("consent.collected", sub, rule=f"price {sub.plan} {sub.storefront}",
            source=entry.span if entry is not None else plan.span,
            **tx.price_figures(sub, price))
    tx.put(sub)
    tx.decision(sub, "none")


def on_consent_declined(tx: Tx) -> None:
    sub = tx.subscription()
    if sub.consent != "requested":
        raise fail("no_consent_pending", f"subscription '{sub.id}' has no price change "
                   "waiting for consent")
    sub = tx.put(evolve(sub, consent=None, consent_price=None,
                        cancel_at=tx.next_charge(sub)))
    tx.decision(sub, "none", reasons=(f"consent declined: cancels at period end, "
                                      f"{sub.cancel_at}",))


def _not_paused(sub: Subscription) -> str:
    """Why a subscription cannot resume, and what would bring it back."""
    charge = sub.charge
    pay = (f"pay the open charge of {charge.currency} "
           f"{rt.money_str(charge.total, charge.currency)}" if charge is not None else None)
    if sub.status == "paused":  # paused by dunning, not by a pause request
        if pay is None:
            return "subscription is paused by dunning, not by a pause request"
        return f"subscription is paused by dunning because a charge went unpaid; {pay} to resume it"
    if sub.status == "unpaid" and pay is not None:
        return f"subscription is unpaid, not paused; {pay} to reactivate it"
    return f"subscription is {sub.status}, not paused"
