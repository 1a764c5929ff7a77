"""``.rrtest`` files: scenarios, parameterised examples and invariants (docs/testing.md).

:func:`parse_test` reads one file with the grammar in ``grammar/rrtest.lark`` (Lark,
LALR(1), contextual lexer, as for ``.rr``); syntax errors are :class:`Diagnostic` values
with ``file:line:col`` and a caret, raised together as :class:`RulesetError`.
:mod:`revrules.rrtest_run` runs what a file holds.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

import attrs
import lark
from lark import Token, Tree
from lark.lexer import PatternStr

from .diagnostics import Diagnostic, RulesetError
from .grammars import grammar_text
from .nodes import Span
from .parser import _check_tree, _unquote

__all__ = ["Expectation", "Examples", "Invariant", "Money", "Row", "Scenario", "Step",
           "TestFile", "VERBS", "parse_test", "event_text", "value_text"]

#: The verb of an event line → the event type it sends (every type of events.EVENT_TYPES).
VERBS: dict[str, str] = {
    "checkout": "checkout", "pay": "payment_succeeded", "fail": "payment_failed",
    "renew": "renewal_due", "notify": "store_notification",
    "change": "plan_change_requested", "pause": "pause_requested",
    "resume": "resume_requested", "cancel": "cancel_requested", "consent": "consent_given",
    "decline": "consent_declined", "refund": "refund_requested", "credit": "credit_granted",
    "tick": "tick",
}
_TYPE_VERBS = {kind: verb for verb, kind in VERBS.items()}

#: Figures an ``expect`` line can name on a decision, and on a revenue event.
DECISION_FIELDS = ("total", "tax", "net", "list", "discount", "credit", "psp", "trial_days",
                   "next_charge", "due", "retry_at", "grace_ends", "kind", "currency",
                   "charge")
EVENT_FIELDS = ("gross", "discount", "credit", "tax", "net", "amount", "commission", "rule",
                "psp", "date", "charge", "list", "recurring", "plan", "storefront",
                "subscription", "customer", "currency")
#: Columns of an examples table besides customer attributes, and what they may expect.
INPUT_COLUMNS = ("date", "storefront", "plan", "code", "customer", "subscription")
OUTPUT_COLUMNS = DECISION_FIELDS + ("status", "error", "reason", "events")


@attrs.frozen
class Money:
    """A figure as written: ``EUR 12.99`` (currency given) or ``12.99``."""

    currency: str | None
    amount: Decimal

    def __str__(self) -> str:
        return f"{self.currency} {self.amount}" if self.currency else str(self.amount)


class _Absent:
    """``-`` in a table cell, ``none`` elsewhere: no value."""

    def __repr__(self) -> str:
        return "none"


ABSENT: Any = _Absent()


@attrs.frozen
class Expectation:
    """One ``expect`` item: ``kind`` says what it looks at; ``key`` names a field or an
    event type; ``value`` is what it must be; ``fields`` are a revenue event's."""

    kind: Literal["error", "ok", "events", "events_include", "no_event", "event", "reason",
                  "status", "entitlements", "decision"]
    span: Span
    key: str | None = None
    value: Any = None
    fields: tuple[tuple[str, Any, Span], ...] = ()


@attrs.frozen
class Step:
    """An event line (``event`` set) or an ``expect`` line (``expect`` set)."""

    span: Span
    event: dict[str, Any] | None = None
    expect: tuple[Expectation, ...] = ()


@attrs.frozen
class Scenario:
    name: str
    span: Span
    steps: tuple[Step, ...]


@attrs.frozen
class Row:
    span: Span
    inputs: tuple[Any, ...]
    outputs: tuple[Any, ...]
    spans: tuple[Span, ...]  # one per output cell


@attrs.frozen
class Examples:
    name: str
    span: Span
    when: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    rows: tuple[Row, ...]


@attrs.frozen
class Invariant:
    name: str
    span: Span
    expr: Any = attrs.field(eq=False, repr=False)  # the expression's Lark tree
    text: str = ""
    roots: frozenset[str] = frozenset()  # which of decision, event, subscription it reads


@attrs.frozen
class TestFile:
    file: str
    source: str = attrs.field(repr=False)
    ruleset: str | None
    ruleset_span: Span | None
    scenarios: tuple[Scenario, ...] = ()
    examples: tuple[Examples, ...] = ()
    invariants: tuple[Invariant, ...] = ()


# -- parsing ---------------------------------------------------------------------------


@functools.cache
def _parser() -> lark.Lark:
    grammar = grammar_text("rrtest")
    return lark.Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                     maybe_placeholders=False)


def parse_test(text: str, file: str = "<string>") -> TestFile:
    """Parse ``.rrtest`` text; raise :class:`RulesetError` with what is wrong."""
    text = text.removeprefix("\ufeff")
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as exc:
        raise RulesetError([_syntax(exc, text, file)], {file: text}) from None
    problems = _check_tree(tree, file)  # the limits of expressions, as in .rr
    if problems:
        raise RulesetError(problems, {file: text})
    build = _Build(file, text)
    result = build.file(tree)
    if build.problems:
        raise RulesetError(build.problems, {file: text})
    return result


_WORDS = {
    "NAME": "a name", "STRING": 'a string in "quotes"', "WHEN": "a date like 2027-02-01",
    "DATE": "a date like 2027-02-01", "DATETIME": "a datetime like 2027-02-01T00:00:00Z",
    "SIGNED": "a number", "NUMBER": "a number", "PERCENT": "a percentage like 19%",
    "CURRENCY": "an amount like EUR 12.99",
    "$END": "end of file",
}


def _describe(terminal: str) -> str:
    if terminal in _WORDS:
        return _WORDS[terminal]
    for term in _parser().terminals:
        if term.name == terminal and isinstance(term.pattern, PatternStr):
            return f"'{term.pattern.value}'"
    return terminal.lower()


_EVENT_FIELDS = frozenset({"PLAN", "TO", "AT", "CUSTOMER", "CODE", "REASON", "AMOUNT", "PSP",
                           "REFERENCE", "ATTEMPT", "NOTIFICATION", "SUBTYPE", "CHARGE", "AND",
                           "ID"})
_PHRASES = {"an expression", "an event field (plan, at, customer, code, amount, …)"}


def _expected(expected: set[str]) -> str:
    if {"NAME", "NUMBER", "LPAR"} <= expected:
        expected = {t for t in expected if t in ("RBRACE", "$END")} | {"an expression"}
    if {"PLAN", "CUSTOMER", "REASON"} <= expected:
        expected = (expected - _EVENT_FIELDS) | {
            "an event field (plan, at, customer, code, amount, …)"}
    words = sorted({_describe(t) if t not in _PHRASES else t for t in expected},
                   key=lambda w: (w.startswith("'"), w))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _syntax(exc: lark.exceptions.UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = exc.line if isinstance(exc.line, int) and exc.line > 0 else 1
    column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        token = exc.token
        expected = set(exc.expected)
        if exc.interactive_parser is not None:
            try:
                expected = exc.interactive_parser.accepts() or expected  # type: ignore[no-untyped-call]
            except lark.exceptions.LarkError:  # pragma: no cover - defensive
                pass
        if token.type == "$END":
            body = text.removesuffix("\n")
            line, column = body.count("\n") + 1, len(body) - body.rfind("\n")
            found, end = "end of file", column + 1
        else:
            found, end = f"'{token.value}'", column + max(len(str(token.value)), 1)
        message = f"unexpected {found}; expected {_expected(expected)}"
    else:
        pos = getattr(exc, "pos_in_stream", None) or 0
        char = text[pos] if pos < len(text) else "?"
        end = column + 1
        message = f"unexpected character {char!r}"
        allowed = set(getattr(exc, "allowed", None) or ())
        if allowed:
            message += f"; expected {_expected(allowed)}"
    return Diagnostic("error", "syntax", message, Span(file, line, column, line, end))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Build:
    """The parse tree → :class:`TestFile`; meaning problems go to ``problems``."""

    def __init__(self, file: str, text: str):
        self.path = file
        self.text = text
        self.problems: list[Diagnostic] = []

    def span(self, node: Tree[Token] | Token) -> Span:
        if isinstance(node, Token):
            return Span(self.path, node.line or 1, node.column or 1, node.end_line or 1,
                        node.end_column or 1)
        meta = node.meta
        if getattr(meta, "empty", True):
            return Span(self.path, 1, 1, 1, 2)
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def error(self, node: Tree[Token] | Token, message: str, hint: str | None = None) -> None:
        self.problems.append(Diagnostic("error", "rrtest", message, self.span(node), hint))

    def file(self, tree: Tree[Token]) -> TestFile:
        ruleset: str | None = None
        ruleset_span: Span | None = None
        scenarios: list[Scenario] = []
        examples: list[Examples] = []
        invariants: list[Invariant] = []
        for item in tree.children:
            assert isinstance(item, Tree)
            if item.data == "ruleset_ref":
                if ruleset is not None:
                    self.error(item, "a test file names one ruleset")
                ruleset, ruleset_span = _unquote(str(item.children[0])), self.span(item)
            elif item.data == "scenario":
                scenarios.append(self.scenario(item))
            elif item.data == "examples":
                examples.append(self.examples(item))
            else:
                invariants.append(self.invariant(item))
        if ruleset is None and (scenarios or examples or invariants):
            self.problems.append(Diagnostic(
                "error", "rrtest", "the file does not name the ruleset it tests",
                Span(self.path, 1, 1, 1, 2), 'start it with: ruleset "streaming.rr"'))
        for kind, items in (("scenario", scenarios), ("examples", examples),
                            ("invariant", invariants)):
            seen: set[str] = set()
            for test in items:
                if test.name in seen:
                    self.problems.append(Diagnostic(
                        "error", "rrtest", f"two {kind} tests are named {test.name!r}",
                        test.span))
                seen.add(test.name)
        return TestFile(self.path, self.text, ruleset, ruleset_span, tuple(scenarios),
                        tuple(examples), tuple(invariants))

    # -- scenarios --
    def scenario(self, tree: Tree[Token]) -> Scenario:
        name = _unquote(str(tree.children[0]))
        steps: list[Step] = []
        count = 0
        for child in tree.children[1:]:
            assert isinstance(child, Tree)
            if child.data == "expect_line":
                if not steps:
                    self.error(child, "an expect line follows an event")
                steps.append(Step(self.span(child), expect=tuple(
                    self.expectation(x) for x in child.children if isinstance(x, Tree))))
            else:
                count += 1
                steps.append(Step(self.span(child), event=self.event(child, f"e{count}")))
        return Scenario(name, self.span(tree), tuple(steps))

    def event(self, tree: Tree[Token], event_id: str) -> dict[str, Any]:
        if tree.data == "tick_line":
            return {"id": event_id, "type": "tick", "at": str(tree.children[0])}
        when, verb, *rest = tree.children
        assert isinstance(verb, Tree)
        kind = VERBS[str(verb.children[0])]
        event: dict[str, Any] = {"id": event_id, "type": kind, "at": str(when)}
        first = rest[0] if rest else None
        if isinstance(first, Tree) and first.data == "ident":
            if kind == "tick":
                self.error(first, "a tick names no subscription")
            event["subscription"] = self.ident(first)
            rest = rest[1:]
        elif kind != "tick":
            self.error(tree, f"'{verb.children[0]}' names a subscription",
                       f"write: {when} {verb.children[0]} s1 …")
        for field in rest:
            assert isinstance(field, Tree)
            self.field(field, event)
        return event

    def ident(self, tree: Tree[Token]) -> str:
        tok = tree.children[0]
        return _unquote(str(tok)) if tok.type == "STRING" else str(tok)  # type: ignore[union-attr]

    def field(self, field: Tree[Token], event: dict[str, Any]) -> None:
        kind = field.data
        args = field.children
        key = {"f_plan": "plan", "f_storefront": "storefront", "f_customer": "customer",
               "f_code": "code", "f_reason": "reason", "f_amount": "amount", "f_psp": "psp",
               "f_reference": "reference", "f_attempt": "attempt",
               "f_notification": "notification", "f_subtype": "subtype", "f_charge": "charge",
               "f_cancel": "cancel", "f_id": "id"}[str(kind)]
        if key in event and key != "id":
            self.error(field, f"the event already has a {key}")
        if key == "customer":
            assert isinstance(args[0], Tree)
            customer: dict[str, Any] = {"id": self.ident(args[0])}
            if len(args) > 1:
                assert isinstance(args[1], Tree)
                for attr in args[1].children:
                    assert isinstance(attr, Tree)
                    name, value = attr.children
                    if str(name) in customer:
                        self.error(attr, f"the customer already has {name}")
                    customer[str(name)] = _wire(self.value(value))
            event["customer"] = customer
        elif key == "amount":
            money = Money(str(args[0]) if len(args) > 1 else None, Decimal(str(args[-1])))
            if money.amount < 0:
                self.error(field, "an amount is not negative")
            event["amount"] = str(args[-1])
            if money.currency:
                from .events import EVENT_TYPES
                if "currency" not in EVENT_TYPES[event["type"]][1]:
                    self.error(field, f"{event['type']} events carry no currency",
                               f"write: amount {money.amount}")
                event["currency"] = money.currency
        elif key == "attempt":
            if not str(args[0]).isdigit():
                self.error(field, f"an attempt is a whole number, found {args[0]}")
            event["attempt"] = int(Decimal(str(args[0])))
        elif key == "cancel":
            event["cancel"] = True
        else:
            tok = args[0]
            assert isinstance(tok, Token)
            event[key] = _unquote(str(tok)) if tok.type == "STRING" else str(tok)

    def expectation(self, tree: Tree[Token]) -> Expectation:
        kind, args, span = str(tree.data), tree.children, self.span(tree)
        if kind == "x_error":
            return Expectation("error", span, value=str(args[0]))
        if kind == "x_ok":
            return Expectation("ok", span)
        if kind in ("x_events", "x_events_include"):
            assert isinstance(args[0], Tree)
            types = tuple(self.event_type(t) for t in args[0].children)
            return Expectation("events" if kind == "x_events" else "events_include", span,
                               value=types)
        if kind == "x_no_events":
            return Expectation("events", span, value=())
        if kind == "x_no_event":
            assert isinstance(args[0], Tree)
            return Expectation("no_event", span, key=self.event_type(args[0]))
        if kind == "x_event":
            assert isinstance(args[0], Tree)
            fields = []
            for f in args[1:]:
                assert isinstance(f, Tree)
                name = str(f.children[0])
                if name not in EVENT_FIELDS:
                    self.error(f, f"a revenue event has no field {name!r}",
                               "fields: " + ", ".join(EVENT_FIELDS))
                fields.append((name, self.value(f.children[1]), self.span(f)))
            return Expectation("event", span, key=self.event_type(args[0]),
                               fields=tuple(fields))
        if kind == "x_reason":
            return Expectation("reason", span, value=_unquote(str(args[0])))
        if kind == "x_status":
            return Expectation("status", span, value=str(args[0]))
        if kind == "x_entitlements":
            assert isinstance(args[0], Tree)
            names = () if args[0].data == "no_entitlements" else tuple(
                str(t) for t in args[0].children)
            return Expectation("entitlements", span, value=tuple(sorted(names)))
        assert kind == "x_decision", kind
        name = str(args[0])
        if name not in DECISION_FIELDS:
            self.error(tree, f"a decision has no field {name!r}",
                       "fields: " + ", ".join(DECISION_FIELDS))
        return Expectation("decision", span, key=name, value=self.value(args[1]))

    def event_type(self, tree: Any) -> str:
        return ".".join(str(t) for t in tree.children)

    def value(self, node: Any) -> Any:
        if isinstance(node, Token):  # pragma: no cover - every value is a rule
            return str(node)
        kind = node.data
        if kind == "figure":
            *cur, number = node.children
            return Money(str(cur[0]) if cur else None, Decimal(str(number)))
        if kind == "string":
            return _unquote(str(node.children[0]))
        if kind == "word":
            return str(node.children[0])
        if kind == "true":
            return True
        if kind == "false":
            return False
        if kind == "absent":
            return ABSENT
        if kind == "when":
            text = str(node.children[0])
            try:
                return (dt.date.fromisoformat(text) if len(text) == 10
                        else dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
            except ValueError:
                self.error(node, f"'{text}' is not a valid date")
                return ABSENT
        raise AssertionError(kind)  # pragma: no cover

    # -- examples --
    def examples(self, tree: Tree[Token]) -> Examples:
        name = _unquote(str(tree.children[0]))
        rest = list(tree.children[1:])
        when = str(rest.pop(0)) if isinstance(rest[0], Token) else None
        header = rest.pop(0)
        assert isinstance(header, Tree)
        ins, outs = ([str(t) for t in c.children] for c in header.children
                     if isinstance(c, Tree))
        for column in outs:
            if column not in OUTPUT_COLUMNS:
                self.error(header, f"an examples table cannot expect {column!r}",
                           "expected columns: " + ", ".join(OUTPUT_COLUMNS))
        for column in ins:
            if column in OUTPUT_COLUMNS and column not in INPUT_COLUMNS:
                self.error(header, f"{column!r} is an expected column: put it after =>")
        for column in {c for c in ins + outs if (ins + outs).count(c) > 1}:
            self.error(header, f"the column {column!r} appears twice")
        if when is None and "date" not in ins:
            self.error(tree, "the examples have no date",
                       f'write: examples "{name}" on 2027-01-01 {{ … }} or add a date column')
        rows = []
        for row in rest:
            assert isinstance(row, Tree)
            left, right = (c for c in row.children if isinstance(c, Tree))
            values = [self.value(c) if c.data != "absent" or c.children else ABSENT
                      for c in left.children if isinstance(c, Tree)]
            wanted = [self.value(c) for c in right.children if isinstance(c, Tree)]
            if len(values) != len(ins) or len(wanted) != len(outs):
                self.error(row, f"the row has {len(values)} + {len(wanted)} cells; the header "
                           f"has {len(ins)} + {len(outs)}")
                continue
            spans = tuple(self.span(c) for c in right.children if isinstance(c, Tree))
            rows.append(Row(self.span(row), tuple(values), tuple(wanted), spans))
        return Examples(name, self.span(tree), when, tuple(ins), tuple(outs), tuple(rows))

    # -- invariants --
    def invariant(self, tree: Tree[Token]) -> Invariant:
        children = tree.children
        expr = children[-1]
        span = self.span(tree)
        body = self.span(expr)
        text = _slice(self.text, body)
        name = _unquote(str(children[0])) if len(children) > 1 else " ".join(text.split())
        roots = frozenset(_roots(expr))
        self.fields(expr)
        if not roots:
            self.error(expr, "an invariant reads decision, event or subscription")
        return Invariant(name, span, expr, " ".join(text.split()), roots)


    def fields(self, expr: Any) -> None:
        """Every ``root.field`` of an invariant names a field of its root."""
        from .diagnostics import did_you_mean
        todo = [expr]
        while todo:
            node = todo.pop()
            if not isinstance(node, Tree):
                continue
            if node.data == "field":
                base, name = node.children
                if isinstance(base, Tree) and base.data == "name":
                    root = str(base.children[0])
                    known = ROOT_FIELDS.get(root)
                    if known is None:
                        self.error(node, f"{root!r} has no fields: an invariant reads "
                                   "decision, event and subscription")
                    elif str(name) not in known:
                        self.error(name, f"{root} has no field {str(name)!r}"
                                   f"{did_you_mean(str(name), known)}",
                                   "fields: " + ", ".join(known))
                else:
                    self.error(node, "only decision, event and subscription have fields")
                continue
            todo.extend(node.children)


def _slice(text: str, span: Span) -> str:
    from .diagnostics import line_starts
    starts = line_starts(text)
    begin = starts[span.line - 1] + span.column - 1
    end = starts[span.end_line - 1] + span.end_column - 1
    return text[begin:end]


_ROOTS = ("decision", "event", "subscription")
#: The fields an invariant can read on each of its roots.
ROOT_FIELDS: dict[str, tuple[str, ...]] = {
    "decision": ("subscription", "kind", "currency", "list", "discount", "discounts",
                 "credit", "tax", "net", "total", "psp", "trial_days", "next_charge", "due",
                 "retry_at", "grace_ends", "reasons", "trace", "charge"),
    "event": ("id", "type", "at", "subscription", "customer", "storefront", "channel", "plan",
              "currency", "gross", "discount", "credit", "tax", "net", "amount", "commission",
              "rule", "source", "psp", "reasons", "entitlements", "date", "ruleset", "version",
              "charge", "list", "recurring"),
    "subscription": ("id", "customer_id", "storefront", "plan", "status", "anchor", "index",
                     "cycle", "price", "contract", "trial_end", "consent", "pending_plan",
                     "cancel_at", "paused_at", "resume_by", "entitlements", "started",
                     "credit_balance", "entitled"),
}


def _roots(expr: Any) -> Iterator[str]:
    todo = [expr]
    while todo:
        node = todo.pop()
        if isinstance(node, Tree):
            if node.data == "name" and str(node.children[0]) in _ROOTS:
                yield str(node.children[0])
            elif node.data == "call":
                todo.extend(node.children[1:])
            elif node.data == "field":
                todo.append(node.children[0])
            else:
                todo.extend(node.children)


def _wire(value: Any) -> Any:
    """A cell or attribute value as the wire carries a customer attribute."""
    if value is ABSENT:
        return None
    if isinstance(value, Money):
        text = str(value.amount)
        return int(text) if re.fullmatch(r"-?[0-9]+", text) else text
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# -- printing: an event log as a ready-to-paste scenario ---------------------------------

_KEYWORDS = frozenset({
    "checkout", "pay", "fail", "renew", "notify", "change", "pause", "resume", "cancel",
    "consent", "decline", "refund", "credit", "tick", "plan", "to", "at", "customer", "code",
    "reason", "amount", "psp", "reference", "attempt", "notification", "subtype", "charge",
    "and", "id", "expect", "true", "false", "none", "scenario", "examples", "invariant",
    "ruleset"})


def _ident(text: str) -> str:
    if _NAME.fullmatch(text) and text not in _KEYWORDS:
        return text
    return _quote(text)


def _quote(text: str) -> str:
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace(
        "\t", "\\t")
    return f'"{body}"'


def value_text(value: Any) -> str:
    """A customer attribute value in .rrtest syntax."""
    if value is None or value is ABSENT:
        return "none"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    return _quote(str(value))


def event_text(event: dict[str, Any]) -> str:
    """One wire event as an event line (the inverse of parsing one)."""
    kind = event["type"]
    verb = _TYPE_VERBS[kind]
    parts = [str(event["at"]), verb]
    if event.get("subscription") is not None:
        parts.append(_ident(str(event["subscription"])))
    if event.get("plan") is not None:
        parts += ["to" if kind == "plan_change_requested" else "plan", _ident(event["plan"])]
    if event.get("storefront") is not None:
        parts += ["at", _ident(event["storefront"])]
    customer = event.get("customer")
    if customer is not None:
        parts += ["customer", _ident(str(customer["id"]))]
        attrs_text = " ".join(f"{k} {value_text(v)}" for k, v in customer.items() if k != "id")
        if attrs_text:
            parts.append("{ " + attrs_text + " }")
    for key in ("code", "reason", "psp", "reference", "notification", "subtype", "charge"):
        if event.get(key) is not None:
            parts += [key, _ident(str(event[key]))]
    if event.get("amount") is not None:
        amount = str(event["amount"])
        parts += ["amount", f"{event['currency']} {amount}" if event.get("currency") else amount]
    if event.get("attempt") is not None:
        parts += ["attempt", str(event["attempt"])]
    if event.get("cancel"):
        parts += ["and", "cancel"]
    return " ".join(parts)
