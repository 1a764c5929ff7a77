"""Pure helpers that compiled rules and the engine call: money, rounding, dates.

Everything here is deterministic: an explicit :class:`decimal.Context` (never the
thread's), time only from arguments, no iteration over unordered containers.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import decimal
import functools
import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

from babel.numbers import get_currency_precision
from dateutil.relativedelta import relativedelta

from .nodes import Duration, Money

__all__ = ["EvaluationError", "Money", "quantize", "money_str", "decimal_str", "add_periods",
           "delta", "split_inclusive", "prorate", "CONTEXT", "in_context"]

CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN, Emax=999999,
                          Emin=-999999, traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                               decimal.Overflow])
"""The one decimal context of revrules: every Decimal operation of the library runs under
it (through :func:`in_context` at the public entry points, or its methods), never under
the caller's."""

_F = TypeVar("_F", bound=Callable[..., Any])


def in_context(fn: _F) -> _F:
    """Decorate a public entry point so that its Decimal work runs under :data:`CONTEXT`.

    Whatever the caller's decimal context (precision, rounding, traps, ``capitals``),
    results are the same; afterwards the caller has the same context object, with its
    settings and flags unchanged (``decimal.localcontext`` works on a copy).
    """
    if inspect.isgeneratorfunction(fn):  # the context would leak into the caller's frames
        raise TypeError(f"in_context cannot wrap the generator function {fn.__qualname__}")

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        if decimal.getcontext() is _OURS.get():  # called from an entry point: already in
            return fn(*args, **kwargs)
        with decimal.localcontext(CONTEXT) as ours:
            token = _OURS.set(ours)
            try:
                return fn(*args, **kwargs)
            finally:
                _OURS.reset(token)
    return cast(_F, run)


#: The copy of :data:`CONTEXT` the outermost :func:`in_context` call made current.
_OURS: contextvars.ContextVar[decimal.Context | None] = contextvars.ContextVar(
    "revrules_decimal_context", default=None)


ROUNDING_MODES = {
    "half_even": decimal.ROUND_HALF_EVEN, "half_up": decimal.ROUND_HALF_UP,
    "half_down": decimal.ROUND_HALF_DOWN, "down": decimal.ROUND_DOWN, "up": decimal.ROUND_UP,
    "ceiling": decimal.ROUND_CEILING, "floor": decimal.ROUND_FLOOR,
}
ZERO = Decimal(0)
ONE = Decimal(1)


class EvaluationError(Exception):
    """A rule could not be evaluated for this event (currencies differ, division by 0)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@functools.cache
def exponent(currency: str) -> Decimal:
    """The quantum of a currency's minor unit: EUR → 0.01, JPY → 1, KWD → 0.001."""
    return Decimal(1).scaleb(-int(get_currency_precision(currency)), CONTEXT)


def quantize(amount: Decimal, currency: str, rounding: str = decimal.ROUND_HALF_EVEN) -> Decimal:
    """Round once to the currency's minor units."""
    return amount.quantize(exponent(currency), rounding=rounding, context=CONTEXT)


def money_str(amount: Decimal, currency: str) -> str:
    """The wire form: exactly the currency's minor units (``"12.99"``, ``"1200"``).

    A zero never carries a sign: ``-0.004`` EUR and ``-0`` both print ``"0.00"``.
    """
    return decimal_str(amount.quantize(exponent(currency), context=CONTEXT))


def shared(amount: Decimal) -> Decimal:
    """``amount``, or an earlier Decimal with exactly its text (value, sign and
    exponent): what the state keeps for a long time (each paid charge's figures) holds
    one object per distinct amount, not one per charge. The table is bounded (cleared
    when full), so nothing depends on what came before."""
    text = str(amount)
    found = _SHARED.get(text)
    if found is None:
        if len(_SHARED) >= 65_536:
            _SHARED.clear()
        found = _SHARED[text] = amount
    return found


_SHARED: dict[str, Decimal] = {}


def decimal_str(amount: Decimal) -> str:
    """``str(amount)``, except that a negative zero prints without its sign."""
    if not amount and amount.is_signed():
        amount = amount.copy_abs()
    return str(amount)


def split_inclusive(amount: Decimal, rate: Decimal, currency: str, rounding: str,
                    combined: Decimal | None = None) -> Decimal:
    """The tax inside a tax-inclusive amount: round(amount × r / (1 + r)).

    With several tax tables, ``combined`` is the sum of their rates: each table's
    share is round(amount × r / (1 + Σr)).
    """
    if not rate:
        return quantize(ZERO, currency)
    whole = CONTEXT.add(ONE, rate if combined is None else combined)
    return quantize(CONTEXT.divide(CONTEXT.multiply(amount, rate), whole), currency, rounding)


def percent_of(amount: Decimal, fraction: Decimal, currency: str, rounding: str) -> Decimal:
    return quantize(CONTEXT.multiply(amount, fraction), currency, rounding)


def prorate(amount: Decimal, part: int | Decimal, whole: int | Decimal, currency: str,
            rounding: str) -> Decimal:
    """amount × part / whole, rounded once."""
    if whole <= 0:
        return quantize(ZERO, currency)
    return quantize(CONTEXT.divide(CONTEXT.multiply(amount, Decimal(part)), Decimal(whole)),
                    currency, rounding)


@functools.cache
def delta(duration: Duration, times: int = 1) -> relativedelta:
    count = duration.count * times
    unit = duration.unit
    if unit == "day":
        return relativedelta(days=count)
    if unit == "week":
        return relativedelta(weeks=count)
    if unit == "month":
        return relativedelta(months=count)
    return relativedelta(years=count)


@functools.lru_cache(maxsize=65536)
def add_periods(anchor: dt.date, every: Duration, n: int) -> dt.date:
    """The start of period ``n``: anchor + n × every, never chained (Jan 31 → Feb 28 → Mar 31)."""
    try:
        result: dt.date = anchor + delta(every, n)
    except (OverflowError, ValueError):
        raise _past_calendar(anchor, every, n) from None
    return result


@functools.lru_cache(maxsize=65536)
def add(day: dt.date, duration: Duration) -> dt.date:
    try:
        result: dt.date = day + delta(duration)
    except (OverflowError, ValueError):
        raise _past_calendar(day, duration, 1) from None
    return result


def _past_calendar(day: dt.date, duration: Duration, times: int) -> EvaluationError:
    count = f"{times} × " if times != 1 else ""
    return EvaluationError("out_of_range", f"{day} + {count}{duration.count} "
                           f"{duration.unit}(s) is past the end of the calendar (year 9999)")


@functools.cache
def zone(name: str) -> dt.tzinfo:
    return dt.timezone.utc if name == "UTC" else ZoneInfo(name)


def local_date(at: dt.datetime, tz: str) -> dt.date:
    """The calendar date of an instant in the ruleset's timezone."""
    return at.astimezone(zone(tz)).date()


def start_of(day: dt.date, tz: str) -> dt.datetime:
    """Midnight of a date in the ruleset's timezone, as a UTC datetime."""
    try:
        return dt.datetime.combine(day, dt.time(), zone(tz)).astimezone(dt.timezone.utc)
    except (OverflowError, ValueError):
        raise EvaluationError("out_of_range", f"midnight of {day} in {tz} is outside the "
                              "calendar in UTC") from None


# -- helpers for generated rule code ---------------------------------------------------


def as_datetime(day: dt.date | None, tz: str) -> dt.datetime | None:
    """A date attribute compared with a datetime: midnight in the ruleset's timezone."""
    return None if day is None else start_of(day, tz)


def _same(a: Money, b: Money) -> None:
    if a.currency != b.currency:
        raise EvaluationError("currency_mismatch",
                              f"cannot combine {a.currency} and {b.currency} amounts")


def m_lt(a: Money, b: Money) -> bool:
    _same(a, b)
    return a.amount < b.amount


def m_le(a: Money, b: Money) -> bool:
    _same(a, b)
    return a.amount <= b.amount


def m_gt(a: Money, b: Money) -> bool:
    _same(a, b)
    return a.amount > b.amount


def m_ge(a: Money, b: Money) -> bool:
    _same(a, b)
    return a.amount >= b.amount


def m_eq(a: Money, b: Money) -> bool:
    _same(a, b)
    return a.amount == b.amount


def m_ne(a: Money, b: Money) -> bool:
    return not m_eq(a, b)


def m_add(a: Money, b: Money) -> Money:
    _same(a, b)
    return Money(a.currency, CONTEXT.add(a.amount, b.amount))


def m_sub(a: Money, b: Money) -> Money:
    _same(a, b)
    return Money(a.currency, CONTEXT.subtract(a.amount, b.amount))


def m_mul(a: Any, b: Any) -> Money:
    money, factor = (a, b) if isinstance(a, Money) else (b, a)
    return Money(money.currency, CONTEXT.multiply(money.amount, Decimal(factor)))


def m_div(a: Money, b: Any) -> Any:
    if isinstance(b, Money):
        _same(a, b)
        return div(a.amount, b.amount)
    return Money(a.currency, div(a.amount, Decimal(b)))


def div(a: Any, b: Any) -> Decimal:
    if not b:
        raise EvaluationError("division_by_zero", "division by zero in a rule")
    return CONTEXT.divide(Decimal(a), Decimal(b))


def opt(op: str, a: Any, b: Any) -> bool:
    """An ordering comparison where a side may be an absent attribute: absent is never ordered."""
    if a is None or b is None:
        return False
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def f_min(*args: Any) -> Any:
    if isinstance(args[0], Money):
        for a in args[1:]:
            _same(args[0], a)
        return min(args, key=lambda m: m.amount)
    return min(args)


def f_max(*args: Any) -> Any:
    if isinstance(args[0], Money):
        for a in args[1:]:
            _same(args[0], a)
        return max(args, key=lambda m: m.amount)
    return max(args)


def t_add(a: Any, b: Any) -> Any:
    """date or datetime + duration (a relativedelta); past year 9999 is ``out_of_range``."""
    try:
        return a + b
    except (OverflowError, ValueError):
        raise EvaluationError("out_of_range", f"{a} + a duration is past the end of the "
                              "calendar (year 9999)") from None


def t_sub(a: Any, b: Any) -> Any:
    """date or datetime − duration; before year 1 is ``out_of_range``."""
    try:
        return a - b
    except (OverflowError, ValueError):
        raise EvaluationError("out_of_range", f"{a} − a duration is before the calendar "
                              "(year 1)") from None


def f_round(value: Any, places: int | None = None) -> Any:
    try:
        if isinstance(value, Money):
            quantum = exponent(value.currency) if places is None else Decimal(1).scaleb(-places)
            return Money(value.currency, value.amount.quantize(quantum, context=CONTEXT))
        return Decimal(value).quantize(Decimal(1).scaleb(-(places or 0)), context=CONTEXT)
    except decimal.InvalidOperation:
        raise EvaluationError("out_of_range", f"round() of {value} needs more than "
                              f"{CONTEXT.prec} digits") from None


def f_days_between(a: Any, b: Any, tz: str = "UTC") -> int:
    """Calendar days from a to b; a datetime counts as its date in the ruleset's timezone."""
    a_day = local_date(a, tz) if isinstance(a, dt.datetime) else a
    b_day = local_date(b, tz) if isinstance(b, dt.datetime) else b
    return int((b_day - a_day).days)
