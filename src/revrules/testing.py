"""Hypothesis strategies for testing rulesets and the engine.

This module imports `hypothesis <https://hypothesis.readthedocs.io>`_, which is not a
dependency of revrules itself: install the ``test`` extra (``pip install
revrules[test]``) to use it.

- :func:`rulesets` draws the text of a typed ruleset that passes ``revrules check``:
  storefronts, products, plans with prices, schedules, trials and changes,
  eligibility, promotions, tax tables, a route, dunning and a lifecycle block, with
  conditions that are random typed expressions over the declared customer attributes
  and the fields each kind of rule may read.
- :func:`customers` draws the customer object of a checkout that fits a ruleset's
  schema (attributes left out at random when they are optional).
- :func:`events` draws one wire event for a ruleset (any type, any subscription of a
  small pool): what a fuzz test throws at :meth:`revrules.Engine.apply`.
- :func:`event_sequences` draws a list of events in time order for a ruleset: a few
  checkouts, then payments, failures, renewals on their dates, plan changes,
  pauses, cancels, refunds and ticks.

>>> import revrules
>>> from hypothesis import given, settings
>>> from revrules.testing import rulesets
>>> @settings(max_examples=5, database=None)
... @given(rulesets())
... def test_loads(text):
...     assert revrules.load_text(text).name == "generated"
>>> test_loads()
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

from . import model as m
from .events import MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS
from .ruleset import Ruleset

__all__ = ["rulesets", "customers", "events", "event_sequences", "expressions"]

Draw = st.DrawFn

_CURRENCIES = ("EUR", "USD", "JPY", "KWD")
_AMOUNTS = {"EUR": ("0.99", "6.99", "12.99", "100.00"), "USD": ("1.00", "7.99", "19.99"),
            "JPY": ("100", "800", "1200"), "KWD": ("0.500", "2.750", "12.125")}
_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")
_ROUNDINGS = ("half_even", "half_up", "half_down", "down", "up", "ceiling", "floor")
_PSPS = ("stripe", "adyen", "carrier")
_ATTR_TYPES = ("int", "decimal", "string", "bool", "date")
_STRINGS = ("DE", "FR", "US", "JP", "consumer", "business", "")
_REASONS = ("card_declined", "insufficient_funds", "expired_card")
_DURATIONS = ("1 day", "3 days", "14 days", "2 weeks", "1 month", "3 months", "1 year")
_LONG_DURATIONS = ("36525 days", "5218 weeks", "1200 months", "100 years")
_BIG_INTS = (10**17, 999999999999999999, 10**30)
_BASE = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


class _Schema:
    """What the expression generator may read in one ruleset."""

    def __init__(self, attrs: list[tuple[str, str, bool]], currencies: list[str],
                 storefronts: list[str], plans: list[str], psps: list[str]):
        self.attrs = attrs  # (name, type, has default)
        self.currencies = currencies
        self.storefronts = storefronts
        self.plans = plans
        self.psps = psps
        self.regions: list[str] = ["ALL"]


def _date(draw: Draw) -> str:
    day = draw(st.dates(dt.date(2025, 1, 1), dt.date(2029, 12, 31)))
    return day.isoformat()


def _datetime(draw: Draw) -> str:
    moment = draw(st.datetimes(dt.datetime(2025, 1, 1), dt.datetime(2029, 12, 31)))
    offset = draw(st.sampled_from(("Z", "+01:00", "-05:00", "+09:00")))
    return moment.replace(microsecond=0).isoformat() + offset


def _attr(draw: Draw, schema: _Schema, kind: str, needs_value: bool) -> str | None:
    names = [a for a, t, default in schema.attrs if t == kind and (default or not needs_value)]
    return f"customer.{draw(st.sampled_from(names))}" if names else None


def _expr(draw: Draw, schema: _Schema, kind: str, context: str, depth: int,
          needs_value: bool = False) -> str:
    """A source expression of type ``kind`` that the checker accepts in ``context``."""
    leaf = depth <= 0 or draw(st.integers(0, 2)) == 0
    if kind == "bool":
        if leaf:
            options = ["true", "false"]
            flag = _attr(draw, schema, "bool", needs_value=False)
            if flag:
                options.append(flag)
            return draw(st.sampled_from(options))
        form = draw(st.sampled_from(("and", "or", "not", "cmp", "cmp", "cmp", "in", "eq")))
        if form in ("and", "or"):
            return (f"({_expr(draw, schema, 'bool', context, depth - 1)} {form} "
                    f"{_expr(draw, schema, 'bool', context, depth - 1)})")
        if form == "not":
            return f"not {_expr(draw, schema, 'bool', context, depth - 1)}"
        if form == "in":
            if draw(st.booleans()):
                left = _expr(draw, schema, "string", context, depth - 1)
                items = draw(st.lists(st.sampled_from(_STRINGS), min_size=1, max_size=3))
                elems = ", ".join(f'"{s}"' for s in items)
            else:
                left = _expr(draw, schema, "int", context, depth - 1)
                elems = ", ".join(str(i) for i in draw(st.lists(st.integers(0, 30), min_size=1,
                                                                max_size=3)))
                if draw(st.booleans()):  # a set of expressions, not only of literals
                    elems += ", " + _expr(draw, schema, "int", context, depth - 1)
            negate = draw(st.sampled_from(("in", "not in")))
            return f"{left} {negate} {{{elems}}}"
        if form == "eq":
            what = draw(st.sampled_from(("string", "string", "channel", "storefront", "plan",
                                         "psp", "region", "same")))
            op = draw(st.sampled_from(("==", "!=")))
            if what == "string":
                return (f"{_expr(draw, schema, 'string', context, depth - 1)} {op} "
                        f"\"{draw(st.sampled_from(_STRINGS))}\"")
            if what == "same":  # two values that may both be absent
                kind2 = draw(st.sampled_from(("string", "int", "date")))
                return (f"{_expr(draw, schema, kind2, context, 0)} {op} "
                        f"{_expr(draw, schema, kind2, context, 0)}")
            if what == "region":
                return f"storefront.region {op} {draw(st.sampled_from(schema.regions))}"
            if what == "channel":
                return f"storefront.channel {op} {draw(st.sampled_from(m.CHANNELS))}"
            if what == "storefront":
                return f"storefront {op} {draw(st.sampled_from(schema.storefronts))}"
            if what == "psp" and context == "dunning" and schema.psps:
                return f"payment.psp {op} {draw(st.sampled_from(schema.psps))}"
            return f"subscription.plan {op} {draw(st.sampled_from(schema.plans))}"
        ordered = ["int", "decimal", "date", "datetime"]
        if context == "route":
            ordered.append("money")
        what = draw(st.sampled_from(ordered))
        op = draw(st.sampled_from(("<", "<=", ">", ">=", "==", "!=")))
        other = "decimal" if what == "int" and draw(st.booleans()) else what
        if what == "date" and draw(st.booleans()):
            other = "datetime"
        return (f"{_expr(draw, schema, what, context, depth - 1)} {op} "
                f"{_expr(draw, schema, other, context, depth - 1)}")
    if kind == "int":
        if leaf:
            options = [str(draw(st.integers(0, 40))), "subscription.cycle",
                       str(draw(st.sampled_from(_BIG_INTS)))]
            if context == "dunning":
                options.append("payment.attempt")
            attr = _attr(draw, schema, "int", needs_value)
            if attr:
                options += [attr, attr]
            return draw(st.sampled_from(options))
        form = draw(st.sampled_from(("+", "-", "*", "neg", "min", "max", "days")))
        if form == "neg":
            return f"-{_expr(draw, schema, 'int', context, depth - 1, True)}"
        if form in ("min", "max"):
            return (f"{form}({_expr(draw, schema, 'int', context, depth - 1, True)}, "
                    f"{_expr(draw, schema, 'int', context, depth - 1, True)})")
        if form == "days":
            both = draw(st.sampled_from(("date", "datetime")))
            return (f"days_between({_expr(draw, schema, both, context, depth - 1, True)}, "
                    f"{_expr(draw, schema, both, context, depth - 1, True)})")
        return (f"({_expr(draw, schema, 'int', context, depth - 1, True)} {form} "
                f"{_expr(draw, schema, 'int', context, depth - 1, True)})")
    if kind == "decimal":
        if leaf:
            options = [draw(st.sampled_from(("0.5", "1.25", "2.0", "19.99", "0.001",
                                             "99999999999999999.999999999999999999")))]
            attr = _attr(draw, schema, "decimal", needs_value)
            if attr:
                options += [attr, attr]
            return draw(st.sampled_from(options))
        form = draw(st.sampled_from(("+", "-", "*", "/", "round", "min")))
        if form == "round":
            places = draw(st.integers(0, 12))
            return f"round({_expr(draw, schema, 'decimal', context, depth - 1, True)}, {places})"
        if form == "min":
            return (f"min({_expr(draw, schema, 'decimal', context, depth - 1, True)}, "
                    f"{_expr(draw, schema, 'int', context, depth - 1, True)})")
        return (f"({_expr(draw, schema, 'decimal', context, depth - 1, True)} {form} "
                f"{_expr(draw, schema, draw(st.sampled_from(('int', 'decimal'))), context, depth - 1, True)})")  # noqa: E501
    if kind == "money":
        currency = schema.currencies[0]
        if leaf:
            return draw(st.sampled_from(("total", f"{currency} {_AMOUNTS[currency][0]}")))
        form = draw(st.sampled_from(("pct", "+", "round", "div")))
        if form == "pct":
            if draw(st.booleans()):
                return f"total * ({draw(st.integers(1, 50))}% + {draw(st.integers(0, 50))}%)"
            return f"total * {draw(st.integers(1, 100))}%"
        if form == "round":
            return f"round({_expr(draw, schema, 'money', context, depth - 1)})"
        if form == "div":
            return f"{_expr(draw, schema, 'money', context, depth - 1)} / {draw(st.integers(1, 4))}"
        return (f"({_expr(draw, schema, 'money', context, depth - 1)} + "
                f"{_expr(draw, schema, 'money', context, depth - 1)})")
    if kind in ("date", "datetime"):
        if leaf:
            options = [_date(draw) if kind == "date" else _datetime(draw)]
            if kind == "datetime":
                options.append("event.at")
            attr = _attr(draw, schema, "date", needs_value) if kind == "date" else None
            if attr:
                options.append(attr)
            return draw(st.sampled_from(options))
        op = draw(st.sampled_from(("+", "-")))
        return (f"({_expr(draw, schema, kind, context, depth - 1, True)} {op} "
                f"{draw(st.sampled_from(_DURATIONS + _LONG_DURATIONS))})")
    assert kind == "string", kind
    options = ["customer.id", "subscription.status", "event.type", "storefront.currency",
               "storefront.name", "plan.name"]
    attr = _attr(draw, schema, "string", needs_value=False)
    if attr:
        options += [attr, attr]
    if context == "dunning":
        options += ["payment.reason", "payment.reason"]
    return draw(st.sampled_from(options))


@st.composite
def expressions(draw: Draw, schema: _Schema, context: str = "tax",
                depth: int = 3) -> str:
    """A boolean condition for a rule of ``context`` (tax, route, dunning, …)."""
    return _expr(draw, schema, "bool", context, depth)


@st.composite
def rulesets(draw: Draw, max_depth: int = 3) -> str:
    """The text of a generated ruleset that passes ``revrules check``."""
    out: list[str] = ['ruleset generated version "1"']
    if draw(st.booleans()):
        out.append(f"rounding {draw(st.sampled_from(_ROUNDINGS))}")
    if draw(st.booleans()):
        out.append(f'timezone "{draw(st.sampled_from(_ZONES))}"')
    attrs: list[tuple[str, str, bool]] = []
    for i, kind in enumerate(draw(st.lists(st.sampled_from(_ATTR_TYPES), max_size=5))):
        attrs.append((f"{kind}_{i}", kind, draw(st.booleans())))
    if attrs:
        out.append("customer {")
        for name, kind, has_default in attrs:
            default = ""
            if has_default:
                default = " = " + {"int": "3", "decimal": "2.5", "string": '"DE"',
                                   "bool": "true", "date": "2026-06-01"}[kind]
            out.append(f"  {name}: {kind}{default}")
        out.append("}")
    currency = draw(st.sampled_from(_CURRENCIES))
    storefronts: list[str] = []
    all_psps: set[str] = set()
    shared: set[str] | None = None  # PSPs every storefront lists
    regions: set[str] = set()
    for i in range(draw(st.integers(1, 3))):
        name = f"sf_{i}"
        storefronts.append(name)
        channel = draw(st.sampled_from(m.CHANNELS))
        psps = draw(st.lists(st.sampled_from(_PSPS), min_size=1, max_size=2, unique=True))
        all_psps.update(psps)
        shared = set(psps) if shared is None else shared & set(psps)
        tax = draw(st.sampled_from(("inclusive", "exclusive")))
        extra = ""
        if draw(st.booleans()):
            extra += f" commission {draw(st.integers(0, 30))}%"
        if draw(st.integers(0, 3)) == 0:
            extra += f" terms net {draw(st.integers(1, 60))} days"
        region = draw(st.sampled_from(("", " region EU", " region US")))
        regions.add(region.split()[-1] if region else "ALL")
        out.append(f"storefront {name} {{ channel {channel}{region} currency {currency} "
                   f"tax {tax} psp {', '.join(psps)}{extra} }}")
    psps = sorted(all_psps)
    out.append("product p0 { entitlements e0, e1 }")
    out.append("product p1 { entitlements e2 }")
    out.append("bundle b0 { products p0, p1 }")
    plans = [f"plan_{i}" for i in range(draw(st.integers(1, 3)))]
    schema = _Schema(attrs, [currency], storefronts, plans, psps)
    schema.regions = sorted(regions)
    eligibility = draw(st.booleans())
    for i, plan in enumerate(plans):
        out.append(f"plan {plan} {{")
        out.append(f"  {draw(st.sampled_from(('product p0', 'product p1', 'bundle b0')))}")
        every = draw(st.sampled_from(("1 month", "1 year", "2 weeks", "30 days", "1 day",
                                      "100 years")))
        out.append(f"  every {every}")
        if draw(st.integers(0, 2)) == 0:
            out.append(f"  trial {draw(st.sampled_from((1, 14, 30, 36525)))} days" +
                       (" if elig" if eligibility and draw(st.booleans()) else ""))
        unsold = (draw(st.sampled_from(storefronts))
                  if len(storefronts) > 1 and draw(st.integers(0, 3)) == 0 else None)
        sold = [sf for sf in storefronts if sf != unsold]
        for sf in sold:
            out.append(f"  price {sf} {currency} {draw(st.sampled_from(_AMOUNTS[currency]))}")
        if draw(st.integers(0, 2)) == 0:
            sf = draw(st.sampled_from(sold))
            month = draw(st.integers(1, 12))
            later = (f" existing from 2028-{month:02d}-01" if draw(st.booleans()) else "")
            consent = " consent required" if draw(st.booleans()) else ""
            out.append(f"  price {sf} {currency} {draw(st.sampled_from(_AMOUNTS[currency]))} "
                       f"from 2027-{month:02d}-01{later}{consent}")
        if unsold is not None:
            out.append(f"  not sold in {unsold}")
        if len(plans) > 1 and draw(st.booleans()):
            target = plans[(i + 1) % len(plans)]
            kind = draw(st.sampled_from(("upgrade", "downgrade")))
            timing = draw(st.sampled_from(("immediate", "immediate prorate", "at period_end")))
            out.append(f"  {kind} to {target} {timing}")
        out.append("}")
    if draw(st.integers(0, 3)) == 0:
        out.append(f'contract deal {{ customer "c1" plan {draw(st.sampled_from(plans))} '
                   f"price {currency} {_AMOUNTS[currency][1]} valid 2026-06-01 to 2027-12-31 }}")
    if eligibility:
        out.append("eligibility elig {")
        for _ in range(draw(st.integers(0, 2))):
            out.append(f'  deny "no" when {_expr(draw, schema, "bool", "eligibility", max_depth)}')
        out.append("}")
    for i in range(draw(st.integers(0, 3))):
        items = [f'code "CODE{i}"' if draw(st.booleans()) else "automatic"]
        if draw(st.booleans()):
            items.append(f"percent {draw(st.integers(1, 100))} off")
        else:
            items.append(f"amount {currency} {_AMOUNTS[currency][0]} off")
        items[-1] += " " + draw(st.sampled_from(("once", "forever", "for 2 cycles")))
        if draw(st.booleans()):
            items.append(f"plans {draw(st.sampled_from(plans))}")
        if draw(st.booleans()):
            items.append(f"valid 2026-{draw(st.integers(1, 12)):02d}-01 to 2027-06-30")
        if draw(st.booleans()):
            items.append(f"storefronts {', '.join(draw(st.lists(st.sampled_from(storefronts), min_size=1, max_size=2, unique=True)))}")  # noqa: E501
        limit = draw(st.sampled_from(("", "limit 3 total", "limit 1 per customer",
                                      "limit 5 total, 1 per customer")))
        if limit:
            items.append(limit)
        if draw(st.booleans()):
            items.append(f"if {_expr(draw, schema, 'bool', 'promotion', max_depth)}")
        if draw(st.booleans()):
            items.append("stackable")
        out.append(f"promotion promo_{i} {{ " + " ".join(items) + " }")
    for i in range(draw(st.integers(0, 2))):
        out.append(f"tax tax_{i} {{")
        for _ in range(draw(st.integers(0, 2))):
            out.append(f"  rate {draw(st.integers(0, 25))}% when "
                       f"{_expr(draw, schema, 'bool', 'tax', max_depth)}")
        if draw(st.booleans()):
            out.append(f"  rate {draw(st.sampled_from(('0', '7', '19', '8.5')))}%")
        out.append("}")
    # a route line or `retry via` names a PSP the storefronts it can apply to list
    # (LANGUAGE.md §5.1): one that every storefront lists is always right
    common = sorted(shared or ())
    if bool(common) and draw(st.booleans()):
        out.append("route {")
        for _ in range(draw(st.integers(0, 2))):
            out.append(f"  {draw(st.sampled_from(common))} when "
                       f"{_expr(draw, schema, 'bool', 'route', max_depth)}")
        out.append(f"  {draw(st.sampled_from(common))} otherwise")
        out.append("}")
    for i in range(draw(st.integers(0, 2))):
        head = f"dunning dun_{i}"
        if i == 0 and draw(st.booleans()):
            head += f" for {_expr(draw, schema, 'bool', 'dunning', max_depth)}"
        items = []
        if draw(st.booleans()):
            days = sorted(set(draw(st.lists(st.integers(0, 20), min_size=1, max_size=3))))
            items.append("retry after " + ", ".join(f"{d} days" for d in days))
        if bool(common) and draw(st.booleans()):
            items.append(f"retry via {draw(st.sampled_from(common))}")
        if draw(st.booleans()):
            items.append(f"no retry when {_expr(draw, schema, 'bool', 'dunning', max_depth)}")
        if draw(st.booleans()):
            items.append(f"grace {draw(st.integers(0, 30))} days "
                         f"{draw(st.sampled_from(('keep', 'revoke')))} entitlements")
        items.append(f"then {draw(st.sampled_from(('cancel', 'pause', 'unpaid')))}")
        out.append(head + " { " + " ".join(items) + " }")
        if "for" not in head:
            break
    if draw(st.booleans()):
        items = []
        if draw(st.booleans()):
            cond = (f" when {_expr(draw, schema, 'bool', 'lifecycle', max_depth)}"
                    if draw(st.booleans()) else "")
            items.append(f"pause max {draw(st.integers(1, 6))} months{cond}")
        items.append(f"cancel {draw(st.sampled_from(('at period_end', 'immediate')))}")
        items.append("refund " + draw(st.sampled_from((
            "full", "prorated", "none", "full within 14 days",
            "full within 7 days, prorated after"))))
        out.append("lifecycle { " + " ".join(items) + " }")
    return "\n".join(out) + "\n"


def _attribute_value(draw: Draw, attr: m.Attribute) -> Any:
    if attr.type == "int":
        return draw(st.one_of(st.integers(-5, 60), st.sampled_from(
            (10**MAX_INTEGER_DIGITS - 1, -(10**MAX_INTEGER_DIGITS) + 1))))
    if attr.type == "decimal":
        return draw(st.sampled_from(("0", "1.5", "-2.25", "19.99", "1000", "0.001", 7,
                                     "9" * MAX_INTEGER_DIGITS + "." + "9" * MAX_FRACTION_DIGITS,
                                     "0." + "0" * (MAX_FRACTION_DIGITS - 1) + "1",
                                     f"-0E-{MAX_FRACTION_DIGITS}")))
    if attr.type == "string":
        return draw(st.sampled_from(_STRINGS))
    if attr.type == "bool":
        return draw(st.booleans())
    return draw(st.sampled_from((_date(draw), "1900-01-01", "2999-12-31")))


@st.composite
def customers(draw: Draw, ruleset: Ruleset, customer_id: str | None = None) -> dict[str, Any]:
    """A checkout's ``customer`` object that fits the ruleset's schema."""
    customer: dict[str, Any] = {"id": customer_id or draw(st.sampled_from(("c1", "c2", "c3")))}
    for attr in ruleset.model.attributes:
        if draw(st.integers(0, 3)) == 0:
            continue  # absent: the default applies, or the attribute is optional
        customer[attr.name] = _attribute_value(draw, attr)
    return customer


_SUBSCRIPTIONS = ("s1", "s2", "s3")


@st.composite
def events(draw: Draw, ruleset: Ruleset, at: dt.datetime | None = None,
           event_id: str | None = None) -> dict[str, Any]:
    """One wire event for the ruleset: any type, a subscription of a small pool."""
    model = ruleset.model
    moment = at or _BASE + dt.timedelta(days=draw(st.integers(0, 800)))
    kind = draw(st.sampled_from((
        "checkout", "checkout", "checkout", "renewal_due", "payment_succeeded",
        "payment_succeeded", "payment_failed", "payment_failed", "store_notification",
        "plan_change_requested", "pause_requested", "resume_requested", "cancel_requested",
        "consent_given", "consent_declined", "refund_requested", "tick", "tick")))
    event: dict[str, Any] = {"id": event_id or f"ev{draw(st.integers(0, 10**6))}",
                             "type": kind,
                             "at": moment.strftime("%Y-%m-%dT%H:%M:%SZ")}
    if kind != "tick":
        event["subscription"] = draw(st.sampled_from(_SUBSCRIPTIONS))
    plans = [p.name for p in model.plans]
    if kind == "checkout":
        event["storefront"] = draw(st.sampled_from([s.name for s in model.storefronts]))
        event["plan"] = draw(st.sampled_from(plans))
        event["customer"] = draw(customers(ruleset))
        codes = sorted(p.code for p in model.promotions if p.code)
        use_code = bool(codes) and draw(st.booleans())
        if use_code:
            event["code"] = draw(st.sampled_from(codes))
    elif kind == "payment_failed" and draw(st.booleans()):
        event["reason"] = draw(st.sampled_from(_REASONS))
    elif kind == "plan_change_requested":
        event["plan"] = draw(st.sampled_from(plans))
    elif kind == "store_notification":
        event["notification"] = draw(st.sampled_from((
            "DID_RENEW", "DID_FAIL_TO_RENEW", "EXPIRED", "REFUND", "CANCELED",
            "GRACE_PERIOD_EXPIRED")))
    elif kind == "refund_requested" and draw(st.booleans()):
        event["amount"] = draw(st.sampled_from(("0.50", "1.00", "5.00")))
    return event


@st.composite
def event_sequences(draw: Draw, ruleset: Ruleset, max_size: int = 12) -> list[dict[str, Any]]:
    """A valid event log for the ruleset: every event applies cleanly, in time order.

    The strategy asks the engine at each step: checkouts (up to three subscriptions),
    payments and failures of open charges, renewals on their next charge dates,
    plan changes, pauses, resumes, cancels, refunds, consents and ticks, dated
    consistently. Events the engine refuses are left out, so that ``ok`` holds for
    every event of the result.
    """
    from .engine import Engine
    from .state import State

    engine, state = Engine(ruleset), State()
    model = ruleset.model
    storefronts = [s.name for s in model.storefronts]
    plans = [p.name for p in model.plans]
    moment = _BASE
    result: list[dict[str, Any]] = []
    next_charge: dict[str, dt.date] = {}
    target = draw(st.integers(1, max_size))
    for attempt in range(target * 3):
        if len(result) >= target:
            break
        subs = sorted(state.subscriptions.keys())
        choices = ["checkout"] if len(subs) < len(_SUBSCRIPTIONS) else []
        if subs:
            choices += ["pay", "pay", "fail", "renew", "renew", "tick", "change", "pause",
                        "resume", "cancel", "refund", "consent"]
        action = draw(st.sampled_from(choices))
        moment += dt.timedelta(days=draw(st.sampled_from((0, 1, 2, 5, 15, 30))),
                               hours=draw(st.integers(0, 3)))
        event: dict[str, Any] = {"id": f"e{attempt}", "type": "tick"}
        at = moment
        if action == "checkout":
            sub_id = next(s for s in _SUBSCRIPTIONS if s not in subs)
            event.update(type="checkout", subscription=sub_id,
                         storefront=draw(st.sampled_from(storefronts)),
                         plan=draw(st.sampled_from(plans)),
                         customer=draw(customers(ruleset)))
            codes = sorted(p.code for p in model.promotions if p.code)
            use_code = bool(codes) and draw(st.booleans())
            if use_code:
                event["code"] = draw(st.sampled_from(codes))
        elif action != "tick":
            sub_id = draw(st.sampled_from(subs))
            event["subscription"] = sub_id
            if action == "renew":
                due = next_charge.get(sub_id)
                if due is None:
                    continue
                at = dt.datetime.combine(due, dt.time(12), dt.timezone.utc)
                if at < moment:
                    continue
                moment = at
                event["type"] = "renewal_due"
            else:
                event["type"] = {
                    "pay": "payment_succeeded", "fail": "payment_failed",
                    "change": "plan_change_requested", "pause": "pause_requested",
                    "resume": "resume_requested", "cancel": "cancel_requested",
                    "refund": "refund_requested",
                    "consent": draw(st.sampled_from(("consent_given", "consent_declined")))}[
                        action]
            if action == "fail" and draw(st.booleans()):
                event["reason"] = draw(st.sampled_from(_REASONS))
            if action == "change":
                event["plan"] = draw(st.sampled_from(plans))
        event["at"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = engine.apply(state, event)
        if not out.ok:
            continue
        state = out.state
        result.append(event)
        for decision in out.decisions:
            if decision.next_charge is not None:
                next_charge[decision.subscription] = decision.next_charge
    return result
