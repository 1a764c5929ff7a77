"""The pure decision path: first-match tables, price schedules and a generated checkout
decision per (plan, storefront).

Three things make a decision's cost independent of the size of the ruleset:

- :class:`FirstMatch`: a first-match table (a tax table, the route) split into
  segments; a run of consecutive rules whose conditions test one attribute for
  equality (``customer.country == "DE"``, ``storefront == web_eu``, ``x in {"a", "b"}``)
  becomes one dict lookup, so a table of 800 such rules costs one lookup, and the
  first-match order is kept (a value maps to the first rule of the run that holds for
  it; the rules between runs are tried in order).
- :class:`Schedule`: the price line in force on a day as a bisect table. The answer of
  :func:`revrules.pricing.price_entry` only changes at the lines' start dates, so it is
  computed once per interval between them.
- :class:`CheckoutDecider`: for one (plan, storefront), Python source generated for
  every condition a checkout quote evaluates -- eligibility, promotion conditions, the
  tax tables and the route -- with the storefront, the plan, the cycle, the status and
  the event type folded in as constants (``storefront.channel == telecom`` is
  ``False`` in a web storefront and disappears), indexed tables as dict lookups, and
  customer attributes read straight from the customer dict: straight-line code on plain
  values. It is generated and compiled once, on first use, and kept with the ruleset
  (:func:`deciders`).

The generated code obeys the compiler's rule (tests/test_codegen_safety.py): nothing
from outside reaches the source except ``ascii()``/``repr()`` of a value or a name that
matched the grammar; every other value (dates, decimals, sets, the tables) is passed in
as a named constant.

:func:`quote_checkout` prices a checkout with these, exactly as
:func:`revrules.quoting.reference_quote` does by running the checkout transition; it
answers None (and the caller falls back to the reference path) for anything it does not
cover: an event the transition would refuse, a price held for consent at a trial's end,
any exception. Nothing here reads more of a state than the subscription ids, the time
order and the redemption counts, and nothing writes.
"""

from __future__ import annotations

import bisect
import datetime as dt
import decimal
import hashlib
import linecache
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from . import model as m
from . import nodes as n
from . import runtime as rt
from .compiler import _CMP_HELPER, _HELPERS, Ctx, _Generator
from .diagnostics import did_you_mean
from .results import Discount, Trace

if TYPE_CHECKING:
    from .engine import Engine
    from .events import Event
    from .quoting import Quote
    from .ruleset import Ruleset
    from .state import State

__all__ = ["CheckoutDecider", "FirstMatch", "Schedule", "Tables", "deciders", "quote_checkout"]

ZERO = Decimal(0)
C = rt.CONTEXT
_add, _sub, _mul, _div = C.add, C.subtract, C.multiply, C.divide


# -- first-match tables ----------------------------------------------------------------
#: a comparison with its operands swapped
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
#: the context fields an index may key on (as the compiler reads them)
_KEYS: dict[str, Callable[[Ctx], Any]] = {
    "c.customer_id": operator.attrgetter("customer_id"),
    "c.storefront.name": operator.attrgetter("storefront.name"),
    "c.storefront.channel": operator.attrgetter("storefront.channel"),
    "c.storefront.region": operator.attrgetter("storefront.region"),
    "c.storefront.currency": operator.attrgetter("storefront.currency"),
    "c.plan.name": operator.attrgetter("plan.name"),
    "c.status": operator.attrgetter("status"),
    "c.event_type": operator.attrgetter("event_type"),
    "c.reason": operator.attrgetter("reason"),
    "c.psp": operator.attrgetter("psp"),
}
#: the kinds whose equality is Python equality on hashable values
_HASHABLE_KINDS = frozenset(("string", "int", "bool", "channel", "storefront", "plan", "psp",
                             "region"))
_NAME_KINDS = frozenset(("channel", "storefront", "plan", "psp", "region"))


def equality_test(model: m.Model, rule: m.Rule) -> tuple[n.Expr, tuple[Any, ...]] | None:
    """``(key, values)`` when ``rule``'s condition is ``key == value`` or ``key in {...}``
    with literal values of a hashable kind (so that a dict lookup of the key's value
    decides it exactly as the compiled ``==`` / ``in`` does), else None."""
    e = rule.when
    if not isinstance(e, n.Binary) or e.op not in ("==", "in"):
        return None
    types = model.types
    if e.op == "==":
        for key, value in ((e.left, e.right), (e.right, e.left)):
            if _is_key(key) and types[id(key)].kind in _HASHABLE_KINDS:
                literal = _literal(value, types)
                if literal is not None and types[id(key)].kind == types[id(value)].kind:
                    return key, literal
        return None
    if not _is_key(e.left) or types[id(e.left)].kind not in _HASHABLE_KINDS or \
            not isinstance(e.right, n.SetLit):
        return None
    values: list[Any] = []
    for item in e.right.items:
        literal = _literal(item, types)
        if literal is None or types[id(item)].kind != types[id(e.left)].kind:
            return None
        values.extend(literal)
    return e.left, tuple(values)


def _is_key(e: n.Expr) -> bool:
    if isinstance(e, n.Field) and isinstance(e.obj, n.Name):
        if e.obj.name == "customer":
            return True
        return (e.obj.name, e.name) in _FIELD_KEYS
    return isinstance(e, n.Name) and e.name in ("storefront", "plan")


_FIELD_KEYS = frozenset((
    ("storefront", "name"), ("storefront", "channel"), ("storefront", "region"),
    ("storefront", "currency"), ("plan", "name"), ("subscription", "status"),
    ("subscription", "plan"), ("subscription", "storefront"), ("event", "type"),
    ("payment", "reason"), ("payment", "psp")))


def _literal(e: n.Expr, types: Mapping[int, m.Type]) -> tuple[Any] | None:
    kind = types[id(e)].kind
    if isinstance(e, n.Literal) and e.kind in ("string", "int", "bool") and \
            isinstance(e.value, (str, int)):
        return (e.value,)
    if isinstance(e, n.Name) and kind in _NAME_KINDS:
        return (e.name,)
    return None


def key_code(model: m.Model, key: n.Expr) -> str:
    """The compiler's code for an index key (``c.customer['country']``, ``c.storefront.name``)."""
    code = _Generator(model).expr(key)
    if code != "c.customer_id" and code.startswith("c.customer["):
        return code
    if code not in _KEYS:
        raise ValueError(f"not an index key: {code}")
    return code


def key_getter(code: str) -> Callable[[Ctx], Any]:
    if code in _KEYS:
        return _KEYS[code]
    attribute = _attribute_name(code)
    return lambda c: c.customer[attribute]


def _attribute_name(code: str) -> str:
    # c.customer['name'] (the compiler writes ascii() of a grammar name)
    assert code.startswith("c.customer['") and code.endswith("']"), code
    return code[len("c.customer['"):-2]


class FirstMatch:
    """A first-match table: ``first(ctx)`` is the position of the first item whose test
    holds (and that ``accept`` takes), as a scan in order would find it."""

    def __init__(self, model: m.Model, rules: Sequence[m.Rule],
                 tests: Sequence[Callable[[Ctx], bool] | None], *, index: bool = True):
        """``index=False``: every rule is tested in order (a coverage build, whose tests
        record each condition they evaluate)."""
        self.segments: list[tuple[Any, ...]] = []
        run: list[tuple[int, tuple[Any, ...]]] = []
        run_key: str | None = None
        for position, (rule, test) in enumerate(zip(rules, tests, strict=True)):
            found = equality_test(model, rule) if test is not None and index else None
            code = key_code(model, found[0]) if found is not None else None
            if code is not None and code == run_key:
                assert found is not None
                run.append((position, found[1]))
                continue
            self._close(run_key, run)
            run, run_key = [], None
            if code is not None:
                assert found is not None
                run, run_key = [(position, found[1])], code
            else:
                self.segments.append(("test", position, test))
        self._close(run_key, run)

    def _close(self, code: str | None, run: list[tuple[int, tuple[Any, ...]]]) -> None:
        if code is None or not run:
            return
        index: dict[Any, list[int]] = {}
        for position, values in run:
            for value in values:
                positions = index.setdefault(value, [])
                if position not in positions:
                    positions.append(position)
        self.segments.append(("index", key_getter(code),
                              {k: tuple(v) for k, v in index.items()}))

    def first(self, ctx: Ctx, accept: Callable[[int], bool] | None = None) -> int | None:
        for segment in self.segments:
            if segment[0] == "test":
                position, test = segment[1], segment[2]
                if (accept is None or accept(position)) and (test is None or test(ctx)):
                    return position  # type: ignore[no-any-return]
            else:
                for position in segment[2].get(segment[1](ctx), ()):
                    if accept is None or accept(position):
                        return position  # type: ignore[no-any-return]
        return None


# -- price schedules -------------------------------------------------------------------
class Schedule:
    """The price line in force on a day, for new (or existing) subscriptions, as a
    bisect table over the lines' start dates; the same answer as scanning them."""

    def __init__(self, entries: Sequence[m.PriceEntry], existing: bool):
        starts = sorted({s for s in (e.existing if existing else e.effective
                                     for e in entries) if s is not None})
        self.starts = starts
        # answers[i]: for a day with exactly i start dates on or before it
        days = [dt.date.min, *starts]
        self.answers = [_scan(entries, day, existing) for day in days]

    def on(self, day: dt.date) -> m.PriceEntry | None:
        return self.answers[bisect.bisect_right(self.starts, day)]


def _scan(entries: Sequence[m.PriceEntry], day: dt.date, existing: bool) -> m.PriceEntry | None:
    found = None
    for entry in entries:
        start = entry.existing if existing else entry.effective
        if start is None or start <= day:
            found = entry
    return found


class Tables:
    """A ruleset's lookup tables for the pure decision path, built on first use."""

    def __init__(self, rules: Ruleset):
        self._rules = weakref.ref(rules)
        self._taxes: tuple[FirstMatch, ...] | None = None
        self._route: FirstMatch | None = None
        self._schedules: dict[tuple[str, str, bool], Schedule] = {}
        self._deciders: Deciders | None = None
        #: the figures of undiscounted charges (revrules.pricing.quote)
        self.figures: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # a coverage build records every condition it evaluates: nothing is skipped
        self.index = not rules.compiled.conditions

    @property
    def deciders(self) -> Deciders:
        """The generated checkout deciders of the ruleset."""
        if self._deciders is None:
            self._deciders = Deciders(self.rules)
        return self._deciders

    @property
    def rules(self) -> Ruleset:
        rules = self._rules()
        assert rules is not None
        return rules

    @property
    def taxes(self) -> tuple[FirstMatch, ...]:
        if self._taxes is None:
            rules = self.rules
            self._taxes = tuple(FirstMatch(rules.model, [r.rule for r, _ in table],
                                           [t for _, t in table], index=self.index)
                                for table in rules.taxes)
        return self._taxes

    @property
    def route(self) -> FirstMatch:
        if self._route is None:
            rules = self.rules
            self._route = FirstMatch(rules.model, [line.rule for line, _ in rules.route],
                                     [t for _, t in rules.route], index=self.index)
        return self._route

    def schedule(self, plan: str, storefront: str, existing: bool) -> Schedule:
        key = (plan, storefront, existing)
        found = self._schedules.get(key)
        if found is None:
            found = self._schedules[key] = Schedule(
                self.rules.prices.get((plan, storefront), ()), existing)
        return found


_TABLES: weakref.WeakKeyDictionary[Ruleset, Tables] = weakref.WeakKeyDictionary()


def tables(rules: Ruleset) -> Tables:
    """The decision tables of ``rules`` (built once per ruleset, on first use)."""
    found = getattr(rules, "decision_tables", None)
    if found is not None:
        return found  # type: ignore[no-any-return]
    found = _TABLES.get(rules)
    if found is None:
        found = _TABLES[rules] = Tables(rules)
    return found


# -- generated decision code -----------------------------------------------------------
#: what the context reads in each phase of a checkout quote, as code: ``co`` the
#: checkout (a new subscription, cycle 1), ``ct`` the checkout once a trial is granted
#: (status trialing), ``tk`` the tick that ends the trial and charges cycle 1
_PHASES = ("co", "ct", "tk")
_ARGS = "cu, cid, at, er, ea, ep"


class _Folding(_Generator):
    """The compiler's expression generator, with what one (plan, storefront, phase)
    fixes folded to constants and the rest read from plain local values."""

    def __init__(self, model: m.Model, namespace: dict[str, Any]):
        super().__init__(model)
        self.namespace = namespace
        self.scope: dict[str, str] = {}
        self.needs_context = False
        self.total_refs = 0  # reads of the route's total as money
        self._const: set[str] = set()

    def use(self, scope: Mapping[str, Any], local: Mapping[str, str]) -> None:
        self.scope = {code: self.constant(value) for code, value in scope.items()}
        for code in self.scope.values():
            self._const.add(code)
        self.scope.update(local)

    def constant(self, value: Any) -> str:
        code = super().constant(value)
        self._const.add(code)
        return code

    def is_constant(self, code: str) -> bool:
        return code in self._const

    def value_of(self, code: str) -> Any:
        return eval(code, self._globals())  # noqa: S307 - a constant of our own

    def _globals(self) -> dict[str, Any]:
        g: dict[str, Any] = {h: getattr(rt, h) for h in _HELPERS}
        g["Money_"] = rt.Money
        g.update(self.constants)
        return g

    def expr(self, e: n.Expr, want_datetime: bool = False) -> str:
        if isinstance(e, n.Field) and isinstance(e.obj, n.Name) and e.obj.name == "customer":
            return "cid" if e.name == "id" else f"cu[{ascii(e.name)}]"
        if isinstance(e, (n.Binary, n.Unary)):
            self._note_context(e)
        code = super().expr(e, want_datetime)
        if code in self.scope:
            if code == "c.total":
                self.total_refs += 1
            return self.scope[code]
        return self.fold(code)

    def value_field(self, e: n.Field) -> str:
        code = super().value_field(e)
        for kind in ("storefront", "plan"):
            prefix = f"c.{kind}."
            if code.startswith(prefix) and f"c.{kind}" in self.namespace:
                obj = self.namespace[f"c.{kind}"]
                return self.constant(getattr(obj, code[len(prefix):]))
        return code

    def money_comparison(self, e: n.Binary) -> str:
        """A comparison of money; ``total`` against an amount in the storefront's currency
        compares the decimals (what ``m_ge`` and its kin do once the currencies agree)."""
        left, right = self.expr(e.left), self.expr(e.right)
        currency = self.namespace["c.storefront"].currency
        for a, b, op in ((left, right, e.op), (right, left, _FLIP[e.op])):
            if a == "total" and self.is_constant(b):
                value = self.value_of(b)
                if isinstance(value, rt.Money) and value.currency == currency:
                    self.total_refs -= 1
                    return f"(tot {op} {self.constant(value.amount)})"
        return f"{_CMP_HELPER[e.op]}({left}, {right})"

    def _note_context(self, e: n.Expr) -> None:
        # decimal arithmetic written as Python operators follows the current context
        if isinstance(e, n.Binary) and e.op in ("+", "-", "*"):
            kinds = {self.type(e.left).kind, self.type(e.right).kind}
            if not kinds <= {"int", "money", "date", "datetime", "duration"}:
                self.needs_context = True
        elif isinstance(e, n.Unary) and e.op == "-":
            if self.type(e.operand).kind not in ("int", "money"):
                self.needs_context = True

    def fold(self, code: str) -> str:
        """``code`` as a constant when it reads nothing that varies (evaluated now, as it
        would be at run time); unchanged if it does, or if evaluating it fails."""
        if self.is_constant(code):
            return code
        try:
            names = compile(code, "<fold>", "eval").co_names
        except SyntaxError:
            return code
        known = set(self.constants) | set(_HELPERS)
        # attribute names also appear in co_names: any name that is not a known
        # constant or helper (c, cu, at, ...) keeps the code as it is
        if not set(names) <= known:
            return code
        try:
            with decimal.localcontext(rt.CONTEXT):
                value = self.value_of(code)
        except Exception:  # noqa: BLE001 - it fails at run time the same way
            return code
        return self.constant(value)

    def binary(self, e: n.Binary) -> str:
        if e.op in _FLIP and self.type(e.left).kind == "money" and \
                self.type(e.right).kind == "money":
            return self.money_comparison(e)
        if e.op not in ("and", "or"):
            return super().binary(e)
        absorbing = e.op == "or"  # or: True absorbs; and: False absorbs
        items: list[str] = []
        for x in e.chain():
            code = self.expr(x)
            if self.is_constant(code):
                value = bool(self.value_of(code))
                if value is not absorbing:
                    continue  # the neutral element: and True, or False
                items.append(code)
                break  # what follows is never evaluated
            items.append(code)
        if not items:
            return self.constant(not absorbing)
        if len(items) == 1:
            return items[0]
        return "(" + f" {e.op} ".join(items) + ")"


class CheckoutDecider:
    """The generated checkout decision of one (plan, storefront): the conditions of every
    phase of a checkout quote as straight-line code (see the module's doc)."""

    def __init__(self, made: Deciders, plan: m.Plan, sf: m.Storefront):
        rules = made.rules
        model = rules.model
        self.plan, self.sf = plan, sf
        self.currency = sf.currency
        namespace: dict[str, Any] = {"c.storefront": sf, "c.plan": plan}
        gen = _Folding(model, namespace)
        cite = made.cite
        self.cite = cite
        lines = gen.lines
        self.rules_rounding = rules.rounding
        self.codes = rules.codes
        self.automatic = rules.automatic.get((plan.name, sf.name), ())
        self.new_prices = tables(rules).schedule(plan.name, sf.name, False)
        self.existing_prices = tables(rules).schedule(plan.name, sf.name, True)
        self.price_trace = {id(e): cite(f"price {plan.name} {sf.name}", e.span)
                            for e in rules.prices.get((plan.name, sf.name), ())}
        self.quantum = rt.exponent(sf.currency)
        self._dates: dict[dt.date, tuple[dt.date, dt.date | None]] = {}
        self.figures: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        self.zero = ZERO.quantize(self.quantum, context=C)
        # the promotions a checkout of this pair may consider: any code, the automatic ones
        self.promotions = _promotion_facts(rules, plan, sf)
        named = plan.trial.eligibility if plan.trial is not None else None
        eligibility = rules.eligibility.get(named, ()) if named is not None else ()
        self.denies = tuple((f"{named}: {deny.reason}", cite(named, deny.rule.span))
                            for deny, _ in eligibility) if named is not None else ()
        self.tax_rates = tuple(tuple((r.rate, cite(r.rule.name, r.rule.span)) for r, _ in t)
                               for t in rules.taxes)
        routes = [(i, line) for i, (line, _) in enumerate(rules.route) if line.psp in sf.psps]
        self.routes = {i: (line.psp, cite(line.rule.name, line.rule.span))
                       for i, line in routes}
        self.route_default = (sf.psps[0], cite(f"storefront {sf.name} psp", sf.span)) \
            if sf.psps else None
        for phase in _PHASES:
            gen.use(_phase_scope(sf, plan, phase), {"c.at": "at", "c.customer_id": "cid",
                                                     **_phase_locals(phase)})
            if phase == "co" and eligibility:
                lines.append(f"def elig_{phase}({_ARGS}):")
                lines.append("    d = []")
                for position, (deny, _) in enumerate(eligibility):
                    code = gen.expr(deny.rule.when) if deny.rule.when is not None else "True"
                    _when(gen, lines, code, f"d.append({position!r})", "    ")
                lines.append("    return d")
                lines.append("")
            lines.append(f"def tax_{phase}({_ARGS}):")
            found = []
            for t, table in enumerate(rules.taxes):
                var = f"t{t}"
                found.append(var)
                _first_match(gen, lines, var, [(i, r.rule) for i, (r, _) in enumerate(table)],
                             model)
            lines.append(f"    return ({''.join(v + ', ' for v in found)})")
            lines.append("")
            lines.append(f"def route_{phase}({_ARGS}, tot):")
            gen.scope["c.total"] = "total"
            gen.total_refs = 0
            head = len(lines)
            _first_match(gen, lines, "r", [(i, line.rule) for i, line in routes], model)
            if gen.total_refs:  # the total as money, for what is not a plain comparison
                lines.insert(head, f"    total = Money_({gen.constant(sf.currency)}, tot)")
            gen.scope["c.total"] = gen.constant(None)
            lines.append("    return r")
            lines.append("")
            for k, fact in enumerate(self.promotions.values()):
                cond = fact.promotion.condition
                if cond is None or cond.when is None:
                    continue
                code = gen.expr(cond.when)
                if gen.is_constant(code):
                    fact.constant[phase] = bool(gen.value_of(code))
                    continue
                name = f"promo_{phase}_{k}"
                lines.append(f"def {name}({_ARGS}):  # {ascii(fact.promotion.name)}")
                lines.append(f"    return {code}")
                lines.append("")
                fact.tests[phase] = name
        self.needs_context = gen.needs_context
        self.live = {ph: tuple(p for p in self.automatic
                               if self.promotions[p.name].constant.get(ph, True))
                     for ph in _PHASES}
        source = gen.module_source()
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
        self.filename = f"<revrules decision {ascii(model.file)} {digest}>"
        self.source = source
        code_object = compile(source, self.filename, "exec")
        linecache.cache[self.filename] = (len(source), None, source.splitlines(True),
                                          self.filename)
        globals_: dict[str, Any] = gen._globals()
        exec(code_object, globals_)  # noqa: S102 - generated from checked rules only
        self.elig = globals_.get("elig_co")
        self.tax = {ph: globals_[f"tax_{ph}"] for ph in _PHASES}
        self.route = {ph: globals_[f"route_{ph}"] for ph in _PHASES}
        for fact in self.promotions.values():
            fact.bind({ph: globals_[name] for ph, name in fact.tests.items()})

    def dates(self, day: dt.date) -> tuple[dt.date, dt.date | None]:
        """The next charge after a charge on ``day`` (one period on) and its due date
        (the storefront's terms), remembered for a few thousand days."""
        found = self._dates.get(day)
        if found is None:
            found = (rt.add_periods(day, self.plan.every, 1),
                     rt.add(day, self.sf.terms) if self.sf.terms else None)
            if len(self._dates) < _DATES:
                self._dates[day] = found
        return found


def _phase_scope(sf: m.Storefront, plan: m.Plan, phase: str) -> dict[str, Any]:
    return {"c.storefront.name": sf.name, "c.storefront.channel": sf.channel,
            "c.storefront.region": sf.region, "c.storefront.currency": sf.currency,
            "c.plan.name": plan.name, "c.cycle": 1,
            "c.status": "trialing" if phase == "ct" else "active",
            "c.event_type": "tick" if phase == "tk" else "checkout",
            "c.total": None,
            **({"c.reason": None, "c.attempt": 0, "c.psp": None} if phase == "tk" else {})}


def _phase_locals(phase: str) -> dict[str, str]:
    return {} if phase == "tk" else {"c.reason": "er", "c.attempt": "ea", "c.psp": "ep"}


def _when(gen: _Folding, lines: list[str], code: str, then: str, indent: str) -> None:
    if gen.is_constant(code):
        if gen.value_of(code):
            lines.append(f"{indent}{then}")
        return
    lines.append(f"{indent}if {code}:")
    lines.append(f"{indent}    {then}")


#: at most this many rules in one if/elif chain of generated code (the compiler nests them)
_CHAIN = 40


def _first_match(gen: _Folding, lines: list[str], var: str, items: list[tuple[int, m.Rule]],
                 model: m.Model) -> None:
    """Code that sets ``var`` to the position of the first of ``items`` that holds (or
    None); runs of equality tests on one key are one lookup in a dict constant."""
    lines.append(f"    {var} = None")
    chain: list[tuple[int, str]] = []
    run: list[tuple[int, tuple[Any, ...]]] = []
    run_key: str | None = None

    def flush() -> None:
        for start in range(0, len(chain), _CHAIN):
            part = chain[start:start + _CHAIN]
            lines.append(f"    if {var} is None:")
            for k, (position, code) in enumerate(part):
                lines.append(f"        {'if' if k == 0 else 'elif'} {code}:")
                lines.append(f"            {var} = {position!r}")
        chain.clear()

    def close() -> None:
        nonlocal run, run_key
        if run_key is not None and run:
            index: dict[Any, int] = {}
            for position, values in run:
                for value in values:
                    index.setdefault(value, position)
            lines.append(f"    if {var} is None:")
            lines.append(f"        {var} = {gen.constant(_Index(index))}.get({run_key})")
        run, run_key = [], None

    for position, rule in items:
        if rule.when is None:
            code = gen.constant(True)
        else:
            found = equality_test(model, rule)
            if found is not None:
                key = gen.expr(found[0])
                if not gen.is_constant(key):
                    if key != run_key:
                        close()
                        flush()
                        run_key = key
                    run.append((position, found[1]))
                    continue
            code = gen.expr(rule.when)
        if gen.is_constant(code) and not gen.value_of(code):
            continue  # never holds here
        close()
        if gen.is_constant(code):  # always holds: nothing after it is looked at
            chain.append((position, "True"))
            break
        chain.append((position, code))
    close()
    flush()


#: how many days a decider remembers the dates of
_DATES = 4096


class _Index(dict[Any, int]):
    """A dict constant of generated code (a distinct type, so equal tables of two phases
    may share one name, and no table is mistaken for another constant)."""

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)


class _PromotionFacts:
    """What a checkout quote needs to know of one promotion for one (plan, storefront)."""

    __slots__ = ("promotion", "static_refusal", "tests", "constant", "requires", "test")

    def __init__(self, rules: Ruleset, p: m.Promotion, plan: m.Plan, sf: m.Storefront):
        self.promotion = p
        refusal = None
        if p.plans is not None and plan.name not in p.plans:
            refusal = f"{p.name} does not apply to plan {plan.name}"
        elif p.storefronts is not None and sf.name not in p.storefronts:
            refusal = f"{p.name} is not offered in storefront {sf.name}"
        elif p.currency is not None and p.currency != sf.currency:
            refusal = f"{p.name} takes {p.currency} off but {sf.name} sells in {sf.currency}"
        self.static_refusal = refusal
        self.tests: dict[str, str] = {}
        # phase -> the condition's value when it is a constant (absent: a test to call)
        self.constant: dict[str, bool] = {}
        self.requires = f"{p.name} requires {rules.source_text(p.condition)}" \
            if p.condition is not None else ""
        self.test: dict[str, Callable[..., bool]] = {}

    def bind(self, tests: dict[str, Callable[..., bool]]) -> None:
        self.test = tests

    def holds(self, phase: str, args: tuple[Any, ...]) -> bool:
        """The promotion's condition (True without one)."""
        if self.promotion.condition is None or self.promotion.condition.when is None:
            return True
        if phase in self.constant:
            return self.constant[phase]
        return self.test[phase](*args)


def _promotion_facts(rules: Ruleset, plan: m.Plan, sf: m.Storefront) -> dict[str, _PromotionFacts]:
    wanted = [p for p in rules.model.promotions if p.code or p.automatic]
    return {p.name: _PromotionFacts(rules, p, plan, sf) for p in wanted}


# -- the deciders of a ruleset ---------------------------------------------------------
class Deciders:
    """The generated checkout deciders of one ruleset, by (plan, storefront), each made
    on first use; with the ruleset's own shared trace entries."""

    def __init__(self, rules: Ruleset):
        from .emission import Citations

        self.rules = rules
        self.tz = rules.model.timezone
        self.cite = Citations().cite
        self._by_pair: dict[tuple[str, str], CheckoutDecider] = {}
        self.kinds = {a.name: a for a in rules.model.attributes}
        self.plain = {name: {"int": int, "string": str, "bool": bool}.get(a.type)
                      for name, a in self.kinds.items()}
        self.defaults = {a.name: a.default for a in rules.model.attributes}

    def checkout(self, plan: str, storefront: str) -> CheckoutDecider:
        key = (plan, storefront)
        found = self._by_pair.get(key)
        if found is None:
            rules = self.rules
            found = self._by_pair[key] = CheckoutDecider(
                self, rules.plans[plan], rules.storefronts[storefront])
        return found


def deciders(rules: Ruleset) -> Deciders:
    """The deciders of ``rules`` (kept with its tables: generated once per (plan,
    storefront), for every engine that runs the ruleset)."""
    return tables(rules).deciders


# -- the checkout quote ----------------------------------------------------------------
class _Fallback(Exception):
    """The generated path does not cover this event: the reference path decides it."""


_EMPTY: Mapping[str, Any] = {}


def quote_checkout(engine: Engine, ev: Event, state: State | None) -> Quote | None:
    """The quote of checkout ``ev`` against ``state`` (None: an empty state) by the
    generated decision, or None where the reference path must decide (a refusal, a case
    this path does not cover, any error: the reference path gives the exact answer)."""
    try:
        found = engine.rules.decision_tables
        if not found.index:
            return None  # a coverage build: the transition evaluates (and records) all
        made = found.deciders
        if state is not None and _needs_reference(engine, ev, state):
            return None
        customer = _customer(made, ev.customer)
        if customer is None:
            return None
        decider = made.checkout(ev.plan, ev.storefront)  # type: ignore[arg-type]
        if decider.needs_context:
            with decimal.localcontext(rt.CONTEXT):
                return _checkout(engine, decider, ev, state, customer)
        return _checkout(engine, decider, ev, state, customer)
    except Exception:  # noqa: BLE001 - the reference path gives the exact answer or error
        return None


def _needs_reference(engine: Engine, ev: Event, state: State) -> bool:
    """What the checkout transition would refuse, or what this path does not read."""
    if ev.subscription in state.subscriptions:
        return True
    if state.last_tick is not None and ev.at < state.last_tick:
        return True
    last = state.last_event.get(ev.subscription)  # type: ignore[arg-type]
    return last is not None and ev.at < last


def _customer(made: Deciders, given: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The customer's attributes with defaults, as the checkout transition validates
    them; None where its own validation must speak (an unknown attribute, a bad value)."""
    if given is None:
        return None
    result = dict(made.defaults)
    plain = made.plain
    for key, value in given.items():
        if key == "id" or value is None:  # None: the default
            continue
        kind = plain.get(key, _MISSING)
        if kind is _MISSING:
            return None
        if kind is None:  # a decimal or a date: converted (and checked) as the transition does
            from .transitions.checkout import _attribute_value
            result[key] = _attribute_value(made.kinds[key], value)
        elif type(value) is kind:
            result[key] = value
        else:
            return None
    return result


_MISSING: Any = object()


def _checkout(engine: Engine, d: CheckoutDecider, ev: Event, state: State | None,
              cu: dict[str, Any]) -> Quote | None:
    Quote_, tick_time = _QUOTING or _quoting()
    rules = engine.rules
    plan, sf = d.plan, d.sf
    currency = d.currency
    customer = ev.customer
    assert customer is not None
    cid = customer["id"]
    sub_id = ev.subscription
    assert sub_id is not None  # a checkout names its subscription (parse_event)
    at = ev.at
    day = rt.local_date(at, rules.model.timezone)
    contract = _contract(rules, cid, plan.name, day, currency) if rules.contracts else None
    if contract is not None:
        list_amount = contract.amount
        trace: list[Trace] = [d.cite(f"contract {contract.name}", contract.span)]
    else:
        if sf.name in plan.not_sold or (plan.name, sf.name) not in rules.prices:
            return None
        entry = d.new_prices.on(day)
        if entry is None:
            return None
        list_amount = entry.amount
        trace = [d.price_trace[id(entry)]]
    er, ea, ep = ev.reason, ev.attempt or 0, ev.psp
    args = (cu, cid, at, er, ea, ep)
    redemptions = state.redemptions if state is not None else _EMPTY
    customer_redemptions = state.customer_redemptions if state is not None else _EMPTY
    reasons: list[str] = []
    trial_days = 0
    granted = False
    if plan.trial is not None:
        denied = d.elig(*args) if d.elig is not None else ()
        if denied:
            reasons.extend(d.denies[i][0] for i in denied)
            trace.extend(d.denies[i][1] for i in denied)
        else:
            granted = True
            anchor = rt.add(day, plan.trial.length)
            trial_days = (anchor - day).days
            trace.append(d.cite(f"plan {plan.name} trial", plan.trial.span))
    chosen: list[tuple[m.Promotion, Decimal, bool]] = []
    if contract is not None:
        if ev.code:
            reasons.append(f"promotions do not apply to contract {contract.name}")
    elif not granted and (ev.code is not None or d.live["co"]):
        chosen = _choose(d, "co", args, list_amount, day, ev.code, reasons, redemptions,
                         customer_redemptions, cid, (), 1, True)
    if not granted:
        discounts: tuple[Discount, ...] = ()
        if chosen:
            discounts = tuple(Discount(p.name, amount) for p, amount, _ in chosen)
            trace.extend(d.cite(p.name, p.span) for p, _, _ in chosen)
        figures = _price(engine, d, "co", args, list_amount, discounts, trace)
        next_charge, due = d.dates(day)
        return Quote_(sub_id, "checkout", "charge", currency, figures[0], discounts,
                     figures[1], figures[2], figures[3], figures[4], figures[5], 0, day,
                     next_charge, due, tuple(reasons), tuple(trace))
    # a granted trial: the code is redeemed now (automatic promotions wait), the checkout
    # charges nothing; the first charge is what the trial-end tick decides
    chosen = [] if contract is not None else _choose(
        d, "ct", args, list_amount, day, ev.code, reasons, redemptions, customer_redemptions,
        cid, (), 1, False)
    attached: list[tuple[m.Promotion, int, int | None]] = []
    if chosen:
        redemptions = dict(redemptions)
        customer_redemptions = dict(customer_redemptions)
        for p, _, new in chosen:
            if new:
                redemptions[p.name] = redemptions.get(p.name, 0) + 1
                key = _redemption_key(p.name, cid)
                customer_redemptions[key] = customer_redemptions.get(key, 0) + 1
                attached.append((p, 1, None if p.cycles is None else p.cycles))
    # the checkout's own (zero) charge evaluates the tax and route conditions too
    _price(engine, d, "ct", args, ZERO, (), [])
    end = anchor
    tick_at = tick_time(engine, end, at)
    targs = (cu, cid, tick_at, None, 0, None)
    tick_trace: list[Trace] = []
    tick_reasons: list[str] = []
    held_by = _contract(rules, cid, plan.name, end, currency) if rules.contracts else None
    if held_by is not None:
        tick_trace.append(d.cite(f"contract {held_by.name}", held_by.span))
        list_amount = held_by.amount
    else:
        entry = d.existing_prices.on(end)
        if entry is None:
            return None  # not sold on that day: the reference path refuses
        rule = f"price {plan.name} {sf.name}"
        cited = entry
        if entry.amount != list_amount:
            if entry.consent and contract is None:
                # held at the old price until the customer consents (the checkout's line)
                from .emission import where
                from .pricing import held_price_entry

                cited = held_price_entry(
                    rules, cast(Any, _Held(plan.name, sf.name, list_amount)), entry)
                tick_reasons.append(
                    f"held at the old price {currency} {rt.money_str(list_amount, currency)} "
                    f"until the customer consents to {currency} "
                    f"{rt.money_str(entry.amount, currency)}"
                    + (f" from {entry.effective}" if entry.effective else "")
                    + f" ({where(entry.span)})")
            else:
                list_amount = entry.amount
        tick_trace.append(d.cite(rule, cited.span))
    chosen = [] if held_by is not None else _choose(
        d, "tk", targs, list_amount, end, None, tick_reasons, redemptions,
        customer_redemptions, cid, tuple(attached), 1, True)
    discounts = tuple(Discount(p.name, amount) for p, amount, _ in chosen)
    tick_trace.extend(d.cite(p.name, p.span) for p, _, _ in chosen)
    figures = _price(engine, d, "tk", targs, list_amount, discounts, tick_trace)
    next_charge, due = d.dates(end)
    return Quote_(sub_id, "checkout", "charge", currency, figures[0], discounts,
                 figures[1], figures[2], figures[3], figures[4], figures[5], trial_days, end,
                 next_charge, due, tuple(reasons + tick_reasons), tuple(tick_trace))


_QUOTING: tuple[type[Quote], Callable[..., dt.datetime]] | None = None


def _quoting() -> tuple[type[Quote], Callable[..., dt.datetime]]:
    """:class:`revrules.quoting.Quote` and its ``tick_time`` (quoting imports this module)."""
    global _QUOTING
    from .quoting import Quote, tick_time

    _QUOTING = (Quote, tick_time)
    return _QUOTING


def _contract(rules: Ruleset, cid: str, plan: str, day: dt.date,
              currency: str) -> m.Contract | None:
    """:func:`revrules.pricing.contract`, in the storefront's currency (else none)."""
    for c in rules.contracts.get((cid, plan), ()):
        if c.valid_from <= day <= c.valid_to:
            return c if c.currency == currency else None
    return None


class _Held:
    """What :func:`revrules.pricing.held_price_entry` reads of a subscription."""

    __slots__ = ("plan", "storefront", "price")

    def __init__(self, plan: str, storefront: str, price: Decimal):
        self.plan, self.storefront, self.price = plan, storefront, price


def _redemption_key(promotion: str, customer: str) -> str:
    return f"{promotion}\u001f{customer}"


def _refusal(fact: _PromotionFacts, phase: str, args: tuple[Any, ...], day: dt.date,
             redemptions: Mapping[str, int], customer_redemptions: Mapping[str, int],
             cid: str) -> str | None:
    """:func:`revrules.pricing.promotion_refusal`, with the static part precomputed."""
    p = fact.promotion
    if fact.static_refusal is not None:
        return fact.static_refusal
    if (p.valid_from and day < p.valid_from) or (p.valid_to and day > p.valid_to):
        return f"{p.name} not valid on {day}"
    if p.condition is not None and p.condition.when is not None and \
            not fact.holds(phase, args):
        return fact.requires
    if p.limit_total is not None and redemptions.get(p.name, 0) >= p.limit_total:
        return f"{p.name} is exhausted ({p.limit_total} redemptions)"
    if p.limit_per_customer is not None and customer_redemptions.get(
            _redemption_key(p.name, cid), 0) >= p.limit_per_customer:
        return f"{p.name} already redeemed by {cid}"
    return None


def _discount(p: m.Promotion, list_amount: Decimal, currency: str, rounding: str) -> Decimal:
    if p.kind == "percent":
        return rt.percent_of(list_amount, p.value, currency, rounding)
    return min(p.value, list_amount)


def _choose(d: CheckoutDecider, phase: str, args: tuple[Any, ...], list_amount: Decimal,
            day: dt.date, code: str | None, reasons: list[str],
            redemptions: Mapping[str, int], customer_redemptions: Mapping[str, int],
            cid: str, attached: tuple[tuple[m.Promotion, int, int | None], ...], cycle: int,
            automatic: bool) -> list[tuple[m.Promotion, Decimal, bool]]:
    """:func:`revrules.pricing.choose_promotions` for a new subscription (``attached``:
    what its checkout redeemed)."""
    currency, rounding = d.currency, d.rules_rounding
    facts = d.promotions
    candidates: list[tuple[m.Promotion, Decimal, bool]] = []
    names = {p.name for p, _, _ in attached}
    for p, first, last in attached:
        if p.plans is not None and d.plan.name not in p.plans:
            continue
        if first <= cycle and (last is None or cycle <= last):
            fact = facts[p.name]
            if p.automatic and p.condition is not None and p.condition.when is not None \
                    and not fact.holds(phase, args):
                continue
            candidates.append((p, _discount(p, list_amount, currency, rounding), False))
    code_promo = None
    if code is not None:
        code_promo = d.codes.get(code.upper())
        if code_promo is None:
            reasons.append(f"unknown promotion code \"{code}\""
                           f"{did_you_mean(code.upper(), d.codes)}")
        elif code_promo.name in names:
            reasons.append(f"{code_promo.name} is already applied")
            code_promo = None
        else:
            refusal = _refusal(facts[code_promo.name], phase, args, day, redemptions,
                               customer_redemptions, cid)
            if refusal:
                reasons.append(refusal)
                code_promo = None
            else:
                candidates.append((code_promo, _discount(code_promo, list_amount, currency,
                                                         rounding), True))
    if automatic:
        for p in d.live[phase]:
            if p.name in names:
                continue
            if _refusal(facts[p.name], phase, args, day, redemptions, customer_redemptions,
                        cid) is None:
                candidates.append((p, _discount(p, list_amount, currency, rounding), True))
    if not candidates:
        return []
    single = [c for c in candidates if not c[0].stackable]
    chosen = [c for c in candidates if c[0].stackable]
    if single:
        best = min(single, key=lambda c: (C.minus(c[1]), c[0].order))
        chosen.append(best)
        for c in single:
            if c is not best and c[2] and code_promo is not None and (
                    c[0] is code_promo or best[0] is code_promo):
                reasons.append(f"{c[0].name} outbid by {best[0].name}")
    chosen.sort(key=lambda c: c[0].order)
    remaining = list_amount
    result = []
    for p, amount, new in chosen:
        amount = min(amount, remaining)
        remaining = _sub(remaining, amount)
        result.append((p, amount, new))
    return result


def _inner_tax(amount: Decimal, rates: list[Decimal], currency: str, rounding: str) -> Decimal:
    if not rates or not amount:
        return ZERO
    if len(rates) == 1:
        return rt.split_inclusive(amount, rates[0], currency, rounding)
    combined = ZERO
    for r in rates:
        combined = _add(combined, r)
    total = ZERO
    for r in rates:
        total = _add(total, rt.split_inclusive(amount, r, currency, rounding, combined))
    return total


def _price(engine: Engine, d: CheckoutDecider, phase: str, args: tuple[Any, ...],
           list_amount: Decimal, discounts: tuple[Discount, ...],
           trace: list[Trace]) -> tuple[Decimal, Decimal, Decimal, Decimal, Decimal, str | None]:
    """:func:`revrules.pricing.quote` of a checkout's charge (no credit): (list, credit,
    tax, net, total, psp). The figures are a pure function of the list price, the
    discount and the tax rates that hold, remembered per decider for a few thousand
    combinations; the route is decided every time (its conditions read the customer)."""
    positions = d.tax[phase](*args)
    if discounts:
        discount = d.zero
        for x in discounts:
            discount = _add(discount, x.amount)
        figures = _figures(d, list_amount, discount, positions)
    else:
        # keyed by the list price's identity (a model's amount, as long-lived as the
        # decider; checked on a hit), so that equal amounts written differently (12.9
        # and 12.90) never share figures
        key = (id(list_amount), positions)
        found = d.figures.get(key)
        if found is not None and found[6] is list_amount:
            figures = found
        else:
            figures = _figures(d, list_amount, None, positions)
            if len(d.figures) < _FIGURES:
                d.figures[key] = figures
    trace.extend(figures[5])
    total = figures[4]
    position = d.route[phase](*args, total)
    if position is not None:
        psp, cited = d.routes[position]
        trace.append(cited)
    elif d.route_default is not None:
        psp, cited = d.route_default
        trace.append(cited)
    else:
        psp = None
    return figures[0], figures[1], figures[2], figures[3], total, psp


#: how many (list price, discount, tax rates) a decider remembers the figures of
_FIGURES = 4096


def _figures(d: CheckoutDecider, list_amount: Decimal, discount: Decimal | None,
             positions: tuple[int | None, ...]) -> tuple[Any, ...]:
    """(list, credit, tax, net, total, tax trace) as :func:`revrules.pricing.quote` computes
    them, with explicit context operations (the caller's context plays no part)."""
    sf, currency, rounding = d.sf, d.currency, d.rules_rounding
    quantum, zero = d.quantum, d.zero
    given = list_amount
    list_amount = list_amount.quantize(quantum, context=C)
    credit = zero
    amount = _sub(_sub(list_amount, zero if discount is None else discount), credit)
    if amount < 0:
        amount = zero
    rates: list[Decimal] = []
    cited: list[Trace] = []
    for t, position in enumerate(positions):
        if position is not None:
            rate, trace = d.tax_rates[t][position]
            rates.append(rate)
            cited.append(trace)
    if sf.tax_inclusive:
        tax = _inner_tax(amount, rates, currency, rounding) or zero
        net, total = _sub(amount, tax), amount
    else:
        tax = zero
        for r in rates:
            tax = _add(tax, rt.percent_of(amount, r, currency, rounding))
        net, total = amount, _add(amount, tax)
    return list_amount, credit, tax, net, total, tuple(cited), given
