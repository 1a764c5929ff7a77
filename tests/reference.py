"""A reference interpreter for rule conditions, used only by the differential tests.

Deliberately simple and slow: it walks the checked model's expression trees
directly, reading docs/language.md's rules, and shares nothing with
revrules.compiler or revrules.runtime (its own decimal context, its own calendar
arithmetic, its own money). The compiled code and this evaluator must agree on every
condition, byte for byte, as canonical strings ("true", "false", "error:CODE").
"""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from dateutil.relativedelta import relativedelta

from revrules import model as m
from revrules import nodes as n

# docs/language.md: "Arithmetic uses 34 significant digits with no intermediate rounding"
CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN, Emax=999999,
                          Emin=-999999, traps=[decimal.InvalidOperation,
                                               decimal.DivisionByZero, decimal.Overflow])


class Failure(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


class Cash:
    """Money of the reference: a currency and an amount."""

    def __init__(self, currency: str, amount: Decimal):
        self.currency, self.amount = currency, amount


class Env:
    """What a rule reads (docs/language.md, 'What a rule can read')."""

    def __init__(self, model: m.Model, customer: dict[str, Any], customer_id: str,
                 storefront: m.Storefront, plan: m.Plan, cycle: int, status: str,
                 at: dt.datetime, event_type: str, total: tuple[str, Decimal] | None,
                 reason: str | None, attempt: int, psp: str | None):
        self.model, self.customer, self.customer_id = model, customer, customer_id
        self.storefront, self.plan, self.cycle, self.status = storefront, plan, cycle, status
        self.at, self.event_type, self.reason, self.attempt, self.psp = (
            at, event_type, reason, attempt, psp)
        self.total = None if total is None else Cash(*total)


def run(expr: n.Expr, env: Env) -> str:
    """The canonical result of a condition: 'true', 'false' or 'error:CODE'."""
    try:
        with decimal.localcontext(CONTEXT):
            return "true" if truthy(ev(expr, env)) else "false"
    except Failure as exc:
        return f"error:{exc.code}"


def truthy(value: Any) -> bool:
    # an absent bool attribute is false in logic
    return value is True


def midnight(day: dt.date, env: Env) -> dt.datetime:
    zone = dt.timezone.utc if env.model.timezone == "UTC" else ZoneInfo(env.model.timezone)
    return dt.datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(dt.timezone.utc)


def as_instant(value: Any, env: Env) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return midnight(value, env)
    return value


def ev(e: n.Expr, env: Env) -> Any:
    if isinstance(e, n.Literal):
        if e.kind == "money":
            return Cash(e.value.currency, e.value.amount)  # type: ignore[union-attr]
        if e.kind == "percent":
            return CONTEXT.divide(e.value, Decimal(100))  # type: ignore[arg-type]
        return e.value
    if isinstance(e, n.Name):
        if e.name == "total":
            return env.total
        if e.name == "storefront" and env.model.types.get(id(e), m.Type("storefront")).kind == "storefront":
            return env.storefront.name
        if e.name == "plan" and env.model.types.get(id(e), m.Type("plan")).kind == "plan":
            return env.plan.name
        return e.name
    if isinstance(e, n.Field):
        return field(e, env)
    if isinstance(e, n.SetLit):
        return [ev(i, env) for i in e.items]
    if isinstance(e, n.Unary):
        value = ev(e.operand, env)
        if e.op == "not":
            return not truthy(value)
        if isinstance(value, Cash):
            return Cash(value.currency, CONTEXT.minus(value.amount))
        return -value
    if isinstance(e, n.Call):
        return call(e.func, [ev(a, env) for a in e.args], env)
    assert isinstance(e, n.Binary)
    if e.op == "and":
        return truthy(ev(e.left, env)) and truthy(ev(e.right, env))
    if e.op == "or":
        return truthy(ev(e.left, env)) or truthy(ev(e.right, env))
    left, right = ev(e.left, env), ev(e.right, env)
    return binary(e.op, left, right, env)


def field(e: n.Field, env: Env) -> Any:
    if isinstance(e.obj, n.Name):
        root = e.obj.name
        if root == "customer":
            return env.customer_id if e.name == "id" else env.customer.get(e.name)
        if root == "subscription":
            return {"cycle": env.cycle, "status": env.status, "plan": env.plan.name,
                    "storefront": env.storefront.name}[e.name]
        if root == "event":
            return env.at if e.name == "at" else env.event_type
        if root == "payment":
            return {"reason": env.reason, "attempt": env.attempt, "psp": env.psp}[e.name]
        if root == "storefront":
            return getattr(env.storefront, e.name)
        if root == "plan":
            return env.plan.name
    target = ev(e.obj, env)
    if target == env.storefront.name and e.name in ("name", "channel", "region", "currency"):
        return getattr(env.storefront, e.name)
    for sf in env.model.storefronts:
        if sf.name == target:
            return getattr(sf, e.name)
    return target  # plan.name


def same(a: Cash, b: Any) -> None:
    if not isinstance(b, Cash) or a.currency != b.currency:
        raise Failure("currency_mismatch")


def binary(op: str, left: Any, right: Any, env: Env) -> Any:
    if op in ("in", "not in"):
        found = any(equal(left, item) for item in right)
        return found if op == "in" else not found
    if op in ("==", "!=", "<", "<=", ">", ">="):
        if isinstance(left, Cash) or isinstance(right, Cash):
            same(left, right)
            left, right = left.amount, right.amount
        elif {type(left), type(right)} == {dt.date, dt.datetime}:
            left, right = as_instant(left, env), as_instant(right, env)
        if op == "==":
            return equal(left, right)
        if op == "!=":
            return not equal(left, right)
        if left is None or right is None:
            return False  # an absent attribute is never ordered
        return {"<": left < right, "<=": left <= right, ">": left > right,
                ">=": left >= right}[op]
    if isinstance(right, n.Duration):
        amount = right.count if op == "+" else -right.count
        step = relativedelta(**{right.unit + "s": amount})
        try:
            return left + step
        except (OverflowError, ValueError):
            raise Failure("out_of_range") from None
    if isinstance(left, Cash) or isinstance(right, Cash):
        if op in ("+", "-"):
            same(left, right)
            return Cash(left.currency, (CONTEXT.add if op == "+" else CONTEXT.subtract)(
                left.amount, right.amount))
        if op == "*":
            cash, factor = (left, right) if isinstance(left, Cash) else (right, left)
            return Cash(cash.currency, CONTEXT.multiply(cash.amount, Decimal(factor)))
        if isinstance(right, Cash):
            same(left, right)
            return divide(left.amount, right.amount)
        return Cash(left.currency, divide(left.amount, right))
    if op == "/":
        return divide(left, right)
    if isinstance(left, int) and isinstance(right, int):
        return {"+": left + right, "-": left - right, "*": left * right}[op]
    fn = {"+": CONTEXT.add, "-": CONTEXT.subtract, "*": CONTEXT.multiply}[op]
    return fn(Decimal(left), Decimal(right))


def equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Cash) or isinstance(b, Cash):
        return isinstance(a, Cash) and isinstance(b, Cash) and a.currency == b.currency \
            and a.amount == b.amount
    if isinstance(a, dt.datetime) != isinstance(b, dt.datetime):
        return False
    return bool(a == b)


def divide(a: Any, b: Any) -> Decimal:
    if b == 0:
        raise Failure("division_by_zero")
    return CONTEXT.divide(Decimal(a), Decimal(b))


def call(func: str, args: list[Any], env: Env) -> Any:
    if func in ("min", "max"):
        if isinstance(args[0], Cash):
            for a in args[1:]:
                same(args[0], a)
        key = (lambda v: v.amount) if isinstance(args[0], Cash) else (lambda v: v)
        best = args[0]
        for a in args[1:]:
            if (key(a) < key(best)) if func == "min" else (key(a) > key(best)):
                best = a
        return best
    if func == "round":
        value = args[0]
        if isinstance(value, Cash):
            places = int(get_currency_precision(value.currency)) if len(args) == 1 else args[1]
            return Cash(value.currency, quantize(value.amount, places))
        return quantize(Decimal(value), args[1] if len(args) == 2 else 0)
    # docs/language.md: calendar days, dates in the ruleset's timezone
    zone = dt.timezone.utc if env.model.timezone == "UTC" else ZoneInfo(env.model.timezone)
    a, b = (v.astimezone(zone).date() if isinstance(v, dt.datetime) else v for v in args)
    return (b - a).days


def quantize(value: Decimal, places: int) -> Decimal:
    try:
        return value.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_HALF_EVEN,
                              context=CONTEXT)
    except decimal.InvalidOperation:
        raise Failure("out_of_range") from None


def conditions(model: m.Model) -> list[m.Rule]:
    """Every rule with a condition, in source order of the blocks."""
    rules: list[m.Rule] = []
    for e in model.eligibilities:
        rules.extend(d.rule for d in e.denies)
    rules.extend(p.condition for p in model.promotions if p.condition is not None)
    for t in model.taxes:
        rules.extend(r.rule for r in t.rates)
    rules.extend(r.rule for r in model.route)
    for d in model.dunning:
        rules.extend(r for r in (d.applies, d.no_retry) if r is not None)
    if model.lifecycle.pause_rule is not None:
        rules.append(model.lifecycle.pause_rule)
    return [r for r in rules if r.when is not None]


# -- pricing -------------------------------------------------------------------------
# The first charge of a checkout on an empty state, from docs/language.md and
# LANGUAGE.md: the list price in force on the local date, a trial if its eligibility
# denies nothing, promotions (the best non-stackable one plus every stackable one, never
# below zero), one rate per tax table (the first that matches), the route.

ROUNDING = {"half_even": decimal.ROUND_HALF_EVEN, "half_up": decimal.ROUND_HALF_UP,
            "half_down": decimal.ROUND_HALF_DOWN, "down": decimal.ROUND_DOWN,
            "up": decimal.ROUND_UP, "ceiling": decimal.ROUND_CEILING,
            "floor": decimal.ROUND_FLOOR}


def to_minor(amount: Decimal, currency: str, mode: str) -> Decimal:
    quantum = Decimal(1).scaleb(-int(get_currency_precision(currency)))
    return amount.quantize(quantum, rounding=ROUNDING[mode], context=CONTEXT)


def checkout(model: m.Model, sf: m.Storefront, plan: m.Plan, customer: dict[str, Any],
             customer_id: str, at: dt.datetime, code: str | None) -> str:
    """The canonical first decision of a checkout: figures, discounts and PSP, or an error."""
    try:
        with decimal.localcontext(CONTEXT):
            return _checkout(model, sf, plan, customer, customer_id, at, code)
    except Failure as exc:
        return f"error:{exc.code}"


def _checkout(model: m.Model, sf: m.Storefront, plan: m.Plan, customer: dict[str, Any],
              customer_id: str, at: dt.datetime, code: str | None) -> str:
    zone = dt.timezone.utc if model.timezone == "UTC" else ZoneInfo(model.timezone)
    day = at.astimezone(zone).date()
    mode, currency = model.rounding, sf.currency
    deal = [c for c in model.contracts if c.customer == customer_id and c.plan == plan.name
            and c.valid_from <= day <= c.valid_to and c.currency == currency]
    if deal:
        list_amount = deal[0].amount
    else:
        entries = [p for p in plan.prices if p.storefront == sf.name
                   and (p.effective is None or p.effective <= day)]
        if sf.name in plan.not_sold or not entries:
            raise Failure("not_sold")
        latest = max(entries, key=lambda p: p.effective or dt.date.min)
        list_amount = latest.amount

    def env(status: str, total: Decimal | None = None) -> Env:
        return Env(model, customer, customer_id, sf, plan, 1, status, at, "checkout",
                   None if total is None else (currency, total), None, 0, None)

    def holds(rule: m.Rule | None, e: Env) -> bool:
        if rule is None or rule.when is None:
            return True
        result = run(rule.when, e)
        if result.startswith("error:"):
            raise Failure(result[6:])
        return result == "true"

    status, trial_days = "active", 0
    if plan.trial is not None:
        denied = False
        for elig in model.eligibilities:
            if elig.name == plan.trial.eligibility:
                for deny in elig.denies:
                    denied = holds(deny.rule, env("active")) or denied
        if not denied:
            status = "trialing"
            unit = plan.trial.length.unit + "s"
            end = day + relativedelta(**{unit: plan.trial.length.count})
            trial_days = (end - day).days

    def usable(p: m.Promotion) -> bool:
        return ((p.plans is None or plan.name in p.plans)
                and (p.storefronts is None or sf.name in p.storefronts)
                and (p.currency is None or p.currency == currency)
                and (p.valid_from is None or p.valid_from <= day)
                and (p.valid_to is None or day <= p.valid_to)
                and holds(p.condition, env(status))
                and (p.limit_total is None or p.limit_total >= 1)
                and (p.limit_per_customer is None or p.limit_per_customer >= 1))

    candidates: list[m.Promotion] = []
    if deal:
        code = None  # promotions do not apply to a contract
        status_for_promotions = "contract"
    else:
        status_for_promotions = status
    if code is not None:
        candidates += [p for p in model.promotions
                       if p.code is not None and p.code.upper() == code.upper() and usable(p)]
    if status_for_promotions == "active":
        candidates += [p for p in model.promotions if p.automatic and usable(p)]
    else:
        candidates = []  # a code during a trial discounts the first charged cycle, not this

    def worth(p: m.Promotion) -> Decimal:
        if p.kind == "percent":
            return to_minor(CONTEXT.multiply(list_amount, p.value), currency, mode)
        return min(p.value, list_amount)

    single = [p for p in candidates if not p.stackable]
    chosen = [p for p in candidates if p.stackable]
    if single:
        best = single[0]
        for p in single[1:]:
            if worth(p) > worth(best) or (worth(p) == worth(best) and p.order < best.order):
                best = p
        chosen.append(best)
    chosen.sort(key=lambda p: p.order)
    discounts, left = [], list_amount
    for p in chosen:
        amount = min(worth(p), left)
        left -= amount
        discounts.append(f"{p.name}={to_minor(amount, currency, mode)}")
    base = to_minor(list_amount if status == "active" else Decimal(0), currency, mode)
    amount = max(base - to_minor(list_amount - left, currency, mode), Decimal(0)) \
        if status == "active" else base
    rates = []
    for table in model.taxes:
        for rate in table.rates:
            if holds(rate.rule, env(status)):
                rates.append(rate.rate)
                break
    if sf.tax_inclusive:
        whole = CONTEXT.add(Decimal(1), sum(rates, Decimal(0)))
        tax = sum((to_minor(CONTEXT.divide(CONTEXT.multiply(amount, r), whole), currency, mode)
                   for r in rates if r and amount), Decimal(0))
        net, total = amount - tax, amount
    else:
        tax = sum((to_minor(CONTEXT.multiply(amount, r), currency, mode) for r in rates),
                  Decimal(0))
        net, total = amount, amount + tax
    psp = None
    for route in model.route:
        if route.psp in sf.psps and holds(route.rule, env(status, total)):
            psp = route.psp
            break
    if psp is None and sf.psps:
        psp = sf.psps[0]
    figures = [to_minor(x, currency, mode) for x in (base, tax, net, total)]
    return (f"list={figures[0]} discounts={','.join(discounts) if status == 'active' else ''} "
            f"tax={figures[1]} net={figures[2]} total={figures[3]} psp={psp} "
            f"trial_days={trial_days}")
