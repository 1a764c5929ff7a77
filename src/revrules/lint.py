"""Lint: warnings about rules that check but cannot do what they say (``RR1xx``).

:func:`lint` runs after the checker found no error. It reasons about conditions with a
small solver: a condition becomes a formula over *atoms* (``customer.country == "DE"``,
``subscription.cycle >= 12``, ``total >= EUR 50.00``); what the storefront or the plan
alone decides is substituted first, anything it does not understand (arithmetic,
functions, two fields compared) is an opaque true/false value of its own. A
conjunction of atoms is satisfiable when every field can take one value that meets all
of its atoms; values are searched among the constants the atoms name and their
neighbours, so the answer is exact for comparisons with constants. Where a problem is
found, the message shows a concrete example input built from the solver's witness.

Every code is listed in docs/codes.md, with a bad and a good example.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Union, cast

import attrs

from . import model as m
from . import nodes as n
from . import runtime as rt
from .diagnostics import Diagnostic, line_starts

__all__ = ["WARNINGS", "allowed", "lint"]

#: Every warning code and what it means.
WARNINGS = {
    "RR101": "a rule unreachable behind an earlier one",
    "RR102": "automatic promotions whose winner depends on source order",
    "RR103": "a promotion whose window ends before any of its plans has a price",
    "RR104": "a promotion whose plans are not sold in its storefronts",
    "RR105": "a condition that never holds",
    "RR106": "grace that ends before the last retry",
    "RR107": "a scheduled price with no base price before it",
    "RR108": "eligibility that denies everyone",
}

_MAX_TERMS = 256  # a condition with more conjunctions than this is not analysed
_BUDGET = 200_000  # work one analysis may do (formulas, terms, values tried); past it,
# that analysis stops and gives the warnings found so far
_DEBUG: list[int] | None = None
_spent: contextvars.ContextVar[list[int]] = contextvars.ContextVar("lint_budget")
_SCAN_START = dt.date(2027, 1, 1)
_SCAN_DAYS = 4 * 365 + 1  # four years, one of them a leap year

# -- formulas ------------------------------------------------------------------------


class _Absent:
    """The value of an optional attribute the customer lacks: every comparison is false."""

    def __repr__(self) -> str:
        return "absent"


ABSENT = _Absent()
Value = Union[str, Decimal, bool, int, _Absent]


@attrs.frozen
class Atom:
    """``path op value``; an opaque atom has op ``?`` and is true or false on its own."""

    path: str
    op: str
    value: Any
    kind: str  # string, int, number (a decimal), bool, opaque
    optional: bool = False
    expr: Any = attrs.field(default=None, eq=False, hash=False, repr=False)


@attrs.frozen
class And:
    parts: tuple[Any, ...]


@attrs.frozen
class Or:
    parts: tuple[Any, ...]


@attrs.frozen
class Not:
    part: Any


Formula = Union[bool, Atom, And, Or, Not]

_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_ROOTS = frozenset({"customer", "storefront", "plan", "subscription", "event", "payment",
                    "total"})


@attrs.frozen
class Scope:
    """What is known where a condition is evaluated: a storefront, maybe a plan."""

    model: m.Model
    storefront: m.Storefront
    plan: str | None = None


def _path(expr: n.Expr, scope: Scope) -> tuple[str, str, bool] | Value | None:
    """(path, kind, optional) of a field, or its value where the scope decides it, or
    None for what is not a field."""
    sf = scope.storefront
    if isinstance(expr, n.Name):
        if expr.name == "storefront":
            return sf.name
        if expr.name == "plan":
            return scope.plan if scope.plan is not None else ("plan", "string", False)
        if expr.name == "total":
            return ("total", "money", False)
        return None
    if not isinstance(expr, n.Field):
        return None
    obj, name = expr.obj, expr.name
    if isinstance(obj, n.Field) and isinstance(obj.obj, n.Name) \
            and obj.obj.name == "subscription" and obj.name in ("storefront", "plan"):
        obj = n.Name(obj.name)
    if not isinstance(obj, n.Name):
        return None
    root = obj.name
    if root == "storefront" and name in ("name", "channel", "region", "currency"):
        return str(getattr(sf, name))
    if root == "plan" and name == "name":
        return _path(n.Name("plan"), scope)
    if root == "subscription" and name == "storefront":
        return sf.name
    if root == "subscription" and name == "plan":
        return _path(n.Name("plan"), scope)
    if root == "customer":
        if name == "id":
            return ("customer.id", "string", False)
        for attr in scope.model.attributes:
            if attr.name == name:
                kind = {"decimal": "number", "date": "int"}.get(attr.type, attr.type)
                return (f"customer.{name}", kind, attr.default is None)
        return None
    kinds = {"subscription.cycle": ("int", False), "subscription.status": ("string", False),
             "event.type": ("string", False), "payment.reason": ("string", True),
             "payment.attempt": ("int", False), "payment.psp": ("string", False)}
    key = f"{root}.{name}"
    if key in kinds:
        return (key, *kinds[key])
    return None


def _constant(expr: n.Expr, scope: Scope) -> Value | frozenset[Any] | None:
    if isinstance(expr, n.Literal):
        if expr.kind in ("int", "decimal", "percent"):
            return Decimal(expr.value)  # type: ignore[arg-type]
        if expr.kind == "money":
            money = expr.value
            if getattr(money, "currency", None) != scope.storefront.currency:
                return None
            return Decimal(money.amount)  # type: ignore[attr-defined]
        if expr.kind == "date":
            return Decimal(expr.value.toordinal())  # type: ignore[attr-defined]
        if expr.kind in ("string", "bool"):
            return expr.value  # type: ignore[return-value]
        return None
    if isinstance(expr, n.Name) and expr.name not in _ROOTS:
        return expr.name
    if isinstance(expr, n.SetLit):
        items = [_constant(i, scope) for i in expr.items]
        if any(i is None or isinstance(i, frozenset) for i in items):
            return None
        return frozenset(items)
    return None


_cache: contextvars.ContextVar[dict[tuple[int, str, str | None], Formula]] = \
    contextvars.ContextVar("lint_formulas")


def formula(expr: n.Expr | None, scope: Scope) -> Formula:
    """The formula of a condition in a scope (None: always true), built once per lint
    run for each condition, storefront and plan."""
    if expr is None:
        return True
    cache = _cache.get(None)
    if cache is None:
        return _formula(expr, scope)
    key = (id(expr), scope.storefront.name, scope.plan)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _formula(expr, scope)
        _charge(1)
    return found


def _charge(work: int) -> None:
    spent = _spent.get(None)
    if spent is not None:
        spent[0] += work
        if spent[0] > _BUDGET:
            raise OutOfBudget


def _formula(expr: n.Expr | None, scope: Scope) -> Formula:
    if expr is None:
        return True
    if isinstance(expr, n.Literal) and expr.kind == "bool":
        return bool(expr.value)
    if isinstance(expr, n.Unary) and expr.op == "not":
        return _not(_formula(expr.operand, scope))
    if isinstance(expr, n.Binary) and expr.op in ("and", "or"):
        left, right = _formula(expr.left, scope), _formula(expr.right, scope)
        return _and([left, right]) if expr.op == "and" else _or([left, right])
    if isinstance(expr, n.Binary) and expr.op in ("==", "!=", "<", "<=", ">", ">=", "in",
                                                    "not in"):
        found = _comparison(expr, scope)
        if found is not None:
            return found
    if isinstance(expr, (n.Field, n.Name)):
        p = _path(expr, scope)
        if isinstance(p, tuple) and p[1] == "bool":
            return Atom(p[0], "==", True, "bool", p[2], expr)
    return Atom(repr(expr), "?", None, "opaque", False, expr)


def _comparison(expr: n.Binary, scope: Scope) -> Formula | None:
    op: str = expr.op
    left, right = _path(expr.left, scope), _path(expr.right, scope)
    lc = left if left is not None and not isinstance(left, tuple) else _constant(expr.left, scope)
    rc = right if right is not None and not isinstance(right, tuple) else _constant(expr.right,
                                                                                     scope)
    if isinstance(left, tuple) and isinstance(right, tuple):
        return None
    if isinstance(right, tuple) and lc is not None and op not in ("in", "not in"):
        left, rc, op = right, lc, _FLIP[op]
    if isinstance(left, tuple):
        if rc is None:
            return None
        path, kind, optional = left
        if kind == "money":
            kind = "number"
        if op in ("in", "not in"):
            if not isinstance(rc, frozenset):
                return None
            return Atom(path, op, rc, kind, optional, expr)
        if isinstance(rc, frozenset):
            return None
        # `!=` and `not in` are atoms of their own: like every comparison they are
        # false for an absent attribute, where `not (x == v)` is true
        return Atom(path, op, rc, kind, optional, expr)
    if lc is None or rc is None:
        return None
    try:
        return _compare(lc, op, rc)
    except TypeError:
        return None


def _compare(a: Any, op: str, b: Any) -> bool:
    if a is ABSENT:
        return False
    if op == "in":
        return a in b
    if op == "not in":
        return a not in b
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) != isinstance(b, str):
        raise TypeError
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _not(f: Formula) -> Formula:
    return (not f) if isinstance(f, bool) else Not(f)


def _and(parts: Sequence[Formula]) -> Formula:
    if any(p is False for p in parts):
        return False
    rest = tuple(p for p in parts if p is not True)
    return True if not rest else rest[0] if len(rest) == 1 else And(rest)


def _or(parts: Sequence[Formula]) -> Formula:
    if any(p is True for p in parts):
        return True
    rest = tuple(p for p in parts if p is not False)
    return False if not rest else rest[0] if len(rest) == 1 else Or(rest)


Literal_ = tuple[Atom, bool]


class TooLarge(Exception):
    """A formula with too many conjunctions to analyse."""


class OutOfBudget(Exception):
    """The lint run has done as much work as it may."""


def dnf(f: Formula, positive: bool = True) -> list[list[Literal_]]:
    """The formula as a disjunction of conjunctions of (atom, positive)."""
    _charge(1)
    if isinstance(f, bool):
        return [[]] if f == positive else []
    if isinstance(f, Atom):
        return [[(f, positive)]]
    if isinstance(f, Not):
        return dnf(f.part, not positive)
    disjunctive = isinstance(f, Or) == positive
    parts = [dnf(p, positive) for p in f.parts]
    if disjunctive:
        result = [c for p in parts for c in p]
    else:
        result = [[]]
        for p in parts:
            result = [a + b for a in result for b in p]
            if len(result) > _MAX_TERMS:
                raise TooLarge
            _charge(len(result))
    if len(result) > _MAX_TERMS:
        raise TooLarge
    return result


Witness = dict[str, Any]


def solve(f: Formula) -> Witness | None:
    """A witness (field → value) that makes ``f`` true, or None when none exists.

    A formula too large to analyse counts as satisfiable (with an empty witness): lint
    only warns about what it can show."""
    try:
        terms = dnf(f)
    except TooLarge:
        return {}
    _charge(len(terms))
    for term in terms:
        w = _solve_term(term)
        if w is not None:
            return w
    return None


def _solve_term(term: list[Literal_]) -> Witness | None:
    by_path: dict[str, list[Literal_]] = {}
    for atom, positive in term:
        by_path.setdefault(atom.path, []).append((atom, positive))
    witness: Witness = {}
    for path, literals in by_path.items():
        first = literals[0][0]
        if first.kind == "opaque":
            if len({pos for _, pos in literals}) > 1:
                return None
            continue
        value = _value_for(literals)
        if value is _NONE:
            return None
        witness[path] = value
    return witness


_NONE = object()


def _value_for(literals: list[Literal_]) -> Any:
    """A value of one field meeting every literal, or _NONE."""
    candidates = _candidates(literals)
    _charge(len(candidates) * len(literals))
    for value in candidates:
        if all(_meets(value, atom, positive) for atom, positive in literals):
            return value
    return _NONE


def _meets(value: Any, atom: Atom, positive: bool) -> bool:
    try:
        return _compare(value, atom.op, atom.value) == positive
    except TypeError:
        return not positive


def _candidates(literals: list[Literal_]) -> list[Any]:
    kind = literals[0][0].kind
    optional = any(a.optional for a, _ in literals)
    constants: list[Any] = []
    for atom, _ in literals:
        constants.extend(sorted(atom.value, key=str) if isinstance(atom.value, frozenset)
                         else [atom.value])
    result: list[Any]
    if kind == "bool":
        result = [True, False]
    elif kind in ("number", "int"):
        numbers = sorted({c for c in constants if isinstance(c, Decimal)})
        if kind == "int":  # a whole number: the nearest ones around each constant
            result = sorted({w for c in numbers for w in (
                c.to_integral_value(rounding="ROUND_FLOOR") - 1,
                c.to_integral_value(rounding="ROUND_FLOOR"),
                c.to_integral_value(rounding="ROUND_CEILING"),
                c.to_integral_value(rounding="ROUND_CEILING") + 1)})
            result = [*numbers, *(w for w in result if w not in numbers)]
        else:
            result = list(numbers)
            for c in numbers:
                result += [c + 1, c - 1]
            result += [(a + b) / 2 for a, b in zip(numbers, numbers[1:], strict=False)]
        result += [Decimal(0)]
    else:
        strings = sorted({c for c in constants if isinstance(c, str)})
        result = [*strings, *(f"other{i or ''}" for i in range(len(strings) + 1))]
    return [*result, *([ABSENT] if optional else [])]


# -- the example inputs -----------------------------------------------------------------


def _show(path: str, value: Any, kind: str, currency: str) -> str:
    if value is ABSENT:
        return f"no {path}"
    if path == "total":
        return f"total = {currency} {value}"
    if kind == "date" and isinstance(value, Decimal):
        return f"{path} = {dt.date.fromordinal(int(value))}"
    if isinstance(value, bool):
        return f"{path} = {'true' if value else 'false'}"
    if isinstance(value, str):
        return f'{path} = "{value}"'
    return f"{path} = {_number(value)}"


def _number(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return str(value.normalize())


def _kinds(model: m.Model) -> dict[str, str]:
    return {f"customer.{a.name}": a.type for a in model.attributes}


def describe(witness: Witness, model: m.Model, currency: str) -> str:
    kinds = _kinds(model)
    return ", ".join(_show(p, v, kinds.get(p, ""), currency) for p, v in sorted(witness.items()))


# -- the analyses ------------------------------------------------------------------------


@attrs.define
class _Linter:
    model: m.Model
    module: n.Module
    found: list[Diagnostic] = attrs.Factory(list)
    _scopes: dict[bool, list[Scope]] = attrs.Factory(dict)

    def warn(self, code: str, message: str, span: n.Span, hint: str | None = None) -> None:
        self.found.append(Diagnostic("warning", code, message, span, hint))

    def text(self, span: n.Span) -> str:
        source = self.module.source
        if span.line != span.end_line or _line(source, span.line) is None:
            return "…"
        return cast(str, _line(source, span.line))[span.column - 1:span.end_column - 1]

    def example(self, sf: m.Storefront, witness: Witness, plan: str | None = None,
                what: str = "a checkout", day: dt.date | None = None) -> str:
        parts = [what]
        plan = plan if plan is not None else witness.get("plan")
        if plan is not None:
            parts.append(f"of plan {plan}")
        parts.append(f"at storefront {sf.name}")
        if day is not None:
            parts.append(f"on {day}")
        shown = describe({k: v for k, v in witness.items() if k != "plan"}, self.model,
                         sf.currency)
        if shown:
            parts.append(f"with {shown}")
        return " ".join(parts)

    def never_holds(self, expr: n.Expr, scopes: Iterable[Scope], who: str) -> bool:
        """RR105 when ``expr`` is false in every scope; True if it warned."""
        scopes = list(scopes)
        if not scopes or any(solve(formula(expr, s)) is not None for s in scopes):
            return False
        self.warn("RR105", f"this condition never holds, so {who} never applies"
                  f"{self.contradiction(expr, scopes)}", expr.span)
        return True

    def contradiction(self, expr: n.Expr, scopes: list[Scope]) -> str:
        """``: a and b cannot both be true`` for the first two atoms that cannot, or
        where the storefront alone makes the condition false."""
        if all(formula(expr, s) is False for s in scopes):
            if not _mentions_scope(expr):
                return ": it is always false"
            names = list(dict.fromkeys(s.storefront.name for s in scopes))
            return (f": it is false at storefront{'s' if len(names) > 1 else ''} "
                    f"{_join(names)}")
        try:
            terms = dnf(formula(expr, scopes[0]))
        except TooLarge:
            return ""
        if len(terms) != 1:
            return ""
        term = terms[0]
        for i, a in enumerate(term):
            if _value_for([a]) is _NONE and a[0].expr is not None:
                return f": {self.text(a[0].expr.span)} is never true here"
            for b in term[:i]:
                if a[0].path == b[0].path and _value_for([a, b]) is _NONE \
                        and a[0].expr is not None and b[0].expr is not None:
                    return (f": {self.text(b[0].expr.span)} and {self.text(a[0].expr.span)} "
                            "cannot both be true")
        return ""

    def scopes(self, plan: bool = False) -> list[Scope]:
        """Every storefront (with ``plan``: every storefront × plan), made once per run;
        the list is shared, and no caller changes it."""
        found = self._scopes.get(plan)
        if found is None:
            found = self._scopes[plan] = [
                Scope(self.model, sf, p.name) for sf in self.model.storefronts
                for p in self.model.plans] if plan else [
                Scope(self.model, sf) for sf in self.model.storefronts]
        return found

    # first match: tax rates, route lines ----------------------------------------------
    def first_match(self, rules: Sequence[tuple[n.Expr | None, n.Span, str | None]],
                    what: str, action: str) -> None:
        """Rules where the first that holds wins; a rule with a PSP (route) is skipped on
        a storefront that does not list it."""
        for i, (when, span, psp) in enumerate(rules):
            if when is not None and self.never_holds(when, self.scopes(), f"this {what}"):
                continue
            if psp is None and any(w is None for w, _, _ in rules[:i]):
                continue  # a rate after one without 'when': the checker reports it
            reached = False
            first_example = None
            for scope in self.scopes():
                sf = scope.storefront
                if psp is not None and psp not in sf.psps:
                    continue
                earlier = [(w, s) for w, s, p in rules[:i] if p is None or p in sf.psps]
                mine = formula(when, scope)
                if solve(_and([mine, *(_not(formula(w, scope)) for w, _ in earlier)])) \
                        is not None:
                    reached = True
                    break
                if first_example is None:
                    for j, (w, s) in enumerate(earlier):
                        found = solve(_and([mine, formula(w, scope), *(
                            _not(formula(x, scope)) for x, _ in earlier[:j])]))
                        if found is not None:
                            first_example = (sf, found, s)
                            break
            if reached or first_example is None:
                continue
            sf, witness, by = first_example
            self.warn("RR101", f"this {what} never applies: an earlier {what} matches first "
                      f"wherever it holds; for example {self.example(sf, witness, what=action)} "
                      f"matches the {what} at {by} first", span)

    def taxes(self) -> None:
        for table in self.module.decls:
            if isinstance(table, n.Tax):
                self.first_match([(r.when, r.span, None) for r in table.rates], "rate",
                                 "a charge")

    def route(self) -> None:
        routes = [d for d in self.module.decls if isinstance(d, n.Route)]
        if routes:
            self.first_match([(r.when, r.span, r.psp.name) for r in routes[0].rules],
                             "route line", "a charge")

    # eligibility ----------------------------------------------------------------------
    def eligibility(self) -> None:
        for decl in self.module.decls:
            if not isinstance(decl, n.Eligibility):
                continue
            scopes = self.scopes(plan=True)
            for i, deny in enumerate(decl.denies):
                if self.never_holds(deny.when, scopes, f'deny "{deny.reason}"'):
                    continue
                if not i:
                    continue
                example = None
                for scope in scopes:
                    mine = formula(deny.when, scope)
                    others = [formula(d.when, scope) for d in decl.denies[:i]]
                    if solve(_and([mine, *map(_not, others)])) is not None:
                        example = None
                        break
                    if example is None:
                        for j, other in enumerate(others):
                            found = solve(_and([mine, other, *map(_not, others[:j])]))
                            if found is not None:
                                example = (scope, found, decl.denies[j])
                                break
                else:
                    if example is not None:
                        scope, witness, by = example
                        self.warn("RR101", "this deny never changes who is eligible: an "
                                  "earlier deny holds wherever it holds; for example "
                                  f"{self.example(scope.storefront, witness, what='a customer')}"
                                  f' is already denied "{by.reason}" ({by.span})', deny.span)
            self.denies_everyone(decl, scopes)

    def denies_everyone(self, decl: n.Eligibility, scopes: list[Scope]) -> None:
        if not decl.denies:
            return
        for scope in scopes:
            if solve(_and([_not(formula(d.when, scope)) for d in decl.denies])) is not None:
                return
        scope = scopes[0]
        for d in decl.denies:
            witness = solve(formula(d.when, scope))
            if witness is not None:
                self.warn("RR108", f"eligibility '{decl.name}' denies everyone: on every "
                          "storefront and plan one of its denies holds; for example "
                          f"{self.example(scope.storefront, witness, what='a customer')} is "
                          f'denied "{d.reason}"', decl.name_span)
                return

    # dunning --------------------------------------------------------------------------
    def dunning(self) -> None:
        conditional: list[n.Dunning] = []
        for decl in self.module.decls:
            if not isinstance(decl, n.Dunning):
                continue
            items = {i.key: i for i in decl.items}
            if decl.when is not None:
                who = f"dunning '{decl.name}'"
                if not self.never_holds(decl.when, self.scopes(plan=True), who):
                    self.unreachable_policy(decl, conditional)
                conditional.append(decl)
            if "no_retry" in items:
                self.never_holds(items["no_retry"].value, self.scopes(plan=True),  # type: ignore[arg-type]
                                 f"the 'no retry' of dunning '{decl.name}'")
            if "grace" in items and "retry" in items:
                self.grace(decl, items["grace"], items["retry"].value)  # type: ignore[arg-type]

    def unreachable_policy(self, decl: n.Dunning, earlier: list[n.Dunning]) -> None:
        if not earlier:
            return
        example = None
        for scope in self.scopes(plan=True):
            mine = formula(decl.when, scope)
            others = [formula(d.when, scope) for d in earlier]
            if solve(_and([mine, *map(_not, others)])) is not None:
                return
            if example is None:
                for j, other in enumerate(others):
                    found = solve(_and([mine, other, *map(_not, others[:j])]))
                    if found is not None:
                        example = (scope, found, earlier[j])
                        break
        if example is not None:
            scope, witness, by = example
            self.warn("RR101", f"dunning '{decl.name}' never applies: an earlier policy's "
                      "'for' holds wherever its 'for' holds; for example "
                      f"{self.example(scope.storefront, witness, what='a failed charge')} "
                      f"goes to dunning '{by.name}'", decl.name_span)

    def grace(self, decl: n.Dunning, grace_item: n.DunningItem,
              retries: Sequence[n.Duration]) -> None:
        grace = grace_item.value[0]  # type: ignore[index]
        if not retries:
            return
        for k in range(_SCAN_DAYS):
            day = _SCAN_START + dt.timedelta(days=k)
            try:
                end = rt.add(day, grace)
                last = max(rt.add(day, r) for r in retries)
            except rt.EvaluationError:  # pragma: no cover - bounded durations
                return
            if end < last:
                self.warn("RR106", f"grace ends before the last retry: for example a charge "
                          f"failing on {day} has grace until {end} but a retry on {last}, so "
                          f"'then' waits until {last + dt.timedelta(days=1)}",
                          grace_item.span, "make grace at least as long as the last retry")
                return

    # promotions -----------------------------------------------------------------------
    def promotions(self) -> None:
        decls = {d.name: d for d in self.module.decls if isinstance(d, n.Promotion)}
        reach: dict[str, list[tuple[m.Plan, m.Storefront]]] = {}
        # the plans a promotion names, found by name (in the model's order), and where
        # each plan has a price: no promotion scans every plan
        plan_at = {plan.name: i for i, plan in enumerate(self.model.plans)}
        sold = {(plan.name, p.storefront) for plan in self.model.plans for p in plan.prices}
        for promo in self.model.promotions:
            decl = decls[promo.name]
            items = {i.key: i for i in decl.items}
            plans = self.model.plans if promo.plans is None else [
                self.model.plans[i] for i in sorted(
                    plan_at[name] for name in promo.plans if name in plan_at)]
            fronts = [sf for sf in self.model.storefronts
                      if (promo.storefronts is None or sf.name in promo.storefronts)
                      and (promo.currency is None or promo.currency == sf.currency)]
            pairs = [(plan, sf) for plan in plans for sf in fronts
                     if (plan.name, sf.name) in sold]
            if not pairs:
                self.warn("RR104", f"promotion '{promo.name}' never applies: none of its plans "
                          "is sold in its storefronts", decl.name_span,
                          "name a plan and a storefront it is priced in")
                continue
            if promo.valid_to is not None:
                starts = [min((p.effective or dt.date.min) for p in plan.prices
                              if p.storefront == sf.name) for plan, sf in pairs]
                if all(s > promo.valid_to for s in starts):
                    first = min(range(len(pairs)), key=lambda i: starts[i])
                    plan, sf = pairs[first]
                    self.warn("RR103", f"promotion '{promo.name}' never applies: it ends on "
                              f"{promo.valid_to}, before any of its plans has a price (plan "
                              f"{plan.name} is priced at storefront {sf.name} from "
                              f"{starts[first]})", items["valid"].span)
                    continue
            if promo.condition is not None:
                scopes = [Scope(self.model, sf, plan.name) for plan, sf in pairs]
                if self.never_holds(promo.condition.when, scopes,  # type: ignore[arg-type]
                                    f"promotion '{promo.name}'"):
                    continue
            reach[promo.name] = pairs
        self.ties(reach, decls)

    def ties(self, reach: dict[str, list[tuple[m.Plan, m.Storefront]]],
             decls: dict[str, n.Promotion]) -> None:
        autos = [p for p in self.model.promotions
                 if p.automatic and not p.stackable and p.name in reach]
        for i, b in enumerate(autos):
            for a in autos[:i]:
                found = self.tie(a, b, reach)
                if found is not None:
                    plan, sf, day, amount, witness = found
                    self.warn("RR102", f"promotions '{a.name}' and '{b.name}' can both apply "
                              f"and take the same {sf.currency} {amount} off, so '{a.name}' "
                              f"wins only because it comes first; for example "
                              f"{self.example(sf, witness, plan.name, day=day)}",
                              decls[b.name].name_span,
                              "make one stackable, or give them different windows, "
                              "conditions or values")
                    break

    def tie(self, a: m.Promotion, b: m.Promotion,
            reach: dict[str, list[tuple[m.Plan, m.Storefront]]]
            ) -> tuple[m.Plan, m.Storefront, dt.date | None, Decimal, Witness] | None:
        start = max([d for d in (a.valid_from, b.valid_from) if d is not None], default=None)
        end = min([d for d in (a.valid_to, b.valid_to) if d is not None], default=None)
        if start is not None and end is not None and start > end:
            return None
        theirs = {(p.name, s.name) for p, s in reach[b.name]}
        for plan, sf in reach[a.name]:
            _charge(1)
            if (plan.name, sf.name) not in theirs:
                continue
            scope = Scope(self.model, sf, plan.name)
            witness = solve(_and([formula(a.condition.when if a.condition else None, scope),
                                  formula(b.condition.when if b.condition else None, scope)]))
            if witness is None:
                continue
            entries = sorted((p for p in plan.prices if p.storefront == sf.name),
                             key=lambda p: p.effective or dt.date.min)
            for k, entry in enumerate(entries):
                until = entries[k + 1].effective if k + 1 < len(entries) else None
                begin = max([d for d in (start, entry.effective) if d is not None],
                            default=None)
                if end is not None and begin is not None and begin > end:
                    continue
                if until is not None and begin is not None and begin >= until:
                    continue
                one = _discount(a, entry.amount, sf.currency, self.model.rounding)
                two = _discount(b, entry.amount, sf.currency, self.model.rounding)
                if one == two and one > 0:
                    return plan, sf, begin, one, witness
        return None

    # prices ---------------------------------------------------------------------------
    def run(self) -> list[Diagnostic]:
        """Each analysis in turn, each within its own budget of work."""
        for analysis in (self.taxes, self.route, self.eligibility, self.dunning,
                         self.promotions):
            token = _spent.set([0])
            try:
                analysis()
            except OutOfBudget:
                pass
            finally:
                if _DEBUG is not None:
                    _DEBUG.append(_spent.get()[0])
                _spent.reset(token)
        return self.found


def _mentions_scope(expr: Any) -> bool:
    """Whether an expression names the storefront or the plan (what a scope decides)."""
    if isinstance(expr, n.Name):
        return expr.name in ("storefront", "plan")
    if isinstance(expr, n.Field):
        return _mentions_scope(expr.obj) or (
            isinstance(expr.obj, n.Name) and expr.obj.name == "subscription"
            and expr.name in ("storefront", "plan"))
    if isinstance(expr, n.Unary):
        return _mentions_scope(expr.operand)
    if isinstance(expr, n.Binary):
        return _mentions_scope(expr.left) or _mentions_scope(expr.right)
    if isinstance(expr, n.Call):
        return any(_mentions_scope(a) for a in expr.args)
    if isinstance(expr, n.SetLit):
        return any(_mentions_scope(i) for i in expr.items)
    return False


def _join(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _discount(p: m.Promotion, amount: Decimal, currency: str, rounding: str) -> Decimal:
    if p.kind == "percent":
        return rt.percent_of(amount, p.value, currency, rt.ROUNDING_MODES[rounding])
    return min(p.value, amount)


@rt.in_context
def lint(model: m.Model, module: n.Module) -> list[Diagnostic]:
    """The warnings of a ruleset that checks without error.

    The work is bounded: on a very large ruleset lint stops after a fixed amount of
    work and gives the warnings found so far (the same ones on every run)."""
    linter = _Linter(model, module)
    formulas = _cache.set({})
    try:
        linter.run()
    finally:
        _cache.reset(formulas)
    return linter.found


def _line(source: str, number: int) -> str | None:
    """Line ``number`` (1-based, without its ``\\n``) of ``source``, from the index of
    its line starts (made once per source); None past either end."""
    starts = line_starts(source)
    if not 0 < number <= len(starts):
        return None
    end = starts[number] - 1 if number < len(starts) else len(source)
    return source[starts[number - 1]:end]


_ALLOW = re.compile(r"\brevrules:\s*allow\s+([A-Za-z0-9_, ]+)")


def _comment(line: str) -> str | None:
    """The comment of a source line (from a ``#`` outside a string), or None."""
    quoted = False
    i = 0
    while i < len(line):
        c = line[i]
        if quoted and c == "\\":
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "#" and not quoted:
            return line[i:]
        i += 1
    return None


def allowed(diagnostic: Diagnostic, source: str) -> bool:
    """Whether a ``# revrules: allow CODE`` comment silences a warning: a trailing comment
    on the warning's line, or a comment on a line of its own just before it."""
    if diagnostic.severity != "warning":
        return False
    line = diagnostic.span.line
    for number, own_line in ((line, False), (line - 1, True)):
        text = _line(source, number)
        if text is None:
            continue
        comment = _comment(text)
        if comment is None or (own_line and text[:len(text) - len(comment)].strip()):
            continue
        match = _ALLOW.search(comment)
        if match and diagnostic.code in re.split(r"[\s,]+", match.group(1).strip()):
            return True
    return False
