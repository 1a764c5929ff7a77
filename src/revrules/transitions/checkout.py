"""Checkout: a new subscription, its customer attributes, trial eligibility, the
first price (a contract or the price schedule), promotions and the first charge."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import immutables

from .. import model as m
from .. import runtime as rt
from .. import emission, pricing
from ..diagnostics import did_you_mean, json_text
from ..events import check_date, check_decimal
from ..pricing import NO_DISCOUNTS, ZERO
from ..results import Trace
from ..state import Subscription, evolve, make_subscription
from ..transaction import Tx, fail
from . import payments


def on_checkout(tx: Tx) -> None:
    ev, rules = tx.event, tx.rules
    assert ev.storefront and ev.plan and ev.subscription and ev.customer is not None
    sf = rules.storefronts.get(ev.storefront)
    if sf is None:
        raise fail("unknown_storefront", f"unknown storefront '{ev.storefront}'"
                   f"{did_you_mean(ev.storefront, rules.storefronts)}")
    plan = rules.plans.get(ev.plan)
    if plan is None:
        raise fail("unknown_plan", f"unknown plan '{ev.plan}'"
                   f"{did_you_mean(ev.plan, rules.plans)}")
    if ev.subscription in tx.subs:
        raise fail("duplicate_subscription",
                   f"subscription '{ev.subscription}' already exists")
    customer = customer_attributes(tx, ev.customer)
    customer_id = ev.customer["id"]
    day = tx.day
    contract = pricing.contract(tx.rules, customer_id, plan.name, day)
    if contract is not None and contract.currency != sf.currency:
        contract = None
    trace: list[Trace] = []
    reasons: list[str] = []
    if contract is not None:
        list_amount = contract.amount
        trace.append(tx.engine.trace(f"contract {contract.name}", contract.span))
    else:
        if sf.name in plan.not_sold or (plan.name, sf.name) not in rules.prices:
            raise fail("not_sold", f"plan '{plan.name}' is not sold in storefront "
                       f"'{sf.name}'")
        entry = pricing.price_entry(tx.rules, plan.name, sf.name, day, existing=False)
        if entry is None:
            first = rules.prices[(plan.name, sf.name)][0].effective
            raise fail("not_sold", f"plan '{plan.name}' is not sold in storefront "
                       f"'{sf.name}' before {first}")
        list_amount = entry.amount
        trace.append(tx.engine.trace(f"price {plan.name} {sf.name}", entry.span))
    sub = make_subscription(ev.subscription, customer_id, immutables.Map(customer),
                            sf.name, plan.name, "active", day, 0, 0, list_amount,
                            contract.name if contract else None, started=day)

    trial_days, trial_granted = 0, False
    if plan.trial is not None:
        denied = eligibility(tx, plan.trial.eligibility, sub, 1, trace)
        if denied:
            reasons.extend(f"{plan.trial.eligibility}: {r}" for r, _ in denied)
            rule = denied[0][1]
            tx.emit("trial.blocked", sub, rule=plan.trial.eligibility, source=rule.span,
                    reasons=tuple(r for r, _ in denied))
        else:
            trial_granted = True
            anchor = rt.add(day, plan.trial.length)
            trial_days = (anchor - day).days
            sub = evolve(sub, status="trialing", anchor=anchor, trial_end=anchor)
            tx.emit("trial.granted", sub, rule=f"plan {plan.name} trial",
                    source=plan.trial.span, date=anchor)
            trace.append(tx.engine.trace(f"plan {plan.name} trial", plan.trial.span))

    if contract is not None:
        if ev.code:
            reasons.append(f"promotions do not apply to contract {contract.name}")
        discounts = NO_DISCOUNTS
    elif trial_granted:
        # a code is redeemed at checkout and discounts the first charged cycles;
        # automatic promotions wait for the first charge
        sub, _ = tx.apply_promotions(sub, list_amount, 1, day, ev.code, reasons, trace,
                                     automatic=False)
        discounts = NO_DISCOUNTS
    else:
        sub, discounts = tx.apply_promotions(sub, list_amount, 1, day, ev.code, reasons,
                                             trace)
    if trial_granted:
        quote = tx.quote(sub, ZERO, NO_DISCOUNTS, ZERO, 1, trace)
    else:
        quote = tx.quote(sub, list_amount, discounts, ZERO, 1, trace)
    charge_id = None if trial_granted else payments.charge_id(tx, sub)
    tx.emit("subscription.started", sub, rule=f"plan {plan.name}", source=plan.span,
            **({} if trial_granted else dict(emission.charged(quote, charge_id),
                                             recurring=quote.recurring)))
    tx.emit("entitlement.granted", sub, rule=f"plan {plan.name}", source=plan.span,
            entitlements=plan.entitlements)
    due = rt.add(day, sf.terms) if sf.terms else None
    if trial_granted:
        sub = tx.put(evolve(sub, entitlements=plan.entitlements))
        tx.decision(sub, "charge", quote, trial_days=trial_days, reasons=tuple(reasons))
        return
    start, end = tx.period(sub, 0)
    sub = payments.open_charge(tx, sub, quote, "checkout", start, end, trace[0].rule,
                               trace[0].source, index=1, cycle=1,
                               entitlements=plan.entitlements)
    tx.put(sub)
    tx.decision(sub, "charge", quote, due=due, reasons=tuple(reasons), charge=charge_id)


def customer_attributes(tx: Tx, given: Mapping[str, Any]) -> dict[str, Any]:
    """Validate customer attributes against the schema; apply defaults."""
    result: dict[str, Any] = {}
    for key in given:  # input order: the first unknown attribute is the one reported
        if key == "id":
            continue
        attr = tx.engine.attributes.get(key)
        if attr is None:
            raise fail("unknown_field", f"unknown customer attribute '{key}'"
                       f"{did_you_mean(key, tx.engine.attributes)}")
        # the schema's name, not the event's copy of it: every subscription shares it
        result[attr.name] = _attribute_value(attr, given[key])
    for name, attr in tx.engine.attributes.items():
        if name not in result:
            result[name] = attr.default
    return result


def eligibility(tx: Tx, name: str | None, sub: Subscription, cycle: int,
                trace: list[Trace]) -> list[tuple[str, m.Rule]]:
    """Every deny reason that holds (all are collected, not only the first)."""
    if name is None:
        return []
    ctx = tx.ctx(sub, cycle)
    denied = []
    for deny, test in tx.rules.eligibility[name]:
        if test(ctx):
            denied.append((deny.reason, deny.rule))
            trace.append(tx.engine.trace(name, deny.rule.span))
    return denied


def _attribute_value(attr: m.Attribute, value: Any) -> Any:
    kind = attr.type
    if value is None:
        return attr.default
    # whole numbers are bounded at the edge (events.check_int); decimals and dates here,
    # by the same limits, once their declared type is known
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "string" and isinstance(value, str):
        # a country, a segment: the same few values, shared (a subclass cannot be)
        return sys.intern(value) if type(value) is str else value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "decimal" and isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            pass
        else:
            if number.is_finite():  # NaN, sNaN and infinities are refused below
                return check_decimal(number, f"customer attribute '{attr.name}'")
    if kind == "date" and isinstance(value, str):
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            pass
        else:
            return check_date(day, f"customer attribute '{attr.name}'")
    raise fail("bad_field", f"customer attribute '{attr.name}' must be {_article(kind)}, "
               f"found {json_text(value)}")


def _article(kind: str) -> str:
    return {"int": "a whole number", "decimal": "a decimal string", "string": "a string",
            "bool": "true or false", "date": "a date (YYYY-MM-DD)"}[kind]
