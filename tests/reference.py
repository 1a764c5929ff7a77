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
