"""Compile a checked model into Python code, once.

Every rule condition becomes a small Python function in one generated module,
compiled with :func:`compile` and registered in :mod:`linecache` so tracebacks and
debuggers show the generated lines. The engine calls these functions with a
:class:`Ctx`; evaluating a decision walks no AST and looks up no name by string.
Price schedules, promotion candidates and entitlements become lookup tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import linecache
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import attrs

from . import model as m
from . import nodes as n
from . import runtime as rt

__all__ = ["Ctx", "Predicate", "Recorder", "compile_model", "generated_source"]


class Ctx:
    """What a rule can read. One is built per evaluation; fields not in scope stay None."""

    __slots__ = ("customer", "customer_id", "storefront", "plan", "cycle", "status", "at",
                 "event_type", "reason", "attempt", "psp", "total")

    def __init__(self, customer: Any, customer_id: str, storefront: m.Storefront, plan: m.Plan,
                 cycle: int, status: str, at: dt.datetime, event_type: str,
                 total: rt.Money | None = None, reason: str | None = None, attempt: int = 0,
                 psp: str | None = None):
        self.customer = customer
        self.customer_id = customer_id
        self.storefront = storefront
        self.plan = plan
        self.cycle = cycle
        self.status = status
        self.at = at
        self.event_type = event_type
        self.total = total
        self.reason = reason
        self.attempt = attempt
        self.psp = psp


Predicate = Callable[[Ctx], bool]
#: What a coverage build calls for each boolean sub-condition: ``(index, value) -> value``.
Recorder = Callable[[int, Any], Any]

_FIELD_CODE = {
    ("storefront", "name"): "c.storefront.name",
    ("storefront", "channel"): "c.storefront.channel",
    ("storefront", "region"): "c.storefront.region",
    ("storefront", "currency"): "c.storefront.currency",
    ("plan", "name"): "c.plan.name",
    ("subscription", "cycle"): "c.cycle",
    ("subscription", "status"): "c.status",
    ("subscription", "plan"): "c.plan.name",
    ("subscription", "storefront"): "c.storefront.name",
    ("event", "at"): "c.at",
    ("event", "type"): "c.event_type",
    ("payment", "reason"): "c.reason",
    ("payment", "attempt"): "c.attempt",
    ("payment", "psp"): "c.psp",
}
_CMP_HELPER = {"<": "m_lt", "<=": "m_le", ">": "m_gt", ">=": "m_ge", "==": "m_eq", "!=": "m_ne"}
_ARITH_HELPER = {"+": "m_add", "-": "m_sub", "*": "m_mul", "/": "m_div"}
_OPERATORS = frozenset(("and", "or", "in", "not in", "+", "-", "*", "/", *_CMP_HELPER))
_HELPERS = ("m_lt", "m_le", "m_gt", "m_ge", "m_eq", "m_ne", "m_add", "m_sub", "m_mul", "m_div",
            "div", "opt", "as_datetime", "f_min", "f_max", "f_round", "f_days_between",
            "t_add", "t_sub")


@attrs.frozen
class CompiledRules:
    """The generated module: one predicate per rule, keyed by the rule object."""

    source: str
    filename: str
    predicates: dict[int, Predicate] = attrs.field(repr=False)
    # a coverage build only: the recorded sub-conditions, by index (rule, expression)
    conditions: tuple[tuple[m.Rule, n.Expr], ...] = attrs.field(default=(), repr=False)

    def predicate(self, rule: m.Rule | None) -> Predicate | None:
        if rule is None or rule.when is None:
            return None
        return self.predicates[id(rule)]


def compile_model(model: m.Model, *, coverage: Recorder | None = None) -> CompiledRules:
    """Generate, compile and load the rule functions of a model.

    With ``coverage``, a separate variant is generated (the normal code is untouched):
    every boolean sub-condition of a rule -- the whole condition, and each operand of
    an ``and`` / ``or`` chain (a ``not`` is recorded as itself, not its operand) --
    is wrapped in ``cov_hit(i, ...)``, which calls ``coverage(i, value)`` and must
    return the value; ``CompiledRules.conditions[i]`` says which rule and expression
    ``i`` is. Short-circuiting is unchanged: an operand that is not evaluated is not
    recorded.
    """
    gen = _Generator(model, cover=coverage is not None)
    names: dict[int, str] = {}
    for rule in _rules(model):
        if rule.when is not None:
            names[id(rule)] = gen.function(rule)
    source = gen.module_source()
    # the digest keeps two versions of one file apart in linecache (what-if diffs, reloads)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:12]
    # a code object's file name is never parsed as source; ascii() still keeps control
    # characters of a hostile path out of tracebacks
    filename = f"<revrules {ascii(model.file)} {digest}>"
    code = compile(source, filename, "exec")
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {h: getattr(rt, h) for h in _HELPERS}
    namespace.update(gen.constants)
    if coverage is not None:
        namespace["cov_hit"] = coverage
    exec(code, namespace)  # noqa: S102 - our own generated code, from checked rules only
    return CompiledRules(source, filename, {k: namespace[v] for k, v in names.items()},
                         tuple(gen.recorded))


def generated_source(model: m.Model, *, coverage: bool = False) -> str:
    """The Python source the compiler generates for a model (for inspection and tests);
    ``coverage``: the coverage variant's."""
    return compile_model(model, coverage=_no_record if coverage else None).source


def _no_record(index: int, value: Any) -> Any:
    return value


def _rules(model: m.Model) -> list[m.Rule]:
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
    return rules


class _Generator:
    def __init__(self, model: m.Model, cover: bool = False):
        self.model = model
        self.cover = cover
        self.recorded: list[tuple[m.Rule, n.Expr]] = []
        self._rule: m.Rule | None = None
        # Nothing from outside reaches this source except ascii() of a value (a string
        # literal, a file name) or a name that matched the grammar's NAME token; ascii()
        # escapes every control character, so no newline can end a comment early.
        self.lines: list[str] = [
            f"# generated by revrules from {ascii(model.file)}; do not edit", ""]
        self.constants: dict[str, Any] = {}
        self._constant_ids: dict[tuple[str, Any], str] = {}
        self.count = 0

    def module_source(self) -> str:
        return "\n".join(self.lines) + "\n"

    def function(self, rule: m.Rule) -> str:
        assert rule.when is not None
        name = f"rule_{self.count}"
        self.count += 1
        where = f"line {rule.span.line}:{rule.span.column}"
        self.lines.append(f"def {name}(c):  # {where} {ascii(rule.name)}")
        self._rule = rule
        # the checker proved the condition is a bool: no bool() wrapper needed
        self.lines.append(f"    return {self.covered(rule.when)}")
        self.lines.append("")
        return name

    def covered(self, e: n.Expr) -> str:
        """``e``'s code; in a coverage build, wrapped to record its value."""
        if not self.cover:
            return self.expr(e)
        assert self._rule is not None
        index = len(self.recorded)
        self.recorded.append((self._rule, e))
        return f"cov_hit({index!r}, {self.expr(e)})"

    def constant(self, value: Any) -> str:
        if isinstance(value, str):
            return ascii(value)  # escapes: the generated source stays printable ASCII
        if isinstance(value, (int, bool)):
            return repr(value)
        key = (type(value).__name__, value if not isinstance(value, frozenset)
               else tuple(sorted(map(repr, value))))
        if key not in self._constant_ids:
            name = f"K{len(self._constant_ids)}"
            self._constant_ids[key] = name
            self.constants[name] = value
        return self._constant_ids[key]

    def type(self, expr: n.Expr) -> m.Type:
        return self.model.types[id(expr)]

    def expr(self, e: n.Expr, want_datetime: bool = False) -> str:
        if isinstance(e, n.Literal):
            value = e.value
            if e.kind == "percent":
                value = rt.CONTEXT.divide(cast(Decimal, value), Decimal(100))
            elif e.kind == "duration":
                value = rt.delta(cast(n.Duration, value))
            elif e.kind == "date" and want_datetime:
                value = rt.start_of(cast(dt.date, value), self.model.timezone)
            return self.constant(value)
        if isinstance(e, n.Name):
            kind = self.type(e).kind
            if e.name == "total":
                return "c.total"
            if e.name == "storefront" and kind == "storefront":
                return "c.storefront.name"
            if e.name == "plan" and kind == "plan":
                return "c.plan.name"
            return ascii(e.name)
        if isinstance(e, n.Field):
            if isinstance(e.obj, n.Name) and e.obj.name == "customer":
                return "c.customer_id" if e.name == "id" else f"c.customer[{ascii(e.name)}]"
            if isinstance(e.obj, n.Name) and (e.obj.name, e.name) in _FIELD_CODE:
                return _FIELD_CODE[(e.obj.name, e.name)]
            return self.value_field(e)
        if isinstance(e, n.SetLit):
            items = [self.expr(i) for i in e.items]
            if all(isinstance(i, n.Literal) or self.type(i).kind in (
                    "channel", "storefront", "plan", "psp", "region") and isinstance(i, n.Name)
                   for i in e.items):
                values = frozenset(_literal_value(i) for i in e.items)
                return self.constant(values)
            return "(" + ", ".join(items) + ",)"
        if isinstance(e, n.Unary):
            inner = self.expr(e.operand)
            if e.op == "not":
                return f"(not {inner})"
            if self.type(e.operand).kind == "money":
                return f"m_mul({inner}, -1)"
            return f"(-{inner})"
        if isinstance(e, n.Call):
            args = ", ".join(self.expr(a) for a in e.args)
            if e.func == "days_between":  # calendar days in the ruleset's timezone
                args += f", {ascii(self.model.timezone)}"
            return f"f_{_grammar_name(e.func)}({args})"
        return self.binary(e)

    def value_field(self, e: n.Field) -> str:
        """A field of a storefront or plan value (``subscription.storefront.channel``,
        ``web_eu.region``): values of those types are names, not objects."""
        kind = self.type(e.obj).kind
        field = _grammar_name(e.name)
        obj = e.obj
        if kind in ("storefront", "plan"):
            if (isinstance(obj, n.Field) and isinstance(obj.obj, n.Name)
                    and obj.obj.name == "subscription") or (
                    isinstance(obj, n.Name) and obj.name == kind):
                return f"c.{kind}.{field}"  # the subscription's own: the context's
            if isinstance(obj, n.Name):  # a declared one, by name: known now
                decls = self.model.storefronts if kind == "storefront" else self.model.plans
                decl = next(d for d in decls if d.name == obj.name)
                return self.constant(getattr(decl, field))
        return f"{self.expr(obj)}.{field}"

    def binary(self, e: n.Binary) -> str:
        op = e.op
        if op not in _OPERATORS:
            raise ValueError(f"not an operator: {op!r}")
        lt, rt_ = self.type(e.left), self.type(e.right)
        if op in ("and", "or"):  # one flat n-ary expression for a whole chain
            return "(" + f" {op} ".join(self.covered(x) for x in e.chain()) + ")"
        temporal = {lt.kind, rt_.kind} == {"date", "datetime"}
        left = self.expr(e.left, want_datetime=temporal)
        right = self.expr(e.right, want_datetime=temporal)
        tz = ascii(self.model.timezone)
        if temporal and lt.kind == "date" and not isinstance(e.left, n.Literal):
            left = f"as_datetime({left}, {tz})"
        if temporal and rt_.kind == "date" and not isinstance(e.right, n.Literal):
            right = f"as_datetime({right}, {tz})"
        if op in ("in", "not in"):
            return f"({left} {op} {right})"
        if "money" in (lt.kind, rt_.kind):
            if op in _CMP_HELPER:
                return f"{_CMP_HELPER[op]}({left}, {right})"
            return f"{_ARITH_HELPER[op]}({left}, {right})"
        if op in ("<", "<=", ">", ">=") and (lt.optional or rt_.optional):
            return f"opt({ascii(op)}, {left}, {right})"
        if op == "/":
            return f"div({left}, {right})"
        if rt_.kind == "duration" and op in ("+", "-"):
            # calendar arithmetic that can leave the calendar: a stable error, not a crash
            return f"{'t_add' if op == '+' else 't_sub'}({left}, {right})"
        return f"({left} {op} {right})"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _grammar_name(name: str) -> str:
    """``name`` if it matches the grammar's NAME token: only such names become code."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a name: {name!r}")
    return name


def _literal_value(e: n.Expr) -> Any:
    if isinstance(e, n.Name):
        return e.name
    assert isinstance(e, n.Literal)
    if e.kind == "percent":
        return rt.CONTEXT.divide(cast(Decimal, e.value), Decimal(100))
    return e.value
