"""Refunds and credits: ``refund_requested`` (by the refund policy, or a goodwill
amount) against a paid charge, and ``credit_granted``, a balance later charges use."""

from __future__ import annotations

from typing import Any

import attrs

from .. import runtime as rt
from ..state import Payment, Subscription, evolve
from ..transaction import Tx, fail


def on_refund_requested(tx: Tx) -> None:
    sub = tx.subscription()
    payment = refund_target(tx, sub)
    refundable = payment.total - payment.refunded
    currency = payment.currency
    if refundable <= 0:
        raise fail("nothing_to_refund", f"charge '{payment.charge}' of subscription "
                   f"'{sub.id}' has nothing left to refund" if payment.charge else
                   f"subscription '{sub.id}' has no payment to refund")
    policy = tx.rules.model.lifecycle
    trace = (tx.engine.trace("lifecycle refund", policy.span),)
    paid_day = rt.local_date(payment.at, tx.tz)
    goodwill = tx.event.amount is not None
    if tx.event.amount is not None:
        amount = tx.event.amount
        if amount <= 0:
            raise fail("bad_field", "a refund 'amount' must be more than 0")
        tx.check_precision(amount, currency)
        if amount > refundable:
            raise fail("refund_too_large", f"refund of {rt.money_str(amount, currency)} "
                       f"{currency} is more than the {rt.money_str(refundable, currency)} "
                       f"{currency} still refundable"
                       + (f" of charge '{payment.charge}'" if payment.charge else ""))
        mode = "requested"
    else:
        within = policy.refund_within is not None and tx.day <= rt.add(
            paid_day, policy.refund_within)
        mode = policy.refund if policy.refund_within is None else (
            "full" if within else policy.refund_after)
        if mode == "none":
            return tx.deny(sub, "no refund: outside the refund window"
                           if policy.refund_within else "this ruleset gives no refunds",
                           trace)
        if mode == "full":
            amount = refundable
        else:
            whole = (payment.period_end - payment.period_start).days
            unused = max(0, min(whole, (payment.period_end - tx.day).days))
            amount = min(refundable, rt.prorate(payment.total, unused, whole, currency,
                                                tx.rounding))
    # the refund carries the payment's tax in proportion, rounded once; the refunds of
    # one charge together give back exactly its tax when they give back all of it
    tax_left = payment.tax - payment.refunded_tax
    tax = tax_left if amount == refundable else min(tax_left, rt.prorate(
        payment.tax, amount, payment.total, currency, tx.rounding))
    refunded = evolve(payment, refunded=payment.refunded + amount,
                      refunded_tax=payment.refunded_tax + tax)
    if payment is sub.payment:
        sub = evolve(sub, payment=refunded)
    else:
        sub = evolve(sub, earlier_payments=tuple(
            refunded if p is payment else p for p in sub.earlier_payments))
    # the store, carrier or partner gives its share of the refunded part back
    sf = tx.rules.storefronts[sub.storefront]
    commission = rt.percent_of(amount - tax, sf.commission, currency, tx.rounding)
    tx.emit("payment.refunded", sub, rule="lifecycle refund", source=policy.span,
            amount=amount, tax=tax, net=amount - tax, commission=commission,
            psp=payment.psp, reasons=(mode,), charge=payment.charge)
    quote_fields: dict[str, Any] = dict(currency=currency, total=amount, tax=tax,
                                        net=amount - tax, reasons=(f"refund {mode}",),
                                        trace=trace, charge=payment.charge)
    # a goodwill refund (an amount) keeps the subscription unless it says "cancel"
    ends = not goodwill or tx.event.cancel is True
    if ends and sub.status != "canceled":
        sub = evolve(sub, status="canceled", cancel_at=None, charge=None, dunning=None)
        tx.emit("subscription.canceled", sub, rule="lifecycle refund", source=policy.span)
        sub = tx.set_entitlements(sub, (), "lifecycle refund", policy.span)
    tx.put(sub)
    if ends:
        quote_fields["next_charge"] = None
    tx.decision(sub, "refund", psp=payment.psp, **quote_fields)
    return None


def refund_target(tx: Tx, sub: Subscription) -> Payment:
    """The paid charge a refund is for: the one ``charge`` names, else the latest."""
    wanted = tx.event.charge
    if wanted is None:
        if sub.payment is None:
            raise fail("nothing_to_refund",
                       f"subscription '{sub.id}' has no payment to refund")
        return sub.payment
    for payment in (sub.payment, *reversed(sub.earlier_payments)):
        if payment is not None and payment.charge == wanted:
            return payment
    if sub.charge is not None and sub.charge.id == wanted:
        raise fail("unknown_charge", f"charge '{wanted}' of subscription '{sub.id}' is "
                   "not paid; only a paid charge can be refunded")
    raise fail("unknown_charge", f"subscription '{sub.id}' has no paid charge '{wanted}'")


def on_refund_requested_full(tx: Tx) -> None:
    """A store's refund: what is left of the latest payment, and the end of the
    subscription."""
    sub = tx.subscription()
    if sub.payment is None:
        raise fail("nothing_to_refund", f"subscription '{sub.id}' has no payment to refund")
    if tx.event.amount is None:
        refundable = sub.payment.total - sub.payment.refunded
        tx.event = attrs.evolve(tx.event, amount=refundable)
    tx.event = attrs.evolve(tx.event, cancel=True)
    on_refund_requested(tx)


def on_credit_granted(tx: Tx) -> None:
    sub = tx.subscription()
    sf = tx.rules.storefronts[sub.storefront]
    currency = sf.currency
    amount = tx.event.amount
    assert amount is not None
    if sub.status == "canceled":
        raise fail("already_canceled", f"subscription '{sub.id}' is canceled")
    if sf.store_managed:
        raise fail("store_managed", f"storefront '{sf.name}' is billed by the "
                   f"{sf.channel}; a credit cannot come off its charges")
    if rt.quantize(amount, currency) != amount or amount <= 0:
        raise fail("bad_field", f"a credit is more than 0 and has at most "
                   f"{-rt.exponent(currency).as_tuple().exponent} decimals in "  # type: ignore[operator]
                   f"{currency}")
    sub = tx.put(evolve(sub, credit_balance=sub.credit_balance + amount))
    reason = tx.event.reason
    # a goodwill credit has no rule of its own: it cites the plan whose charges it reduces
    plan = tx.rules.plans[sub.plan]
    tx.emit("credit.issued", sub, rule=f"plan {plan.name}", source=plan.span, amount=amount,
            reasons=(reason,) if reason else ())
    balance = rt.money_str(sub.credit_balance, currency)
    tx.decision(sub, "credit", currency=currency, credit=amount,
                reasons=(f"credit balance {balance} {currency}",
                         *((reason,) if reason else ())))
