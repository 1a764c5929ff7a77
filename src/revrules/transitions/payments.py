"""Payments and dunning: opening and settling charges, ``payment_succeeded``,
``payment_failed`` and the dunning policy that follows a failed payment (retries, grace,
and its ``then`` action when they run out)."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

from .. import model as m
from .. import runtime as rt
from .. import emission
from ..pricing import ZERO, Quote
from ..results import Trace
from ..drafts import maker
from ..state import Charge, Dunning, Payment, Subscription, evolve
from ..transaction import Tx, fail
from . import pauses


def check_payment(tx: Tx, sub: Subscription, charge: Charge) -> None:
    """A payment event's ``currency``, ``amount`` and ``psp``, where given, must be
    the open charge's: its currency, its total (within the engine's tolerance, 0 by
    default: partial payments are refused) and its PSP or dunning's `retry via` PSP."""
    ev = tx.event
    if ev.currency is not None and ev.currency.upper() != charge.currency:
        raise fail("currency_mismatch", f"the payment is in {ev.currency} but the open "
                   f"charge of subscription '{sub.id}' is in {charge.currency}")
    if ev.amount is not None:
        tx.check_precision(ev.amount, charge.currency)
        if abs(ev.amount - charge.total) > tx.engine.payment_tolerance:
            raise fail("amount_mismatch", f"the payment of "
                       f"{rt.money_str(ev.amount, charge.currency)} {charge.currency} "
                       f"does not match the open charge of subscription '{sub.id}', "
                       f"{rt.money_str(charge.total, charge.currency)} "
                       f"{charge.currency} (partial payments are not supported)")
    if ev.psp is not None:
        psps = [charge.psp] if charge.psp is not None else list(
            tx.rules.storefronts[sub.storefront].psps)
        if sub.dunning is not None and sub.dunning.via and sub.dunning.via not in psps:
            psps.append(sub.dunning.via)
        if ev.psp not in psps:
            expected = " or ".join(psps) if psps else "no PSP"
            raise fail("unknown_psp", f"the payment came through '{ev.psp}', but the open "
                       f"charge of subscription '{sub.id}' goes through {expected}")


def open_charge(tx: Tx, sub: Subscription, quote: Quote, kind: str, start: dt.date,
                end: dt.date, rule: str, source: Any, **changes: Any) -> Subscription:
    """Record a decided charge (settled at once when it is zero); apply ``changes``.

    The charge gets the id :func:`charge_id` gave before it was opened."""
    charge = maker(Charge)(kind, tx.event.at, start, end, quote.currency, quote.list,
                           quote.discount, quote.credit, quote.tax, quote.net, quote.total,
                           quote.psp, quote.gross_ex, quote.discount_ex, quote.credit_ex,
                           rule, emission.where(source), quote.discounts, charge_id(tx, sub))
    changes["charge_count"] = sub.charge_count + 1
    if quote.total == 0:
        return settle(tx, evolve(sub, **changes) if changes else sub, charge,
                      tx.event.at, quote.psp)
    return evolve(sub, charge=charge, **changes)


def charge_id(tx: Tx, sub: Subscription) -> str:
    """The id the next charge of ``sub`` gets: ``SUB:N`` for its N-th charge."""
    return f"{sub.id}:{sub.charge_count + 1}"


def settle(tx: Tx, sub: Subscription, charge: Charge, at: dt.datetime,
           psp: str | None) -> Subscription:
    """``sub`` with ``charge`` paid at ``at`` (through ``psp``, else the charge's PSP)."""
    sf = tx.rules.storefronts[sub.storefront]
    commission = rt.percent_of(charge.net, sf.commission, sf.currency, tx.rounding)
    tx.emit("payment.succeeded", sub, at=at, rule=charge.rule, source=charge.source,
            gross=charge.gross_ex, discount=charge.discount_ex, credit=charge.credit_ex,
            tax=charge.tax, net=charge.net, amount=charge.total, commission=commission,
            psp=psp or charge.psp, charge=charge.id)
    # kept for refunds as long as the subscription lives: its amounts and PSP name are
    # shared with every other payment's (rt.shared, sys.intern), not one copy each
    payment = maker(Payment)(at, charge.period_start, charge.period_end, charge.currency,
                             rt.shared(charge.total), rt.shared(charge.tax), ZERO,
                             (sys.intern(psp) if type(psp) is str else psp) or charge.psp,
                             rt.shared(charge.list - charge.discount), charge.id)
    # every paid charge stays refundable by its id; the latest is ``payment``
    earlier = sub.earlier_payments if sub.payment is None else (
        *sub.earlier_payments, sub.payment)
    return evolve(sub, charge=None, payment=payment, dunning=None, earlier_payments=earlier)


def on_payment_succeeded(tx: Tx) -> None:
    sub = tx.subscription()
    if sub.charge is None:
        raise fail("no_open_charge", f"subscription '{sub.id}' has no open charge to pay")
    check_payment(tx, sub, sub.charge)
    # paying a charge that dunning left open brings the subscription back; a pause the
    # customer asked for (paused_at set) stays a pause
    recovers = sub.status in ("past_due", "unpaid") or (
        sub.status == "paused" and sub.paused_at is None)
    paid = sub.charge.id
    sub = settle(tx, sub, sub.charge, tx.event.at, tx.event.psp)
    if recovers:
        sub = evolve(sub, status="active")
        plan = tx.rules.plans[sub.plan]
        sub = tx.set_entitlements(sub, plan.entitlements, f"plan {plan.name}", plan.span)
    tx.put(sub)
    tx.decision(sub, "none", charge=paid)


def dunning_policy(tx: Tx, sub: Subscription) -> tuple[m.DunningPolicy | None, Any]:
    ctx = tx.ctx(sub)
    fallback = None
    for policy, applies, no_retry in tx.rules.dunning:
        if applies is None:
            if fallback is None:
                fallback = (policy, no_retry)
        elif applies(ctx):
            return policy, no_retry
    return fallback if fallback else (None, None)


def on_payment_failed(tx: Tx) -> None:
    sub = tx.subscription()
    charge = sub.charge
    if charge is None:
        raise fail("no_open_charge", f"subscription '{sub.id}' has no open charge")
    check_payment(tx, sub, charge)
    tx.emit("payment.failed", sub, rule=charge.rule, source=charge.source,
            amount=charge.total, psp=tx.event.psp or charge.psp,
            reasons=(tx.event.reason,) if tx.event.reason else (), charge=charge.id)
    if sub.dunning is not None:
        dunning = evolve(sub.dunning, attempts=sub.dunning.attempts + 1)
        sub = evolve(sub, dunning=dunning)
        if dunning.scheduled and not dunning.retries and (
                dunning.grace_end is None or tx.day >= dunning.grace_end):
            # the last retry failed and grace is over: nothing is left to wait for
            dunning_end(tx, sub, tx.event.at)
            return
        sub = tx.put(sub)
        tx.decision(sub, "none", retry_at=dunning.retries[0] if dunning.retries else None,
                    grace_ends=dunning.grace_end, charge=charge.id)
        return
    policy, no_retry = dunning_policy(tx, sub)
    day = tx.day
    sf = tx.rules.storefronts[sub.storefront]
    reasons: list[str] = []
    trace: list[Trace] = []
    if policy is None:
        sub = tx.put(evolve(sub, status="past_due"))
        tx.decision(sub, "none", reasons=("no dunning policy applies",), charge=charge.id)
        return
    trace.append(tx.engine.trace(f"dunning {policy.name}", policy.span))
    retries: tuple[dt.date, ...] = ()
    if sf.store_managed:
        reasons.append(f"{sf.channel}: the store retries the payment")
    elif no_retry is not None and no_retry(tx.ctx(sub)):
        assert policy.no_retry is not None
        reasons.append(f"dunning {policy.name}: no retry when "
                       f"{tx.rules.source_text(policy.no_retry)}")
        trace.append(tx.engine.trace(f"dunning {policy.name} no retry",
                                     policy.no_retry.span))
    else:
        retries = tuple(rt.add(day, d) for d in policy.retries)
    grace_end = rt.add(day, policy.grace) if policy.grace else None
    # the `then` action never pre-empts a retry: a retry asked for on day D may be
    # paid on day D, so the action is due at the later of the grace end and D + 1
    ends = max([day, *([retries[-1] + dt.timedelta(days=1)] if retries else []),
                *([grace_end] if grace_end else [])])
    # a 'retry via' PSP the storefront does not list is skipped, as route lines are
    via = policy.via if policy.via in sf.psps else charge.psp
    dunning = Dunning(policy.name, day, retries, grace_end, ends, 1, via, len(retries))
    sub = evolve(sub, status="past_due", dunning=dunning)
    for retry in retries:
        tx.emit("payment.retry_scheduled", sub, rule=f"dunning {policy.name}",
                source=policy.span, date=retry, psp=via, amount=charge.total,
                charge=charge.id)
    if not policy.keep_entitlements:
        sub = tx.set_entitlements(sub, (), f"dunning {policy.name}", policy.span)
    tx.put(sub)
    tx.decision(sub, "none", retry_at=retries[0] if retries else None,
                grace_ends=grace_end, reasons=tuple(reasons), trace=tuple(trace),
                charge=charge.id)


def dunning_end(tx: Tx, sub: Subscription, at: dt.datetime) -> None:
    """Run the dunning policy's `then` action: cancel, pause or unpaid."""
    assert sub.dunning is not None
    policy = next(p for p, _, _ in tx.rules.dunning if p.name == sub.dunning.policy)
    pauses.cancel(tx, sub, at, f"dunning {policy.name}", policy.span,
                  status={"cancel": "canceled", "pause": "paused",
                          "unpaid": "unpaid"}[policy.then])
