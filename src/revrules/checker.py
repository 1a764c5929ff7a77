"""The checker: names, types, currencies, coverage and conflicts.

:func:`check` reads a :class:`~revrules.nodes.Module` and returns a
:class:`CheckResult` holding every diagnostic it found (it never stops at the first)
and, when there are no errors, the resolved :class:`~revrules.model.Model`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal, cast

import attrs
from babel.numbers import get_currency_precision, list_currencies

from . import model as m
from . import nodes as n
from .diagnostics import Diagnostic, did_you_mean, suggest
from .events import EventError, check_date, check_decimal, check_int
from .lint import allowed, lint
from .runtime import in_context

__all__ = ["CheckResult", "check"]

_CURRENCY_CODES = tuple(sorted(list_currencies()))
_CURRENCIES = frozenset(_CURRENCY_CODES)
_ATTR_TYPES = ("int", "decimal", "string", "bool", "date")
_ROUNDING = ("half_even", "half_up", "half_down", "down", "up", "ceiling", "floor")
_FUNCTIONS = ("min", "max", "round", "days_between")
# bounds that keep evaluation inside the calendar and the decimal context
# (docs/language.md, "Bounds"): a duration is at most 100 years; round() takes at
# most 12 decimals; a number or date attribute default keeps the limits of event
# values (events.check_decimal, check_int, check_date)
MAX_DURATION = {"day": 36525, "week": 5218, "month": 1200, "year": 100}
MAX_ROUND_PLACES = 12

T = m.Type
BOOL = T("bool")
INT = T("int")
STRING = T("string")
NUMERIC = frozenset({"int", "decimal"})
TEMPORAL = frozenset({"date", "datetime"})

# fields of the objects an expression can name; customer's come from the schema
_FIELDS: dict[str, dict[str, m.Type]] = {
    "storefront": {"name": STRING, "channel": T("channel"), "region": T("region"),
                   "currency": STRING},
    "plan": {"name": STRING},
    "subscription": {"cycle": INT, "status": STRING, "plan": T("plan"),
                     "storefront": T("storefront")},
    "event": {"at": T("datetime"), "type": STRING},
    "payment": {"reason": T("string", optional=True), "attempt": INT, "psp": T("psp")},
}
# which objects each kind of rule may read
_ROOTS = {
    "eligibility": ("customer", "storefront", "plan", "subscription", "event"),
    "promotion": ("customer", "storefront", "plan", "subscription", "event"),
    "tax": ("customer", "storefront", "plan", "subscription", "event"),
    "route": ("customer", "storefront", "plan", "subscription", "event", "total"),
    "dunning": ("customer", "storefront", "plan", "subscription", "event", "payment"),
    "lifecycle": ("customer", "storefront", "plan", "subscription", "event"),
}


@attrs.frozen
class CheckResult:
    """Every diagnostic found, and the model when there is no error."""

    model: m.Model | None
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return self.model is not None

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


@in_context
def check(module: n.Module, *, lint: bool = True) -> CheckResult:
    """Check a parsed module; collect every problem rather than stopping at the first.

    ``lint=False`` leaves out the lint warnings (RR1xx): :func:`with_lint` adds them
    later, in the same order (what :func:`revrules.load` does, on first use)."""
    return _Checker(module, lint).run()


@in_context
def with_lint(model: m.Model, module: n.Module,
              diagnostics: Sequence[Diagnostic]) -> tuple[Diagnostic, ...]:
    """``diagnostics`` (of ``check(module, lint=False)``, without errors) and the lint
    warnings of ``model``, ordered and filtered as ``check(module)`` gives them."""
    return _ordered(list(diagnostics) + lint(model, module), module.source)


def _ordered(diagnostics: list[Diagnostic], source: str) -> tuple[Diagnostic, ...]:
    # `# revrules: allow RR1xx` silences a warning
    found = sorted((d for d in diagnostics if not allowed(d, source)),
                   key=lambda d: (d.span.line, d.span.column, d.code, d.message))
    return tuple(found)


def minor_units(currency: str) -> int:
    """How many decimals a currency's amounts carry (babel: EUR 2, JPY 0, KWD 3)."""
    return int(get_currency_precision(currency))


class _Names(tuple[str, ...]):
    """Sorted names (the order suggestions are made in) that answer ``in`` from a set:
    a ruleset names its plans and PSPs once per rule, so a membership test must not
    scan them."""

    members: frozenset[str]

    def __new__(cls, names: Iterable[str]) -> _Names:
        self = super().__new__(cls, names)
        self.members = frozenset(self)
        return self

    def __contains__(self, name: object) -> bool:
        return name in self.members


class _Checker:
    def __init__(self, module: n.Module, lint: bool = True):
        self.module = module
        self.lint = lint
        self.diagnostics: list[Diagnostic] = []
        self.types: dict[int, m.Type] = {}
        self.sold_anywhere: set[str] | None = None
        self.by_kind: dict[type, list[Any]] = {}
        for decl in module.decls:
            self.by_kind.setdefault(type(decl), []).append(decl)

    # -- reporting -------------------------------------------------------------------
    def error(self, code: str, message: str, span: n.Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("error", code, message, span, hint))

    def warning(self, code: str, message: str, span: n.Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic("warning", code, message, span, hint))

    def unknown(self, what: str, ref: n.Ref, candidates: Iterable[str]) -> None:
        self.error(f"unknown_{what.replace(' ', '_')}",
                   f"unknown {what} '{ref.name}'{did_you_mean(ref.name, candidates)}", ref.span)

    def decls(self, kind: type) -> list[Any]:
        return self.by_kind.get(kind, [])

    def unique(self, what: str, decls: Sequence[Any]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for decl in decls:
            if decl.name in seen:
                first = seen[decl.name]
                self.error("duplicate", f"duplicate {what} '{decl.name}' (first declared at "
                           f"{first.name_span})", decl.name_span)
            else:
                seen[decl.name] = decl
        return seen

    def single_items(self, what: str, items: Sequence[Any], keys: Iterable[str]) -> dict[str, Any]:
        """Map key → item for items that may appear once; report repeats."""
        found: dict[str, Any] = {}
        for item in items:
            key = getattr(item, "key", None) or type(item).__name__
            if key in keys and key in found:
                self.error("duplicate", f"{what} says '{key}' twice", item.span)
            found.setdefault(key, item)
        return found

    def duration(self, d: n.Duration, span: n.Span, what: str, least: int = 0) -> bool:
        """Bound a duration so that dates computed from it stay in the calendar."""
        if least <= d.count <= MAX_DURATION[d.unit]:
            return True
        low = f"at least {least} {d.unit}{'s' if least != 1 else ''} and " if least else ""
        self.error("range", f"{what} is {low}at most 100 years "
                   f"({MAX_DURATION[d.unit]} {d.unit}s); found {d}", span)
        return False

    def needs_value(self, expr: n.Expr, found: m.Type, use: str) -> bool:
        """An optional value (an attribute without a default) cannot reach arithmetic or a
        function: it has no value when the customer lacks the attribute."""
        if not found.optional:
            return True
        if isinstance(expr, n.Field) and isinstance(expr.obj, n.Name) \
                and expr.obj.name == "customer":
            self.error("optional", f"customer.{expr.name} has no default, so a customer may "
                       f"lack it; {use} needs a value", expr.span,
                       f"give it a default in the customer schema ('{expr.name}: "
                       f"{found.kind} = …'), or compare it directly (a comparison with an "
                       "absent attribute is false)")
        else:
            self.error("optional", f"this value may be absent (it has no default); {use} "
                       "needs a value", expr.span)
        return False

    # -- the whole module ------------------------------------------------------------
    def run(self) -> CheckResult:
        header = self.header()
        rounding, timezone = self.settings()
        self.attributes = self.customer_schema()
        self.storefronts = self.check_storefronts()
        self.psps = _Names(sorted({p for s in self.storefronts.values() for p in s.psps}))
        self.regions = _Names(sorted({s.region for s in self.storefronts.values()}))
        self.products = self.check_products()
        plan_decls = self.unique("plan", self.decls(n.Plan))
        self.plan_names = _Names(sorted(plan_decls))
        self.eligibility_names = _Names(sorted(d.name for d in self.decls(n.Eligibility)))
        plans = {name: self.check_plan(decl) for name, decl in plan_decls.items()}
        self.check_former_names("storefront", list(self.storefront_decls.values()))
        self.check_former_names("plan", list(plan_decls.values()))
        self.plans = {k: v for k, v in plans.items() if v is not None}
        contracts = self.check_contracts()
        eligibilities = self.check_eligibilities()
        promotions = self.check_promotions()
        taxes = self.check_taxes()
        route = self.check_route()
        dunning = self.check_dunning()
        lifecycle = self.check_lifecycle()

        self.diagnostics.sort(key=lambda d: (d.span.line, d.span.column, d.message))
        if any(d.severity == "error" for d in self.diagnostics) or header is None:
            return CheckResult(None, tuple(self.diagnostics))
        model = m.Model(
            name=header.name, version=header.version, file=self.module.file,
            rounding=rounding, timezone=timezone,
            attributes=tuple(self.attributes.values()),
            storefronts=tuple(self.storefronts.values()),
            products=tuple(p for p in self.products.values() if isinstance(p, m.Product)),
            plans=tuple(self.plans.values()), contracts=contracts,
            eligibilities=eligibilities, promotions=promotions, taxes=taxes, route=route,
            dunning=dunning, lifecycle=lifecycle, types=self.types, source=self.module.source,
        )
        if self.lint:  # lint only a ruleset without errors
            self.diagnostics.extend(lint(model, self.module))
        return CheckResult(model, _ordered(self.diagnostics, self.module.source))

    def header(self) -> n.Header | None:
        headers = self.decls(n.Header)
        for extra in headers[1:]:
            self.error("duplicate", "a file has one 'ruleset' line", extra.span)
        if not headers:
            self.error("missing_header", "a ruleset file starts with 'ruleset NAME version \"…\"'",
                       n.Span(self.module.file, 1, 1, 1, 2))
            return None
        header: n.Header = headers[0]
        return header

    def settings(self) -> tuple[str, str]:
        rounding, timezone = "half_even", "UTC"
        for i, r in enumerate(self.decls(n.Rounding)):
            if i:
                self.error("duplicate", "rounding is set twice", r.span)
            elif r.mode not in _ROUNDING:
                self.error("unknown_rounding", f"unknown rounding mode '{r.mode}'"
                           f"{did_you_mean(r.mode, _ROUNDING)}", r.span,
                           "one of " + ", ".join(_ROUNDING))
            else:
                rounding = r.mode
        for i, tz in enumerate(self.decls(n.Timezone)):
            if i:
                self.error("duplicate", "timezone is set twice", tz.span)
                continue
            try:
                zoneinfo.ZoneInfo(tz.zone)
                timezone = tz.zone
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                self.error("unknown_timezone", f"unknown timezone '{tz.zone}'"
                           f"{did_you_mean(tz.zone, sorted(zoneinfo.available_timezones()))}",
                           tz.span)
        return rounding, timezone

    def customer_schema(self) -> dict[str, m.Attribute]:
        schemas = self.decls(n.CustomerSchema)
        for extra in schemas[1:]:
            self.error("duplicate", "the customer schema is declared twice", extra.span)
        attributes: dict[str, m.Attribute] = {}
        for decl in (schemas[0].attrs if schemas else ()):
            if decl.name in attributes or decl.name == "id":
                self.error("duplicate", f"customer attribute '{decl.name}' is declared twice"
                           if decl.name != "id" else "'id' is built in: every customer has one",
                           decl.span)
                continue
            kind = decl.type.name
            if kind not in _ATTR_TYPES:
                self.error("unknown_type", f"unknown type '{kind}'{did_you_mean(kind, _ATTR_TYPES)}",
                           decl.type.span, "one of " + ", ".join(_ATTR_TYPES))
                continue
            default = None
            if decl.default is not None and not isinstance(decl.default, n.Literal):
                self.error("type", f"default of '{decl.name}' must be a single {kind} value",
                           decl.default.span)
                continue
            if decl.default is not None:
                lit_type = _literal_type(decl.default)
                if not _assignable(lit_type.kind, kind):
                    self.error("type", f"default of '{decl.name}' is {lit_type}, expected {kind}",
                               decl.default.span)
                default = decl.default.value
                if kind == "decimal" and isinstance(default, int):
                    default = Decimal(default)
                try:
                    if kind == "date" and isinstance(default, dt.date):
                        check_date(default, f"default of '{decl.name}'")
                    elif kind == "decimal" and isinstance(default, Decimal):
                        default = check_decimal(default, f"default of '{decl.name}'")
                    elif kind == "int" and isinstance(default, int):
                        check_int(default, f"default of '{decl.name}'")
                except EventError as exc:
                    self.error("range", exc.message, decl.default.span)
            attributes[decl.name] = m.Attribute(decl.name, kind, default, decl.span)
        return attributes

    # -- storefronts and catalogue ---------------------------------------------------
    def check_storefronts(self) -> dict[str, m.Storefront]:
        result = {}
        self.storefront_decls = self.unique("storefront", self.decls(n.Storefront))
        for name, decl in self.storefront_decls.items():
            keys = ("channel", "region", "currency", "tax", "psp", "commission", "terms")
            items = self.single_items(f"storefront '{name}'", decl.items, keys)
            ok = True
            for key in ("channel", "currency", "tax", "psp"):
                if key not in items:
                    self.error("missing", f"storefront '{name}' needs '{key}'", decl.name_span)
                    ok = False
            channel = items["channel"].value if "channel" in items else None
            if channel is not None and channel.name not in m.CHANNELS:
                self.unknown("channel", channel, m.CHANNELS)
                ok = False
            currency = items["currency"].value if "currency" in items else None
            if currency is not None and currency.name not in _CURRENCIES:
                self.unknown("currency", currency, _CURRENCY_CODES)
                ok = False
            commission = items["commission"].value if "commission" in items else Decimal(0)
            if not Decimal(0) <= commission <= Decimal(100):
                self.error("range", "commission must be between 0% and 100%",
                           items["commission"].span)
            if not ok:
                continue
            assert channel is not None and currency is not None  # ok: both are present
            region = items["region"].value.name if "region" in items else "ALL"
            terms = items["terms"].value if "terms" in items else None
            if terms is not None:
                self.duration(terms, items["terms"].span, "payment terms")
            result[name] = m.Storefront(
                name, channel.name, region, currency.name, items["tax"].value == "inclusive",
                tuple(r.name for r in items["psp"].value), commission / 100, terms, decl.span,
                self.former_names(f"storefront '{name}'", [
                    i.value for i in decl.items if i.key == "formerly"]))
        return result

    def former_names(self, what: str, refs: Sequence[n.Ref]) -> tuple[str, ...]:
        """The ``formerly`` names of one declaration, each once."""
        names: list[str] = []
        for ref in refs:
            if ref.name in names:
                self.error("duplicate", f"{what} says 'formerly {ref.name}' twice", ref.span)
            else:
                names.append(ref.name)
        return tuple(names)

    def check_former_names(self, kind: str, decls: Sequence[Any]) -> None:
        """A former name is not a current name of its kind, and belongs to one declaration."""
        current = {d.name for d in decls}
        claimed: dict[str, Any] = {}
        for decl in decls:
            refs = ([i.value for i in decl.items if getattr(i, "key", None) == "formerly"]
                    if kind == "storefront" else
                    [i.name for i in decl.items if isinstance(i, n.PlanFormerly)])
            for ref in refs:
                if ref.name in current:
                    self.error("conflict", f"'formerly {ref.name}': '{ref.name}' is a {kind} of "
                               f"this ruleset; a former name must be out of use", ref.span)
                elif ref.name in claimed and claimed[ref.name] is not decl:
                    self.error("duplicate", f"{kind}s '{claimed[ref.name].name}' and "
                               f"'{decl.name}' both say 'formerly {ref.name}'", ref.span)
                else:
                    claimed.setdefault(ref.name, decl)

    def check_products(self) -> dict[str, m.Product | n.Bundle]:
        table: dict[str, m.Product | n.Bundle] = {}
        seen = self.unique("product or bundle", sorted(
            [*self.decls(n.Product), *self.decls(n.Bundle)],
            key=lambda d: (d.span.line, d.span.column)))
        for name, decl in seen.items():
            if isinstance(decl, n.Product):
                table[name] = m.Product(name, _dedupe(r.name for r in decl.entitlements), decl.span)
        for name, decl in seen.items():
            if isinstance(decl, n.Bundle):
                for ref in decl.products:
                    if ref.name not in table or not isinstance(table[ref.name], m.Product):
                        self.unknown("product", ref, [k for k, v in table.items()
                                                      if isinstance(v, m.Product)])
                table[name] = decl
        return table

    def entitlements_of(self, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(products, entitlements) of a product or bundle, in source order."""
        decl = self.products[name]
        if isinstance(decl, m.Product):
            return (name,), decl.entitlements
        products = tuple(r.name for r in decl.products if isinstance(self.products.get(r.name),
                                                                       m.Product))
        ents = _dedupe(e for p in products for e in self.products[p].entitlements)  # type: ignore[union-attr]
        return products, ents

    def check_money(self, lit: n.Literal) -> m.Type:
        money = cast(n.Money, lit.value)
        if money.currency not in _CURRENCIES:
            self.error("unknown_currency", f"unknown currency '{money.currency}'"
                       f"{did_you_mean(money.currency, _CURRENCY_CODES)}", lit.span)
            return T("money")
        digits = minor_units(money.currency)
        exponent = money.amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > digits:
            self.error("precision", f"{money.currency} amounts have {digits} decimal"
                       f"{'s' if digits != 1 else ''}; {money} has more", lit.span)
        return T("money", money.currency)

    def check_plan(self, decl: n.Plan) -> m.Plan | None:
        name = decl.name
        ok = True
        products = [i for i in decl.items if isinstance(i, n.PlanProduct)]
        everies = [i for i in decl.items if isinstance(i, n.PlanEvery)]
        trials = [i for i in decl.items if isinstance(i, n.PlanTrial)]
        for what, found in (("'product' or 'bundle'", products), ("'every'", everies)):
            if not found:
                self.error("missing", f"plan '{name}' needs {what}", decl.name_span)
                ok = False
            for extra in found[1:]:
                self.error("duplicate", f"plan '{name}' says {what} twice", extra.span)
        for extra_trial in trials[1:]:
            self.error("duplicate", f"plan '{name}' says 'trial' twice", extra_trial.span)
        prods: tuple[str, ...] = ()
        ents: tuple[str, ...] = ()
        if products:
            target = products[0].target
            kind = products[0].kind
            found_decl = self.products.get(target.name)
            wanted = m.Product if kind == "product" else n.Bundle
            if found_decl is None:
                self.unknown(kind, target, [k for k, v in self.products.items()
                                            if isinstance(v, wanted)])
                ok = False
            elif not isinstance(found_decl, wanted):
                other = "bundle" if kind == "product" else "product"
                self.error("kind", f"'{target.name}' is a {other}; write '{other} {target.name}'",
                           target.span)
                ok = False
            else:
                prods, ents = self.entitlements_of(target.name)
        for every in everies[:1]:
            self.duration(every.every, every.span, "a billing period", least=1)
        trial = None
        if trials:
            t = trials[0]
            self.duration(t.length, t.span, "a trial")
            if t.eligibility is not None and t.eligibility.name not in self.eligibility_names:
                self.unknown("eligibility rule", t.eligibility, self.eligibility_names)
            trial = m.Trial(t.length, t.eligibility.name if t.eligibility else None, t.span)
        prices: list[m.PriceEntry] = []
        priced: set[str] = set()
        seen_dates: dict[tuple[str, dt.date | None], n.PlanPrice] = {}
        for item in decl.items:
            if not isinstance(item, n.PlanPrice):
                continue
            sf = self.storefronts.get(item.storefront.name)
            money_type = self.check_money(item.price)
            if sf is None:
                if item.storefront.name not in {d.name for d in self.decls(n.Storefront)}:
                    self.unknown("storefront", item.storefront, self.storefronts)
                continue
            money = cast(n.Money, item.price.value)
            if money_type.currency and money.currency != sf.currency:
                self.error("currency", f"price in {money.currency} but storefront '{sf.name}' "
                           f"sells in {sf.currency}", item.price.span)
            if item.existing and item.effective and item.existing < item.effective:
                self.error("order", f"'existing from {item.existing}' is before 'from "
                           f"{item.effective}'", item.span)
            key = (sf.name, item.effective)
            if key in seen_dates:
                when = f"from {item.effective}" if item.effective else "without a date"
                self.error("conflict", f"two prices for plan '{name}' in '{sf.name}' {when} "
                           f"(first at {seen_dates[key].span})", item.span)
            seen_dates[key] = item
            priced.add(sf.name)
            prices.append(m.PriceEntry(sf.name, money.currency, money.amount, item.effective,
                                       item.existing or item.effective, item.consent, item.span))
        not_sold: set[str] = set()
        for item in decl.items:
            if isinstance(item, n.PlanNotSold):
                for ref in item.storefronts:
                    if ref.name not in self.storefronts:
                        self.unknown("storefront", ref, self.storefronts)
                    elif ref.name in priced:
                        self.error("conflict", f"plan '{name}' has a price in '{ref.name}' and "
                                   f"says it is not sold there", ref.span)
                    not_sold.add(ref.name)
        for sf_name in self.storefronts:
            if sf_name not in priced and sf_name not in not_sold:
                self.error("coverage", f"plan '{name}' has no price in storefront '{sf_name}'",
                           decl.name_span,
                           f"add 'price {sf_name} {self.storefronts[sf_name].currency} …' or "
                           f"'not sold in {sf_name}'")
        for sf_name in priced:
            if all(p.effective is not None for p in prices if p.storefront == sf_name):
                first = min(p.effective or dt.date.min for p in prices
                            if p.storefront == sf_name)
                before = first - dt.timedelta(days=1) if first > dt.date.min else first
                self.warning("RR107", f"plan '{name}' has no price in '{sf_name}' before "
                             f"{first}: for example a checkout of plan {name} at storefront "
                             f"{sf_name} on {before} finds no price",
                             decl.name_span, f"add a base price without 'from': 'price "
                             f"{sf_name} {self.storefronts[sf_name].currency} …'")
        changes = []
        for item in decl.items:
            if isinstance(item, n.PlanChange):
                if item.target.name not in self.plan_names:
                    self.unknown("plan", item.target, self.plan_names)
                elif item.target.name == name:
                    self.error("conflict", f"plan '{name}' cannot change to itself",
                               item.target.span)
                if item.prorate and item.timing != "immediate":  # pragma: no cover - grammar
                    self.error("conflict", "only an immediate change can prorate", item.span)
                changes.append(m.PlanChange(item.kind, item.target.name, item.timing,
                                            item.prorate, item.span))
        if not ok:
            return None
        prices.sort(key=lambda p: (p.storefront, p.effective or dt.date.min))
        return m.Plan(name, prods, ents, everies[0].every, trial, tuple(prices),
                      frozenset(not_sold), tuple(changes), decl.span,
                      self.former_names(f"plan '{name}'", [
                          i.name for i in decl.items if isinstance(i, n.PlanFormerly)]))

    def check_contracts(self) -> tuple[m.Contract, ...]:
        result = []
        for name, decl in self.unique("contract", self.decls(n.Contract)).items():
            items = self.single_items(f"contract '{name}'", decl.items,
                                      ("customer", "plan", "price", "valid"))
            missing = [k for k in ("customer", "plan", "price", "valid") if k not in items]
            for key in missing:
                self.error("missing", f"contract '{name}' needs '{key}'", decl.name_span)
            if missing:
                continue
            plan_ref: n.Ref = items["plan"].value
            price: n.Literal = items["price"].value
            self.check_money(price)
            start, end = items["valid"].value
            if end < start:
                self.error("order", f"contract '{name}' ends before it starts",
                           items["valid"].span)
            plan = self.plans.get(plan_ref.name)
            if plan_ref.name not in self.plan_names:
                self.unknown("plan", plan_ref, self.plan_names)
                continue
            money = cast(n.Money, price.value)
            if plan is not None:
                currencies = {self.storefronts[p.storefront].currency for p in plan.prices}
                if money.currency not in currencies:
                    self.error("currency", f"contract price in {money.currency} but plan "
                               f"'{plan.name}' is sold in {', '.join(sorted(currencies))}",
                               price.span)
            result.append(m.Contract(name, items["customer"].value, plan_ref.name, money.currency,
                                     money.amount, start, end, decl.span))
        return tuple(result)

    # -- rules -----------------------------------------------------------------------
    def condition(self, expr: n.Expr, context: str) -> None:
        found = self.infer(expr, context)
        if found.kind != "bool" and found.kind != "error":
            self.error("type", f"a condition must be true or false, found {found}", expr.span)

    def check_eligibilities(self) -> tuple[m.Eligibility, ...]:
        result = []
        for name, decl in self.unique("eligibility rule", self.decls(n.Eligibility)).items():
            denies = []
            for d in decl.denies:
                self.condition(d.when, "eligibility")
                denies.append(m.Deny(d.reason, m.Rule(name, d.when, d.span)))
            result.append(m.Eligibility(name, tuple(denies), decl.span))
        return tuple(result)

    def check_promotions(self) -> tuple[m.Promotion, ...]:
        result = []
        codes: dict[str, n.PromoItem] = {}
        for order, (name, decl) in enumerate(
                self.unique("promotion", self.decls(n.Promotion)).items()):
            keys = ("code", "automatic", "plans", "storefronts", "valid", "percent", "amount",
                    "limit", "if", "stackable")
            items = self.single_items(f"promotion '{name}'", decl.items, keys)
            if ("code" in items) == ("automatic" in items):
                self.error("promotion", f"promotion '{name}' needs exactly one of 'code \"…\"' "
                           "or 'automatic'", decl.name_span)
            if "code" in items:
                code = items["code"].value.upper()
                if code in codes:
                    self.error("duplicate", f"code \"{items['code'].value}\" is used twice "
                               f"(first at {codes[code].span})", items["code"].span)
                codes[code] = items["code"]
            plans = storefronts = None
            if "plans" in items:
                for ref in items["plans"].value:
                    if ref.name not in self.plan_names:
                        self.unknown("plan", ref, self.plan_names)
                plans = frozenset(r.name for r in items["plans"].value)
            if "storefronts" in items:
                for ref in items["storefronts"].value:
                    if ref.name not in self.storefronts:
                        self.unknown("storefront", ref, self.storefronts)
                storefronts = frozenset(r.name for r in items["storefronts"].value)
            valid_from = valid_to = None
            if "valid" in items:
                valid_from, valid_to = items["valid"].value
                if valid_to < valid_from:
                    self.error("order", f"promotion '{name}' ends before it starts",
                               items["valid"].span)
            if ("percent" in items) == ("amount" in items):
                self.error("promotion", f"promotion '{name}' needs exactly one of "
                           "'percent N off …' or 'amount CUR N off …'", decl.name_span)
                continue
            currency = None
            if "percent" in items:
                value, term = items["percent"].value
                if not Decimal(0) < value <= Decimal(100):
                    self.error("range", "a percentage off must be above 0 and at most 100",
                               items["percent"].span)
                kind, value = "percent", value / 100
            else:
                lit, term = items["amount"].value
                self.check_money(lit)
                kind, value, currency = "amount", lit.value.amount, lit.value.currency
                fits = [s for s in (storefronts or self.storefronts)
                        if s in self.storefronts and self.storefronts[s].currency == currency]
                if not fits:
                    where = ", ".join(sorted(storefronts or self.storefronts))
                    self.error("currency", f"promotion '{name}' takes {currency} off but none of "
                               f"its storefronts ({where}) sells in {currency}", lit.span)
                else:
                    self.promotion_currency(name, currency, items, plans, lit.span)
            if term.kind == "cycles" and (term.cycles or 0) < 1:
                self.error("range", "a promotion lasts at least 1 cycle", term.span)
            cycles = {"once": 1, "forever": None, "cycles": term.cycles}[term.kind]
            limit_total = limit_customer = None
            if "limit" in items:
                for part, count in items["limit"].value:
                    if count < 1:
                        self.error("range", "a limit must be at least 1", items["limit"].span)
                    if part == "total":
                        limit_total = count
                    else:
                        limit_customer = count
            condition = None
            if "if" in items:
                self.condition(items["if"].value, "promotion")
                condition = m.Rule(name, items["if"].value, items["if"].span)
            result.append(m.Promotion(
                name, items["code"].value if "code" in items else None, "automatic" in items,
                plans, storefronts, valid_from, valid_to, kind, value, currency,  # type: ignore[arg-type]
                term.kind, cycles, limit_total, limit_customer, condition, "stackable" in items,
                order, decl.span))
        return tuple(result)

    def promotion_currency(self, name: str, currency: str, items: dict[str, Any],
                           plans: frozenset[str] | None, span: n.Span) -> None:
        """An amount off covers storefronts in its currency only: each named storefront that
        sells in another is an error; without 'storefronts', each one its plans are sold in."""
        if "storefronts" in items:
            for ref in items["storefronts"].value:
                sf = self.storefronts.get(ref.name)
                if sf is not None and sf.currency != currency:
                    self.error("currency", f"promotion '{name}' takes {currency} off but "
                               f"storefront '{sf.name}' sells in {sf.currency}", ref.span)
            return
        if plans is None:  # every plan: the same set for each such promotion
            if self.sold_anywhere is None:
                self.sold_anywhere = {p.storefront for plan in self.plans.values()
                                      for p in plan.prices}
            sold = self.sold_anywhere
        else:
            sold = {p.storefront for name in plans if name in self.plans
                    for p in self.plans[name].prices}
        covered = [sf for sf in self.storefronts.values() if sf.name in sold]
        wrong = [sf for sf in covered if sf.currency != currency]
        if not wrong:
            return
        currencies = sorted({sf.currency for sf in wrong})
        names = _join([sf.name if len(currencies) == 1 else f"{sf.name} ({sf.currency})"
                       for sf in wrong])
        which = (f", which {'sells' if len(wrong) == 1 else 'sell'} in {currencies[0]}"
                 if len(currencies) == 1 else "")
        fits = [sf.name for sf in covered if sf.currency == currency]
        self.error("currency", f"promotion '{name}' takes {currency} off but covers {names}"
                   f"{which}", span, f"name the storefronts it is for: 'storefronts "
                   f"{', '.join(fits)}'" if fits else None)

    def check_taxes(self) -> tuple[m.TaxTable, ...]:
        result = []
        for name, decl in self.unique("tax table", self.decls(n.Tax)).items():
            rates = []
            closed = None
            for r in decl.rates:
                if closed is not None:
                    self.warning("RR101", f"this rate never applies: the rate at "
                                 f"{closed.span} always matches first", r.span)
                if not Decimal(0) <= r.rate <= Decimal(100):
                    self.error("range", "a tax rate must be between 0% and 100%", r.span)
                if r.when is not None:
                    self.condition(r.when, "tax")
                elif closed is None:
                    closed = r
                rates.append(m.TaxRate(r.rate / 100, m.Rule(f"tax {name}", r.when, r.span)))
            result.append(m.TaxTable(name, tuple(rates), decl.span))
        return tuple(result)

    def check_route(self) -> tuple[m.RouteRule, ...]:
        routes = self.decls(n.Route)
        for extra in routes[1:]:
            self.error("duplicate", "a ruleset has one 'route' block", extra.span)
        if not routes:
            return ()
        rules = []
        taken: set[str] = set()  # storefronts an earlier line surely routes
        for r in routes[0].rules:
            errors = len(self.diagnostics)
            if r.psp.name not in self.psps:
                self.unknown("psp", r.psp, self.psps)
            if r.when is not None:
                self.condition(r.when, "route")
            holds = {s: _holds(r.when, sf) for s, sf in self.storefronts.items()
                     if s not in taken}
            if len(self.diagnostics) == errors:
                self.listed_psp(r.psp, "this route line",
                                [s for s, h in holds.items() if h is not False])
            taken.update(s for s, h in holds.items()
                         if h is True and r.psp.name in self.storefronts[s].psps)
            rules.append(m.RouteRule(r.psp.name, m.Rule(f"route {r.psp.name}", r.when, r.span)))
        return tuple(rules)

    def listed_psp(self, psp: n.Ref, who: str, storefronts: list[str],
                   retry: bool = False) -> None:
        """Report a PSP that none of the storefronts a rule can apply to lists (§5.1).

        Store storefronts run their own retries, so a ``retry`` PSP is checked against
        the others; a rule that can apply nowhere has nothing to check."""
        stores = [s for s in storefronts if retry and self.storefronts[s].store_managed]
        fronts = [self.storefronts[s] for s in storefronts if s not in stores]
        if not fronts or any(psp.name in sf.psps for sf in fronts):
            return
        hint = "; ".join(f"{sf.name} lists {', '.join(sf.psps)}" for sf in fronts)
        if stores:
            hint += f" (on {_join(stores)} the store retries)"
        self.error("unlisted_psp", f"psp '{psp.name}' is not listed by any storefront {who} "
                   f"can apply to{did_you_mean(psp.name, [p for sf in fronts for p in sf.psps])}",
                   psp.span, hint)

    def check_dunning(self) -> tuple[m.DunningPolicy, ...]:
        result = []
        fallback = None
        vias: list[tuple[n.Dunning, n.Ref]] = []  # checked once every policy is known
        policies = list(self.unique("dunning policy", self.decls(n.Dunning)).values())
        for decl in policies:
            name = decl.name
            items = self.single_items(f"dunning '{name}'", decl.items,
                                      ("retry", "via", "no_retry", "grace", "then"))
            applies = None
            errors = len(self.diagnostics)
            if decl.when is not None:
                self.condition(decl.when, "dunning")
                applies = m.Rule(f"dunning {name}", decl.when, decl.span)
            elif fallback is not None:
                self.warning("RR101", f"dunning '{name}' never applies: '{fallback.name}' "
                             "has no 'for' condition and comes first", decl.name_span)
            else:
                fallback = decl
            via = None
            if "via" in items:
                via = items["via"].value.name
                if via not in self.psps:
                    self.unknown("psp", items["via"].value, self.psps)
                elif len(self.diagnostics) == errors:
                    vias.append((decl, items["via"].value))
            no_retry = None
            if "no_retry" in items:
                self.condition(items["no_retry"].value, "dunning")
                no_retry = m.Rule(f"dunning {name}", items["no_retry"].value,
                                  items["no_retry"].span)
            grace, keep = items["grace"].value if "grace" in items else (None, "keep")
            if grace is not None:
                self.duration(grace, items["grace"].span, "grace")
            for retry in (items["retry"].value if "retry" in items else ()):
                if not self.duration(retry, items["retry"].span, "a retry"):
                    break
            then: Literal["cancel", "pause", "unpaid"] = (
                items["then"].value if "then" in items else "cancel")
            result.append(m.DunningPolicy(
                name, applies, items["retry"].value if "retry" in items else (), via, no_retry,
                grace, keep == "keep", then, decl.span))
        self.dunning_psps(vias, fallback, [d for d in policies if d.when is not None])
        return tuple(result)

    def dunning_psps(self, vias: list[tuple[n.Dunning, n.Ref]], fallback: n.Dunning | None,
                     conditional: list[n.Dunning]) -> None:
        """Check each 'retry via' against the storefronts its policy can apply to: the
        first policy whose 'for' holds wins, the fallback takes what none surely does."""
        for decl, via in vias:
            if decl.when is None and decl is not fallback:
                continue  # never applies (a warning says so)
            earlier = conditional if decl.when is None else conditional[
                :next(i for i, d in enumerate(conditional) if d is decl)]
            can = [s for s, sf in self.storefronts.items()
                   if _holds(decl.when, sf) is not False
                   and not any(_holds(d.when, sf) is True for d in earlier)]
            self.listed_psp(via, f"dunning '{decl.name}'", can, retry=True)

    def check_lifecycle(self) -> m.LifecyclePolicy:
        blocks = self.decls(n.Lifecycle)
        for extra in blocks[1:]:
            self.error("duplicate", "a ruleset has one 'lifecycle' block", extra.span)
        if not blocks:
            return m.DEFAULT_LIFECYCLE
        items = self.single_items("lifecycle", blocks[0].items, ("pause", "cancel", "refund"))
        pause_max = pause_rule = None
        if "pause" in items:
            pause_max, when = items["pause"].value
            self.duration(pause_max, items["pause"].span, "a pause")
            if when is not None:
                self.condition(when, "lifecycle")
            pause_rule = m.Rule("lifecycle pause", when, items["pause"].span)
        cancel: Literal["period_end", "immediate"] = (
            items["cancel"].value if "cancel" in items else "period_end")
        refund: Literal["full", "prorated", "none"]
        after: Literal["prorated", "none", "full"]
        refund, within, after = items["refund"].value if "refund" in items else ("none", None,
                                                                                   "none")
        if within is not None:
            self.duration(within, items["refund"].span, "a refund window")
        return m.LifecyclePolicy(pause_max, pause_rule, cancel, refund, within, after,
                                 blocks[0].span)

    # -- expressions -----------------------------------------------------------------
    def infer(self, expr: n.Expr, context: str, expected: str | None = None) -> m.Type:
        found = self._infer(expr, context, expected)
        self.types[id(expr)] = found
        return found

    def _infer(self, expr: n.Expr, context: str, expected: str | None) -> m.Type:
        if isinstance(expr, n.Literal):
            if expr.kind == "money":
                return self.check_money(expr)
            if expr.kind == "duration":
                self.duration(cast(n.Duration, expr.value), expr.span, "a duration")
            return _literal_type(expr)
        if isinstance(expr, n.Name):
            return self.name(expr, context, expected)
        if isinstance(expr, n.Field):
            return self.field(expr, context)
        if isinstance(expr, n.SetLit):
            elem: m.Type | None = None
            for item in expr.items:
                t = self.infer(item, context, expected)
                if elem is None:
                    elem = t
                elif t.kind != "error" and not _comparable(elem, t):
                    self.error("type", f"a set mixes {elem} and {t}", item.span)
            return T("set", elem=elem or T("string"))
        if isinstance(expr, n.Unary):
            inner = self.infer(expr.operand, context)
            if inner.kind == "error":
                return inner
            if expr.op == "not":
                if inner.kind != "bool":
                    self.error("type", f"'not' needs true or false, found {inner}", expr.span)
                return BOOL
            if inner.kind not in ("int", "decimal", "percent", "money"):
                self.error("type", f"cannot negate {inner}", expr.span)
                return T("error")
            if not self.needs_value(expr.operand, inner, "'-'"):
                return T("error")
            return inner
        if isinstance(expr, n.Binary):
            return self.binary(expr, context)
        if isinstance(expr, n.Call):
            return self.call(expr, context)
        raise AssertionError(expr)  # pragma: no cover

    def name(self, expr: n.Name, context: str, expected: str | None) -> m.Type:
        roots = _ROOTS[context]
        if expr.name in roots:
            if expr.name == "total":
                return T("money")
            if expr.name in ("storefront", "plan"):
                return T(expr.name)
            self.error("type", f"'{expr.name}' is an object; name one of its fields, like "
                       f"'{expr.name}.{_example_field(expr.name, self.attributes)}'", expr.span)
            return T("error")
        spaces = {"channel": m.CHANNELS, "storefront": self.storefronts, "plan": self.plan_names,
                  "psp": self.psps, "region": self.regions}
        if expected in spaces and expr.name in spaces[expected]:
            return T(expected)
        for kind, names in spaces.items():
            if expr.name in names:
                return T(kind)
        if expr.name in ("customer", "subscription", "event", "payment", "total"):
            self.error("scope", f"'{expr.name}' is not available in {_a(context)} rule", expr.span)
            return T("error")
        candidates: list[str] = list(roots)
        candidates += list(spaces[expected]) if expected in spaces else [
            x for names in spaces.values() for x in names]
        self.error("unknown_name", f"unknown name '{expr.name}'{did_you_mean(expr.name, candidates)}",
                   expr.span)
        return T("error")

    def field(self, expr: n.Field, context: str) -> m.Type:
        roots = _ROOTS[context]
        if not isinstance(expr.obj, n.Name) or expr.obj.name not in _FIELDS.keys() | {"customer"}:
            base = self.infer(expr.obj, context)
            if base.kind in _FIELDS and base.kind in ("storefront", "plan"):
                fields = _FIELDS[base.kind]
                if expr.name in fields:
                    return fields[expr.name]
            if base.kind != "error":
                self.error("type", f"{base} has no field '{expr.name}'", expr.span)
            return T("error")
        root = expr.obj.name
        if root not in roots:
            self.error("scope", f"'{root}' is not available in {_a(context)} rule", expr.obj.span)
            return T("error")
        if root == "customer":
            if expr.name == "id":
                return STRING
            attr = self.attributes.get(expr.name)
            if attr is None:
                self.error("unknown_attribute", f"unknown customer attribute '{expr.name}'"
                           f"{did_you_mean(expr.name, [*self.attributes, 'id'])}", expr.span)
                return T("error")
            return T(attr.type, optional=attr.default is None)
        fields = _FIELDS[root]
        if expr.name not in fields:
            self.error("unknown_field", f"{root} has no field '{expr.name}'"
                       f"{did_you_mean(expr.name, fields)}", expr.span,
                       f"{root} has " + ", ".join(sorted(fields)))
            return T("error")
        return fields[expr.name]

    def binary(self, expr: n.Binary, context: str) -> m.Type:
        op = expr.op
        if op in ("and", "or"):
            for side in (expr.left, expr.right):
                t = self.infer(side, context)
                if t.kind not in ("bool", "error"):
                    self.error("type", f"'{op}' needs true or false on both sides, found {t}",
                               side.span)
            return BOOL
        # names take their namespace from the other side: storefront == web_eu
        if isinstance(expr.left, n.Name) and not isinstance(expr.right, n.Name):
            right = self.infer(expr.right, context)
            hint = right.elem.kind if right.kind == "set" and right.elem else right.kind
            left = self.infer(expr.left, context, hint)
        else:
            left = self.infer(expr.left, context)
            right = self.infer(expr.right, context, left.kind)
        if "error" in (left.kind, right.kind):
            return BOOL if op in ("==", "!=", "<", "<=", ">", ">=", "in", "not in") else T("error")
        if op in ("in", "not in"):
            if right.kind != "set":
                self.error("type", f"'{op}' needs a set on its right, found {right}",
                           expr.right.span)
            elif right.elem is not None and not _comparable(left, right.elem):
                self.error("type", f"cannot look for {left} in a {right}", expr.span)
            return BOOL
        if op in ("==", "!=", "<", "<=", ">", ">="):
            if not _comparable(left, right):
                self.error("type", f"cannot compare {left} with {right}", expr.span)
            elif op not in ("==", "!=") and left.kind not in (
                    "int", "decimal", "percent", "money", "date", "datetime"):
                self.error("type", f"'{op}' does not order {left} values", expr.span)
            self.money_pair(left, right, expr)
            return BOOL
        if not (self.needs_value(expr.left, left, f"'{op}'")
                & self.needs_value(expr.right, right, f"'{op}'")):
            return T("error")
        return self.arithmetic(op, left, right, expr)

    def money_pair(self, left: m.Type, right: m.Type, expr: n.Binary) -> None:
        if (left.kind == right.kind == "money" and left.currency and right.currency
                and left.currency != right.currency):
            self.error("currency", f"cannot mix {left.currency} and {right.currency} in one "
                       "expression", expr.span)

    def arithmetic(self, op: str, left: m.Type, right: m.Type, expr: n.Binary) -> m.Type:
        kinds = (left.kind, right.kind)
        if "money" in kinds:
            self.money_pair(left, right, expr)
            currency = left.currency or right.currency
            if op in ("+", "-") and kinds == ("money", "money"):
                return T("money", currency)
            if op == "*" and (set(kinds) - {"money"}) <= {"int", "decimal", "percent"} \
                    and kinds != ("money", "money"):
                return T("money", currency)
            if op == "/" and left.kind == "money" and right.kind in ("int", "decimal"):
                return T("money", currency)
            if op == "/" and kinds == ("money", "money"):
                return T("decimal")
        elif set(kinds) <= NUMERIC:
            return T("decimal" if "decimal" in kinds or op == "/" else "int")
        elif kinds == ("percent", "percent") and op in ("+", "-"):
            return T("percent")
        elif left.kind in TEMPORAL and right.kind == "duration" and op in ("+", "-"):
            return left
        self.error("type", f"cannot apply '{op}' to {left} and {right}", expr.span)
        return T("error")

    def call(self, expr: n.Call, context: str) -> m.Type:
        if expr.func not in _FUNCTIONS:
            self.error("unknown_function", f"unknown function '{expr.func}'"
                       f"{did_you_mean(expr.func, _FUNCTIONS)}", expr.span,
                       "functions: " + ", ".join(_FUNCTIONS))
            return T("error")
        args = [self.infer(a, context) for a in expr.args]
        if any(a.kind == "error" for a in args):
            return T("error")
        if not all([self.needs_value(e, a, f"{expr.func}()") for e, a in zip(expr.args, args, strict=True)]):
            return T("error")
        if expr.func in ("min", "max"):
            if len(args) < 2:
                self.error("arity", f"{expr.func}() takes two or more values", expr.span)
                return T("error")
            for a in args[1:]:
                if not _comparable(args[0], a) or args[0].kind not in (
                        "int", "decimal", "percent", "money", "date", "datetime"):
                    self.error("type", f"{expr.func}() cannot compare {args[0]} with {a}",
                               expr.span)
                    return T("error")
                if args[0].kind in TEMPORAL and a.kind != args[0].kind:
                    self.error("type", f"{expr.func}() cannot mix dates and datetimes; write "
                               "the date as a datetime (2027-01-01T00:00:00Z)", expr.span)
                    return T("error")
            if all(a.kind in NUMERIC for a in args):
                return T("decimal" if any(a.kind == "decimal" for a in args) else "int")
            return args[0]
        if expr.func == "round":
            if not 1 <= len(args) <= 2 or args[0].kind not in ("decimal", "int", "money") or (
                    len(args) == 2 and args[1].kind != "int"):
                self.error("type", "round() takes a number or money and optional decimals (int)",
                           expr.span)
                return T("error")
            if len(args) == 2 and not (
                    isinstance(expr.args[1], n.Literal) and isinstance(expr.args[1].value, int)
                    and 0 <= expr.args[1].value <= MAX_ROUND_PLACES):
                self.error("range", "round()'s decimals must be a whole number from 0 to "
                           f"{MAX_ROUND_PLACES}", expr.span)
                return T("error")
            return args[0] if args[0].kind == "money" else T("decimal")
        if len(args) != 2 or any(a.kind not in TEMPORAL for a in args):
            self.error("type", "days_between() takes two dates", expr.span)
            return T("error")
        return INT


_ROOT_NAMES = frozenset({"customer", "storefront", "plan", "subscription", "event", "payment",
                         "total"})
_STOREFRONT_FIELDS = {"name": "name", "channel": "channel", "region": "region",
                      "currency": "currency"}


def _holds(expr: n.Expr | None, sf: m.Storefront) -> bool | None:
    """Whether a rule condition holds on storefront ``sf``: True or False where the
    storefront alone decides it, None where it depends on more (customer, total, …).

    Three-valued: ``x and unknown`` is unknown unless x is false, and so on. No
    condition always holds."""
    if expr is None:
        return True
    if isinstance(expr, n.Literal) and expr.kind == "bool":
        return bool(expr.value)
    if isinstance(expr, n.Unary) and expr.op == "not":
        inner = _holds(expr.operand, sf)
        return None if inner is None else not inner
    if not isinstance(expr, n.Binary):
        return None
    if expr.op in ("and", "or"):
        left, right = _holds(expr.left, sf), _holds(expr.right, sf)
        decisive = expr.op == "or"  # the value that decides on its own
        if left is decisive or right is decisive:
            return decisive
        return None if left is None or right is None else not decisive
    if expr.op not in ("==", "!=", "in", "not in"):
        return None
    a, b = _storefront_value(expr.left, sf), _storefront_value(expr.right, sf)
    if a is None or b is None:
        return None
    if expr.op in ("==", "!="):
        if not (isinstance(a, str) and isinstance(b, str)):
            return None
        return (a == b) == (expr.op == "==")
    if not (isinstance(a, str) and isinstance(b, frozenset)):
        return None
    return (a in b) == (expr.op == "in")


def _storefront_value(expr: n.Expr, sf: m.Storefront) -> str | frozenset[str] | None:
    """What an operand is on storefront ``sf`` if that alone decides it: a field of the
    storefront, a name (``web``, ``EU``), a string or a set of those; else None."""
    if isinstance(expr, n.Name):
        if expr.name == "storefront":
            return sf.name
        return None if expr.name in _ROOT_NAMES else expr.name
    if isinstance(expr, n.Literal):
        return expr.value if expr.kind == "string" and isinstance(expr.value, str) else None
    if isinstance(expr, n.SetLit):
        items = [_storefront_value(i, sf) for i in expr.items]
        if all(isinstance(i, str) for i in items):
            return frozenset(cast(list[str], items))
        return None
    if isinstance(expr, n.Field):
        obj = expr.obj
        if isinstance(obj, n.Name) and obj.name == "subscription" and expr.name == "storefront":
            return sf.name
        is_storefront = (isinstance(obj, n.Name) and obj.name == "storefront") or (
            isinstance(obj, n.Field) and obj.name == "storefront"
            and isinstance(obj.obj, n.Name) and obj.obj.name == "subscription")
        if is_storefront and expr.name in _STOREFRONT_FIELDS:
            return cast(str, getattr(sf, _STOREFRONT_FIELDS[expr.name]))
    return None


def _join(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _literal_type(lit: n.Literal) -> m.Type:
    if lit.kind == "money":
        return T("money", cast(n.Money, lit.value).currency)
    return T(lit.kind)


def _assignable(found: str, wanted: str) -> bool:
    return found == wanted or (found == "int" and wanted == "decimal")


def _comparable(a: m.Type, b: m.Type) -> bool:
    if a.kind == b.kind:
        return True
    pair = {a.kind, b.kind}
    return pair <= NUMERIC or pair <= TEMPORAL


def _example_field(root: str, attributes: dict[str, m.Attribute]) -> str:
    if root == "customer":
        return next(iter(attributes), "id")
    return next(iter(_FIELDS[root]))


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


__all__ += ["minor_units", "suggest"]
