"""Running ``.rrtest`` files: scenarios, example rows and invariants (docs/testing.md).

Every test is a :class:`Case` whose :meth:`Case.run` gives a :class:`Result`. A scenario
applies its events to a new state and checks each ``expect`` line against the outcome
of the event before it; an example row is one checkout; an invariant is checked after
every event of the scenarios and rows, then against event sequences that hypothesis
draws for the ruleset (:func:`revrules.testing.event_sequences`), seeded, without a
database. A counterexample is shrunk and printed as a scenario to paste.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from lark import Token, Tree

from .diagnostics import RulesetError, did_you_mean
from .engine import Engine
from .results import Decision, Outcome, RevenueEvent
from .rrtest import (ABSENT, ROOT_FIELDS, Examples, Expectation, Invariant, Money, Row, Scenario,
                     TestFile, _wire, event_text, parse_test)
from .ruleset import Ruleset, load
from .runtime import in_context
from .state import State, Subscription

__all__ = ["Case", "Result", "Suite", "collect", "load_suite", "DEFAULT_EXAMPLES"]

#: How many event sequences an invariant is checked against by default (small: CI).
DEFAULT_EXAMPLES = 25
#: The longest generated event sequence.
MAX_EVENTS = 12


@attrs.frozen
class Result:
    ok: bool
    message: str = ""
    counterexample: str | None = None  # a scenario to paste, for a failed invariant


class Failed(Exception):
    """An expectation that does not hold (what the result's message says)."""


@attrs.define
class Suite:
    """One ``.rrtest`` file with its ruleset, and the engine its tests use."""

    path: str
    test: TestFile
    ruleset: Ruleset
    make_engine: Callable[[], Engine] | None = None
    observe: Callable[[Outcome], None] | None = None

    def engine(self) -> Engine:
        return self.make_engine() if self.make_engine is not None else Engine(self.ruleset)

    def cases(self) -> list[Case]:
        out: list[Case] = [Case(self, "scenario", s.name, s.span.line, s)
                           for s in self.test.scenarios]
        for table in self.test.examples:
            for i, row in enumerate(table.rows, 1):
                out.append(Case(self, "examples", f"{table.name} [{i}]", row.span.line,
                                (table, row)))
        out += [Case(self, "invariant", inv.name, inv.span.line, inv)
                for inv in self.test.invariants]
        return out


@attrs.define
class Case:
    suite: Suite
    kind: str  # scenario | examples | invariant
    name: str
    line: int
    item: Any

    @property
    def title(self) -> str:
        return f"{self.kind} {self.name}"

    def run(self, seed: int = 0, examples: int = DEFAULT_EXAMPLES) -> Result:
        try:
            if self.kind == "scenario":
                run_scenario(self.suite, self.item)
            elif self.kind == "examples":
                table, row = self.item
                run_row(self.suite, table, row)
            else:
                return check_property(self.suite, self.item, seed, examples)
        except Failed as exc:
            return Result(False, str(exc))
        return Result(True)


# -- loading -----------------------------------------------------------------------------


def collect(paths: Sequence[str]) -> list[str]:
    """The .rrtest files named, or found under the directories named, sorted."""
    found: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                # hidden directories, and those starting with _ (fixtures that fail on
                # purpose, build output), are only run when named
                dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
                found += [os.path.normpath(os.path.join(root, f)) for f in sorted(files)
                          if f.endswith(".rrtest")]
        else:
            found.append(path)
    return found


def load_suite(path: str | os.PathLike[str], text: str | None = None) -> Suite:
    """Parse a test file and load the ruleset it names (relative to the file)."""
    file = os.fspath(path)
    if text is None:
        text = Path(file).read_text(encoding="utf-8")
    test = parse_test(text, file)
    assert test.ruleset is not None
    target = Path(file).parent / test.ruleset
    if not target.is_file():
        from .diagnostics import Diagnostic
        span = test.ruleset_span
        assert span is not None
        raise RulesetError([Diagnostic("error", "rrtest", f"no ruleset {test.ruleset!r} "
                                       f"next to {Path(file).name}", span)], {file: text})
    return Suite(file, test, load(target))


# -- scenarios ---------------------------------------------------------------------------


def _where(span: Any) -> str:
    return f"{span.file}:{span.line}:{span.column}"


class _Run:
    """Applies events for one test, checking the invariants after each."""

    def __init__(self, suite: Suite):
        self.suite = suite
        self.engine = suite.engine()
        self.state = State()

    def apply(self, event: dict[str, Any], line: str) -> Outcome:
        outcome = self.engine.apply(self.state, event)
        if self.suite.observe is not None:
            self.suite.observe(outcome)
        self.state = outcome.state
        if outcome.ok and not outcome.replayed:
            for inv in self.suite.test.invariants:
                problem = violation(inv, outcome, event)
                if problem:
                    raise Failed(f"invariant {inv.name!r} ({_where(inv.span)}) fails "
                                 f"after {line}: {problem}")
        return outcome


@in_context
def run_scenario(suite: Suite, scenario: Scenario) -> None:
    run = _Run(suite)
    last: Outcome | None = None
    event: dict[str, Any] | None = None
    line = ""
    checked_refusal = True
    for step in scenario.steps:
        if step.event is not None:
            if last is not None and not last.ok and not checked_refusal:
                raise _refused(last, line)
            event, line = step.event, f"line {step.span.line} ({event_text(step.event)})"
            last = run.apply(step.event, line)
            checked_refusal = last.ok
            continue
        assert last is not None and event is not None
        for x in step.expect:
            if x.kind == "error":
                checked_refusal = True
            check(x, last, event, line)
    if last is not None and not last.ok and not checked_refusal:
        raise _refused(last, line)


def _refused(outcome: Outcome, line: str) -> Failed:
    assert outcome.error is not None
    return Failed(f"{line} was refused: {outcome.error.code}: {outcome.error.message}\n"
                  f"  (write `expect error {outcome.error.code}` after it if that is meant)")


def check(x: Expectation, outcome: Outcome, event: dict[str, Any], line: str) -> None:
    """Raise :class:`Failed` unless the expectation holds for ``outcome``."""
    where = f"{_where(x.span)}: after {line}"
    if x.kind == "error":
        actual = outcome.error.code if outcome.error else "none (the event applied)"
        if outcome.ok or actual != x.value:
            raise Failed(f"{where}\n  error: expected {x.value}, actual {actual}")
        return
    if not outcome.ok:
        assert outcome.error is not None
        raise Failed(f"{where}\n  the event was refused: {outcome.error.code}: "
                     f"{outcome.error.message}")
    types = [e.type for e in outcome.events]
    if x.kind == "ok":
        return
    if x.kind == "events":
        if tuple(types) != x.value:
            raise Failed(f"{where}\n  events: expected {', '.join(x.value)}\n"
                         f"          actual   {', '.join(types) or 'none'}")
        return
    if x.kind == "events_include":
        rest = iter(types)
        if not all(any(t == want for t in rest) for want in x.value):
            raise Failed(f"{where}\n  events include (in order): {', '.join(x.value)}\n"
                         f"  actual events: {', '.join(types) or 'none'}")
        return
    if x.kind == "no_event":
        if x.key in types:
            raise Failed(f"{where}\n  expected no {x.key} event; actual events: "
                         f"{', '.join(types)}")
        return
    if x.kind == "event":
        assert x.key is not None
        candidates = [e for e in outcome.events if e.type == x.key]
        if not candidates:
            raise Failed(f"{where}\n  expected a {x.key} event; actual events: "
                         f"{', '.join(types) or 'none'}")
        for candidate in candidates:
            if all(_same(v, _event_field(candidate, k), candidate.currency)
                   for k, v, _ in x.fields):
                return
        lines = [f"{where}\n  no {x.key} event has "
                 + " ".join(f"{k} {_show(v)}" for k, v, _ in x.fields)]
        for candidate in candidates:
            lines.append("  actual: " + " ".join(
                f"{k} {_show(_event_field(candidate, k), candidate.currency)}"
                for k, _, _ in x.fields))
        raise Failed("\n".join(lines))
    if x.kind == "reason":
        reasons = [r for d in outcome.decisions for r in d.reasons]
        reasons += [r for e in outcome.events for r in e.reasons]
        if x.value not in reasons:
            raise Failed(f"{where}\n  expected the reason {x.value!r}; actual reasons: "
                         + (", ".join(repr(r) for r in dict.fromkeys(reasons)) or "none"))
        return
    if x.kind in ("status", "entitlements"):
        sub = _subscription(outcome, event)
        if sub is None:
            raise Failed(f"{where}\n  no subscription to look at")
        if x.kind == "status":
            if sub.status != x.value:
                raise Failed(f"{where}\n  status of {sub.id}: expected {x.value}, actual "
                             f"{sub.status}")
        elif tuple(sorted(sub.entitlements)) != x.value:
            raise Failed(f"{where}\n  entitlements of {sub.id}: expected "
                         f"{', '.join(x.value) or 'none'}, actual "
                         f"{', '.join(sorted(sub.entitlements)) or 'none'}")
        return
    assert x.kind == "decision" and x.key is not None
    if not outcome.decisions:
        raise Failed(f"{where}\n  {x.key}: expected {_show(x.value)}, but the event made "
                     "no decision")
    decision = outcome.decisions[0]
    actual = _decision_field(decision, x.key)
    if not _same(x.value, actual, decision.currency):
        raise Failed(f"{where}\n  {x.key}: expected {_show(x.value)}, actual "
                     f"{_show(actual, decision.currency if _is_money(x.key) else None)}")


_MONEY = frozenset({"total", "tax", "net", "list", "discount", "credit", "gross", "amount",
                    "commission", "recurring"})


def _is_money(field: str) -> bool:
    return field in _MONEY


def _decision_field(decision: Decision, field: str) -> Any:
    if field == "discount":
        return sum((d.amount for d in decision.discounts), Decimal(0))
    return getattr(decision, field)


def _event_field(event: RevenueEvent, field: str) -> Any:
    return getattr(event, field)


def _subscription(outcome: Outcome, event: dict[str, Any]) -> Subscription | None:
    sub_id = event.get("subscription")
    if sub_id is None:
        ids = [d.subscription for d in outcome.decisions] + [e.subscription
                                                             for e in outcome.events]
        sub_id = ids[0] if ids else None
    return outcome.state.subscription(sub_id) if sub_id is not None else None


def _same(expected: Any, actual: Any, currency: str | None) -> bool:
    if expected is ABSENT:
        return actual is None or actual == ()
    if isinstance(expected, Money):
        if expected.currency is not None and expected.currency != currency:
            return False
        return (isinstance(actual, (Decimal, int)) and not isinstance(actual, bool)
                and actual == expected.amount)
    if isinstance(expected, dt.datetime) and isinstance(actual, dt.datetime):
        return expected == actual
    if isinstance(expected, dt.date) and not isinstance(expected, dt.datetime):
        return isinstance(actual, dt.date) and not isinstance(actual, dt.datetime) \
            and expected == actual
    if isinstance(expected, str) and isinstance(actual, tuple):
        return expected in actual
    return bool(type(expected) is type(actual) and expected == actual)


def _show(value: Any, currency: str | None = None) -> str:
    if value is None or value is ABSENT:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal) and currency:
        return f"{currency} {value}"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    return str(value)


# -- examples ----------------------------------------------------------------------------


@in_context
def run_row(suite: Suite, table: Examples, row: Row) -> None:
    values = dict(zip(table.inputs, row.inputs, strict=True))
    when = values.pop("date", None)
    at = _wire(when) if when is not None and when is not ABSENT else table.when
    customer: dict[str, Any] = {"id": "c1"}
    event: dict[str, Any] = {"id": "e1", "type": "checkout", "at": at, "subscription": "s1"}
    for column, value in values.items():
        if value is ABSENT:
            continue
        if column in ("storefront", "plan", "code", "subscription"):
            event[column] = str(_wire(value))
        elif column == "customer":
            customer["id"] = str(_wire(value))
        else:
            customer[column] = _wire(value)
    event["customer"] = customer
    model = suite.ruleset.model
    # a ruleset with one storefront (or plan) needs no column for it
    for column, names in (("storefront", [sf.name for sf in model.storefronts]),
                          ("plan", [p.name for p in model.plans])):
        if column not in event and len(names) == 1:
            event[column] = names[0]
    line = f"row {row.span.line} ({event_text(event)})"
    outcome = _Run(suite).apply(event, line)
    wanted = dict(zip(table.outputs, zip(row.outputs, row.spans, strict=True), strict=True))
    error = wanted.pop("error", None)
    if error is not None and error[0] is not ABSENT:
        check(Expectation("error", error[1], value=str(error[0])), outcome, event, line)
        return
    if not outcome.ok:
        raise _refused(outcome, line)
    problems = []
    for column, (value, span) in wanted.items():
        if column == "status":
            x = Expectation("status", span, value=str(value))
        elif column == "reason":
            if value is ABSENT:
                continue
            x = Expectation("reason", span, value=str(value))
        elif column == "events":
            x = Expectation("events", span, value=tuple(
                t.strip() for t in str(value).split(",") if t.strip()))
        else:
            x = Expectation("decision", span, key=column, value=value)
        try:
            check(x, outcome, event, line)
        except Failed as exc:
            problems.append(str(exc).split("\n", 1)[1])
    if problems:
        raise Failed(f"{_where(row.span)}: after {line}\n" + "\n".join(problems))


# -- invariants --------------------------------------------------------------------------


class EvalError(Exception):
    pass


def bindings(inv: Invariant, outcome: Outcome,
             event: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The values an invariant is checked with after one outcome."""
    state = outcome.state
    if "decision" in inv.roots:
        for d in outcome.decisions:
            env: dict[str, Any] = {"decision": d, "subscription": state.subscription(
                d.subscription)}
            if "event" in inv.roots:
                for e in outcome.events:
                    if e.subscription == d.subscription:
                        yield {**env, "event": e}
            else:
                yield env
    elif "event" in inv.roots:
        for e in outcome.events:
            yield {"event": e, "subscription": state.subscription(e.subscription)}
    else:
        ids = [event.get("subscription")] if event else []
        ids += [d.subscription for d in outcome.decisions]
        ids += [e.subscription for e in outcome.events]
        for sub_id in dict.fromkeys(i for i in ids if i is not None):
            sub = state.subscription(sub_id)
            if sub is not None:
                yield {"subscription": sub}


def violation(inv: Invariant, outcome: Outcome, event: dict[str, Any] | None) -> str | None:
    """Why the invariant fails after ``outcome`` (None when it holds)."""
    for env in bindings(inv, outcome, event):
        if "subscription" in inv.roots and env.get("subscription") is None:
            continue
        try:
            value = evaluate(inv.expr, env)
        except EvalError as exc:
            return str(exc)
        if value is not True:
            return _explain(inv, env)
    return None


def _explain(inv: Invariant, env: dict[str, Any]) -> str:
    """The invariant's fields with their values: ``decision.total = 0.00``."""
    shown: list[str] = []
    todo = [inv.expr]
    while todo:
        node = todo.pop()
        if not isinstance(node, Tree):
            continue
        if node.data == "field":
            try:
                text = f"{_path(node)} = {_show(evaluate(node, env))}"
            except EvalError:
                continue
            if text not in shown:
                shown.append(text)
            continue
        todo.extend(reversed(node.children))
    who = []
    for root in ("decision", "event", "subscription"):
        item = env.get(root)
        if item is not None:
            who.append(f"{root} of {item.id if root == 'subscription' else item.subscription}"
                       if root != "event" else f"event {item.type} of {item.subscription}")
    return ", ".join(shown) + (f" ({'; '.join(who)})" if who else "")


def _path(node: Tree[Token]) -> str:
    parts = []
    while isinstance(node, Tree) and node.data == "field":
        parts.append(str(node.children[1]))
        node = node.children[0]  # type: ignore[assignment]
    if isinstance(node, Tree) and node.data == "name":
        parts.append(str(node.children[0]))
    return ".".join(reversed(parts))


def _get(root: str, item: Any, name: str) -> Any:
    if name not in ROOT_FIELDS[root]:
        raise EvalError(f"{root} has no field {name!r}"
                        f"{did_you_mean(name, ROOT_FIELDS[root])}")
    if root == "decision" and name == "discount":
        return sum((d.amount for d in item.discounts), Decimal(0))
    if root == "decision" and name == "discounts":
        return tuple(d.rule for d in item.discounts)
    if root == "decision" and name == "trace":
        return tuple(t.rule for t in item.trace)
    if root == "subscription" and name == "entitled":
        return bool(item.entitlements)
    return getattr(item, name)


def evaluate(node: Any, env: dict[str, Any]) -> Any:
    """The value of an invariant expression (Decimal, int, str, bool, date, None)."""
    kind = node.data
    c = node.children
    if kind == "or_":
        return _bool(evaluate(c[0], env)) or _bool(evaluate(c[1], env))
    if kind == "and_":
        return _bool(evaluate(c[0], env)) and _bool(evaluate(c[1], env))
    if kind == "not_":
        return not _bool(evaluate(c[0], env))
    if kind in _COMPARE:
        left, right = evaluate(c[0], env), evaluate(c[1], env)
        if kind in ("in_", "not_in"):
            if not isinstance(right, tuple):
                raise EvalError("'in' needs a set on its right: {a, b}")
            return (left in right) == (kind == "in_")
        if kind in ("eq", "ne"):
            return (_norm(left) == _norm(right)) == (kind == "eq")
        if left is None or right is None:
            raise EvalError(f"cannot compare none in {_source(node)}")
        try:
            return bool(_COMPARE[kind](_norm(left), _norm(right)))
        except TypeError:
            raise EvalError(f"cannot compare {_show(left)} and {_show(right)} in "
                            f"{_source(node)}") from None
    if kind in _ARITH:
        left, right = evaluate(c[0], env), evaluate(c[1], env)
        try:
            return _ARITH[kind](_num(left), _num(right))
        except (ArithmeticError, TypeError):
            raise EvalError(f"cannot compute {_source(node)}") from None
    if kind == "neg":
        return -_num(evaluate(c[0], env))
    if kind == "field":
        base = c[0]
        if isinstance(base, Tree) and base.data == "name" and str(base.children[0]) in ROOT_FIELDS:
            root = str(base.children[0])
            return _get(root, env[root], str(c[1]))
        raise EvalError(f"{_source(node)}: only decision, event and subscription have fields")
    if kind == "name":
        name = str(c[0])
        if name in env:
            raise EvalError(f"{name} is read by its fields: {name}.total, …")
        return None if name == "none" else name
    if kind == "call":
        name, args = str(c[0]), [evaluate(a, env) for a in c[1:]]
        if name in ("min", "max") and args:
            return (min if name == "min" else max)(_num(a) for a in args)
        if name == "abs" and len(args) == 1:
            return abs(_num(args[0]))
        if name == "len" and len(args) == 1 and isinstance(args[0], (tuple, str)):
            return len(args[0])
        if name == "days_between" and len(args) == 2:
            a, b = (x.date() if isinstance(x, dt.datetime) else x for x in args)
            if isinstance(a, dt.date) and isinstance(b, dt.date):
                return (b - a).days
        raise EvalError(f"unknown function or arguments: {_source(node)}")
    if kind == "set_":
        return tuple(evaluate(x, env) for x in c)
    if kind == "money":
        return Decimal(str(c[1]))
    if kind == "percent":
        return Decimal(str(c[0])[:-1]) / 100
    if kind == "number":
        return Decimal(str(c[0]))
    if kind == "string":
        from .parser import _unquote
        return _unquote(str(c[0]))
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "date":
        return dt.date.fromisoformat(str(c[0]))
    if kind == "datetime":
        return dt.datetime.fromisoformat(str(c[0]).replace("Z", "+00:00"))
    raise EvalError(f"unsupported expression: {_source(node)}")  # pragma: no cover


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise EvalError(f"expected true or false, found {_show(value)}")
    return value


def _num(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise EvalError(f"expected a number, found {_show(value)}")
    return Decimal(value)


def _norm(value: Any) -> Any:
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _source(node: Any) -> str:
    meta = node.meta
    return f"the expression at line {meta.line}" if not getattr(meta, "empty", True) \
        else "the expression"


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
    "in_": lambda a, b: a in b, "not_in": lambda a, b: a not in b}
_ARITH: dict[str, Callable[[Decimal, Decimal], Decimal]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b}


# -- property runs -----------------------------------------------------------------------


class _Violated(Exception):
    pass


def _first_violation(suite: Suite, inv: Invariant, events: Sequence[dict[str, Any]],
                     observe: bool = False) -> tuple[int, str] | None:
    """(index of the event after which the invariant fails, why), or None."""
    engine, state = suite.engine(), State()
    for i, event in enumerate(events):
        outcome = engine.apply(state, event)
        if observe and suite.observe is not None:
            suite.observe(outcome)
        if not outcome.ok:
            return None  # not a valid sequence (after an event was dropped)
        state = outcome.state
        problem = violation(inv, outcome, event)
        if problem:
            return i, problem
    return None


def _reduce(suite: Suite, inv: Invariant,
            events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Drop every event the failure does not need (one at a time, to a fixed point)."""
    found = _first_violation(suite, inv, events)
    assert found is not None
    events, why = events[:found[0] + 1], found[1]
    changed = True
    while changed:
        changed = False
        for i in range(len(events) - 1, -1, -1):
            shorter = events[:i] + events[i + 1:]
            again = _first_violation(suite, inv, shorter)
            if again is not None:
                events, why, changed = shorter[:again[0] + 1], again[1], True
                break
    return events, why


def counterexample_text(inv: Invariant, events: Iterable[dict[str, Any]], why: str) -> str:
    """A scenario to paste into the .rrtest file: it fails until the ruleset is fixed."""
    lines = [f"# invariant {inv.name!r} fails after the last event: {why}",
             f'scenario "counterexample: {_escape(inv.name)}" {{']
    lines += [f"  {event_text(e)}" for e in events]
    lines.append("}")
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@in_context
def check_property(suite: Suite, inv: Invariant, seed: int, examples: int) -> Result:
    """Check the invariant after every event of ``examples`` generated sequences."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as with_seed

    from .testing import event_sequences

    found: list[list[dict[str, Any]]] = []

    @with_seed(seed)
    @settings(max_examples=examples, database=None, deadline=None, derandomize=False,
              verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.generate, Phase.shrink), print_blob=False)
    @given(event_sequences(suite.ruleset, max_size=MAX_EVENTS))
    def prop(events: list[dict[str, Any]]) -> None:
        if _first_violation(suite, inv, events, observe=True) is not None:
            found.append(events)
            raise _Violated

    try:
        prop()
    except _Violated:
        pass
    except Exception as exc:  # noqa: BLE001 - a flaky or erroring run is a failure
        if not found:
            return Result(False, f"the property run failed: {type(exc).__name__}: {exc}")
    if not found:
        return Result(True, f"{examples} sequences")
    events, why = _reduce(suite, inv, found[-1])
    text = counterexample_text(inv, events, why)
    return Result(False, f"{_where(inv.span)}: invariant {inv.name!r} fails after "
                  f"{len(events)} event{'s' if len(events) != 1 else ''} (seed {seed}): "
                  f"{why}", text)
