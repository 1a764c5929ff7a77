"""Parse ``.rr`` text into :mod:`revrules.nodes`.

Lark (LALR(1), contextual lexer) reads the grammar ``grammar/revrules.lark`` (found by
:mod:`revrules.grammars`); a mechanical Transformer builds AST nodes with spans. Nothing
here judges meaning: that is :mod:`revrules.checker`'s job. Syntax errors become
:class:`Diagnostic` values that say what was expected in words, not in token names.
"""

from __future__ import annotations

import bisect
import contextvars
import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, cast

import lark
from lark import Token, Tree
from lark.lexer import PatternStr

from . import nodes as n
from .diagnostics import Diagnostic, RulesetError
from .diagnostics import line_starts as source_line_starts
from .grammars import grammar_text

__all__ = ["MAX_DATE", "MAX_DEPTH", "MAX_DIGITS", "MIN_DATE", "parse", "parse_expression"]


@functools.cache
def _parser(start: str = "start") -> lark.Lark:
    return lark.Lark(
        grammar_text("revrules"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=False,
        start=start,
        lexer_callbacks={"COMMENT": _seen_comment},
    )


# The comments the lexer passes over in the parse under way (the parser is shared and
# cached, so the list it appends to belongs to the context of each parse).
_COMMENTS: contextvars.ContextVar[list[Token] | None] = contextvars.ContextVar(
    "revrules_comments", default=None)


def _seen_comment(tok: Token) -> Token:
    sink = _COMMENTS.get()
    if sink is not None:
        sink.append(tok)
    return tok


#: How deeply expressions may nest (``not not …``, ``-(-(…))``, ``min(min(…))``); a
#: chain of one ``and`` or ``or`` of n operands counts as log2(n) levels.
MAX_DEPTH = 64
#: How many digits a number literal may have.
MAX_DIGITS = 100
#: The calendar window of date and datetime literals (UTC): a day inside Python's own,
#: so that no time zone moves a literal out of it.
MIN_DATE, MAX_DATE = dt.date(1, 1, 2), dt.date(9999, 12, 30)


def parse(text: str, file: str = "<string>") -> n.Module:
    """Parse ruleset source; raise :class:`RulesetError` with every syntax error.

    A UTF-8 byte-order mark at the start of ``text`` is not part of the source.
    """
    text = text.removeprefix("\ufeff")
    seen: list[Token] = []
    reset = _COMMENTS.set(seen)
    try:
        tree = _parse_tree(text, file, "start")
    finally:
        _COMMENTS.reset(reset)
    decls = _build(tree, text, file)
    comments = tuple(_comment(tok, file) for tok in seen)
    return n.Module(file=file, decls=tuple(decls.children), source=text, comments=comments)


def _comment(tok: Token, file: str) -> n.Comment:
    text = str(tok).rstrip()
    line, column = tok.line or 0, tok.column or 0
    return n.Comment(text, n.Span(file, line, column, line, column + len(text)))


def parse_expression(text: str, file: str = "<expr>") -> n.Expr:
    """Parse one expression (for tools and tests)."""
    result: n.Expr = _build(_parse_tree(text, file, "expr"), text, file)
    return result


def _build(tree: lark.Tree[Token], text: str, file: str) -> Any:
    problems = _check_tree(tree, file)
    if problems:
        raise RulesetError(problems, {file: text})
    try:
        return _Build(file).transform(tree)
    except _BadLiteral as exc:
        raise RulesetError([exc.diagnostic], {file: text}) from None


# -- error recovery --------------------------------------------------------------------

# where a top-level declaration can start: its keyword at the start of a line
_DECL_START = re.compile(r"^(?:ruleset|rounding|timezone|customer|storefront|product|bundle"
                         r"|plan|contract|eligibility|promotion|tax|route|dunning|lifecycle)\b",
                         re.MULTILINE)


def _parse_tree(text: str, file: str, start: str) -> lark.Tree[Token]:
    """The parse tree of ``text``, or :class:`RulesetError` with every syntax error.

    After a syntax error the LALR parser drops the declaration it was in and goes on
    at the next line that starts with a declaration keyword, so that one run reports
    the syntax errors of every declaration.
    """
    errors: list[Diagnostic] = []
    seen: list[lark.exceptions.UnexpectedInput] = []  # kept alive: compared by identity
    resumed = [-1]
    line_starts: list[int] = []

    def recover(exc: lark.exceptions.UnexpectedInput) -> bool:
        seen.append(exc)
        errors.append(_syntax_diagnostic(exc, text, file))
        if start != "start" or exc.interactive_parser is None:
            return False
        if isinstance(exc, lark.exceptions.UnexpectedToken):
            where = exc.token.start_pos if exc.token.type != "$END" else None
        else:
            where = exc.pos_in_stream
        if where is None:
            return False
        match = _DECL_START.search(text, max(where, resumed[0] + 1))
        if match is None:
            return False
        resumed[0] = pos = match.start()
        _to_top_level(exc.interactive_parser.parser_state)
        lexer = exc.interactive_parser.lexer_thread.state
        if lexer is None:  # pragma: no cover - a parse from text always has a lexer state
            return False
        if not line_starts:
            line_starts.extend(source_line_starts(text))
        # move the lexer to the resume point (lines counted as Lark counts them)
        counter = lexer.line_ctr
        line = bisect.bisect_right(line_starts, pos)
        counter.char_pos, counter.line = pos, line
        counter.line_start_pos = line_starts[line - 1]
        counter.column = pos - counter.line_start_pos + 1
        return True

    try:
        tree = _parser(start).parse(text, on_error=recover if start == "start" else None)
    except lark.exceptions.UnexpectedInput as exc:
        if not any(exc is e for e in seen):
            errors.append(_syntax_diagnostic(exc, text, file))
    if errors:
        raise RulesetError(errors, {file: text}) from None
    return tree


def _to_top_level(state: Any) -> None:
    """Unwind an LALR parser state to between two top-level declarations."""
    conf = state.parse_conf
    start = conf.start_state
    after_decls = conf.states[start].get("__start_star_0", (None, None))[1]
    keep = 2 if len(state.state_stack) > 1 and state.state_stack[1] == after_decls else 1
    del state.state_stack[keep:]
    del state.value_stack[keep - 1:]


# -- limits ------------------------------------------------------------------------------

_EXPRESSIONS = frozenset({
    "or_", "and_", "eq", "ne", "lt", "le", "gt", "ge", "in_", "not_in", "add", "sub", "mul",
    "div", "not_", "neg", "field", "call", "name", "set_", "money", "duration", "percent",
    "number", "string", "true", "false", "date", "datetime"})
_CHAINS = frozenset({"or_", "and_"})
_NUMBERS = frozenset({"NUMBER", "PERCENT"})


def _check_tree(tree: lark.Tree[Token], file: str) -> list[Diagnostic]:
    """Limits the grammar cannot say, checked without recursion.

    Chains of one ``and`` / ``or`` become balanced trees (the operators are
    associative, and every later stage walks expressions recursively); then no
    expression may nest deeper than :data:`MAX_DEPTH` and no number may have more
    than :data:`MAX_DIGITS` digits.
    """
    problems: list[Diagnostic] = []
    too_deep: set[int] = set()  # expressions already reported
    stack: list[tuple[lark.Tree[Token], int, int, str]] = [(tree, 0, 0, "")]
    while stack:
        node, depth, root, parent = stack.pop()
        if node.data in _CHAINS and parent != node.data:  # the top of a chain
            _balance(node)
        if node.data in _EXPRESSIONS:
            depth, root = depth + 1, root if depth else id(node)
        else:
            depth = 0
        if depth > MAX_DEPTH:
            if root not in too_deep:
                too_deep.add(root)
                problems.append(Diagnostic(
                    "error", "too_deep", f"expression nested too deeply (more than "
                    f"{MAX_DEPTH} levels)", _meta_span(node, file),
                    "split it into simpler rules"))
            continue
        for child in node.children:
            if isinstance(child, lark.Tree):
                stack.append((child, depth, root, node.data))
            elif isinstance(child, Token) and child.type in _NUMBERS:
                digits = sum(c.isdigit() for c in child)
                if digits > MAX_DIGITS:
                    problems.append(Diagnostic(
                        "error", "literal", f"a number has at most {MAX_DIGITS} digits; this "
                        f"one has {digits}", _token_span(child, file)))
    problems.sort(key=lambda d: (d.span.line, d.span.column))
    return problems


def _balance(node: lark.Tree[Token]) -> None:
    """Rebuild a chain ``a or b or c …`` (parenthesised or not) in one canonical shape.

    Up to three operands nest to the left, as the grammar reads them; longer chains
    split in halves, so a chain of n operands nests log2(n) deep.
    """
    operands: list[Any] = []
    todo: list[Any] = [node]
    while todo:  # in order: the left operand first
        item = todo.pop()
        if isinstance(item, lark.Tree) and item.data == node.data and len(item.children) == 2:
            todo.extend(reversed(item.children))
        else:
            operands.append(item)
    node.children = _halves(node, operands)


def _halves(node: lark.Tree[Token], operands: list[Any]) -> list[Any]:
    cut = len(operands) - 1 if len(operands) <= 3 else len(operands) // 2
    return [_chain(node, operands[:cut]), _chain(node, operands[cut:])]


def _chain(node: lark.Tree[Token], operands: list[Any]) -> Any:
    if len(operands) == 1:
        return operands[0]
    tree = lark.Tree(node.data, _halves(node, operands))
    first, last = _meta_of(operands[0], node), _meta_of(operands[-1], node)
    meta = tree.meta
    meta.empty = False
    meta.line, meta.column, meta.start_pos = first.line, first.column, first.start_pos
    meta.end_line, meta.end_column, meta.end_pos = last.end_line, last.end_column, last.end_pos
    return tree


def _meta_of(item: Any, fallback: lark.Tree[Token]) -> Any:
    meta = getattr(item, "meta", None)
    return fallback.meta if meta is None or getattr(meta, "empty", True) else meta


def _meta_span(node: lark.Tree[Token], file: str) -> n.Span:
    meta = node.meta
    if getattr(meta, "empty", True):
        return n.Span(file, 1, 1, 1, 2)
    return n.Span(file, meta.line, meta.column, meta.end_line, meta.end_column)


def _token_span(tok: Token, file: str) -> n.Span:
    return n.Span(file, tok.line or 0, tok.column or 0, tok.end_line or 0, tok.end_column or 0)


# -- syntax errors ---------------------------------------------------------------------

_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": 'a string in "quotes"',
    "PERCENT": "a percentage like 19%",
    "DATE": "a date like 2027-02-01",
    "DATETIME": "a datetime like 2027-02-01T00:00:00Z",
    "CURRENCY": "an amount like EUR 12.99",
    "$END": "end of file",
    "an expression": "an expression",
}


def _describe(terminal: str) -> str:
    if terminal in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[terminal]
    for term in _parser().terminals:
        if term.name == terminal and isinstance(term.pattern, PatternStr):
            return f"'{term.pattern.value}'"
    return terminal.lower()


_EXPRESSION_STARTS = {"NAME", "NUMBER", "STRING", "LPAR"}


# keyword alternatives that read better as one phrase
_WORD_GROUPS = (
    (frozenset({"'day'", "'days'", "'week'", "'weeks'", "'month'", "'months'", "'year'",
                "'years'"}), "a unit (days, weeks, months, years)"),
    (frozenset({"'inclusive'", "'exclusive'"}), "inclusive or exclusive"),
    (frozenset({"'cancel'", "'pause'", "'unpaid'"}), "cancel, pause or unpaid"),
)


def _expected_words(expected: set[str]) -> str:
    if _EXPRESSION_STARTS <= expected:
        expected = (expected - _EXPRESSION_STARTS - {"PERCENT", "DATE", "DATETIME", "CURRENCY",
                                                      "MINUS", "LSQB", "LBRACE", "TRUE", "FALSE",
                                                      "NOT"}) | {"an expression"}
    found = {_describe(t) for t in expected}
    for group, phrase in _WORD_GROUPS:
        if group <= found:
            found = (found - group) | {phrase}
    words = sorted(found, key=lambda w: (w.startswith("'"), w))
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _syntax_diagnostic(exc: lark.exceptions.UnexpectedInput, text: str, file: str) -> Diagnostic:
    line = exc.line if isinstance(exc.line, int) and exc.line > 0 else 1
    column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            found = "end of file"
            # after the last line's text; lines end at \n only, as Lark counts them
            body = text.removesuffix("\n")
            line, column = body.count("\n") + 1, len(body) - body.rfind("\n")
            end_column = column + 1
        else:
            found = f"'{token.value}'"
            end_column = column + max(len(str(token.value)), 1)
        expected = set(exc.expected)
        if exc.interactive_parser is not None:
            # the LALR state's lookahead set is merged across contexts; ask the parser
            # which tokens could really be shifted here
            try:
                accepts: set[str] = exc.interactive_parser.accepts()  # type: ignore[no-untyped-call]
                expected = accepts or expected
            except lark.exceptions.LarkError:  # pragma: no cover - defensive
                pass
        message = f"unexpected {found}; expected {_expected_words(expected)}"
    elif isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream
        assert pos is not None  # the lexer always records where it stopped
        char = text[pos] if pos < len(text) else "?"
        end_column = column + 1
        allowed = set(exc.allowed or ())
        message = f"unexpected character {char!r}"
        if allowed:
            message += f"; expected {_expected_words(allowed)}"
    else:  # pragma: no cover - UnexpectedEOF is not raised by the LALR parser
        end_column = column + 1
        message = "unexpected end of input"
    span = n.Span(file, line, column, line, end_column)
    return Diagnostic("error", "syntax", message, span)


# -- tree → AST -------------------------------------------------------------------------


class _BadLiteral(Exception):
    """A token the grammar accepts whose value is impossible (2026-02-30, 1.5 days)."""

    def __init__(self, span: n.Span, message: str):
        super().__init__(message)
        self.diagnostic = Diagnostic("error", "literal", message, span)


def _date(tok: Token, build: _Build) -> dt.date:
    try:
        value = dt.date.fromisoformat(str(tok))
    except ValueError:
        raise _BadLiteral(build._tspan(tok), f"'{tok}' is not a valid date") from None
    _in_window(value, tok, build)
    return value


def _in_window(day: dt.date, tok: Token, build: _Build) -> None:
    if not MIN_DATE <= day <= MAX_DATE:
        raise _BadLiteral(build._tspan(tok), f"'{tok}' is out of range: dates lie between "
                          f"{MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}")


def _whole(tok: Token, build: _Build) -> int:
    value = Decimal(str(tok))
    if value != value.to_integral_value():
        raise _BadLiteral(build._tspan(tok), f"expected a whole number, found {tok}")
    return int(value)


_ESCAPES = {"n": "\n", "t": "\t"}


def _unquote(token: str) -> str:
    """The text of a string literal: ``\\n`` and ``\\t`` are escapes, ``\\x`` is ``x``."""
    body = token[1:-1]
    if "\\" not in body:
        return body
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[1]), body)


_UNITS: dict[str, n.DurationUnit] = {
    "day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month",
    "months": "month", "year": "year", "years": "year"}


def _bin(op: n.BinaryOp) -> Callable[[_Build, Any, list[Any]], n.Binary]:
    """A :class:`_Build` method for the binary operator ``op``."""
    def build(self: _Build, meta: Any, c: list[Any]) -> n.Binary:
        return n.Binary(op, c[0], c[1], self._span(meta))
    return build


class _Build:
    """Mechanical tree → node conversion; never raises for meaning.

    Each method builds the node of the grammar rule it is named after from the rule's
    ``meta`` (its position) and its children, already built; a rule without a method
    stays a :class:`lark.Tree` of its built children (``start``)."""

    def __init__(self, file: str):
        self.file = file

    def transform(self, tree: Tree[Token]) -> Any:
        """The node of ``tree``, built bottom-up without recursion (what lark's
        ``Transformer_NonRecursive`` does, without its per-call wrappers: a third of
        the time of a large parse went to them)."""
        order: list[Any] = []
        todo: list[Any] = [tree]
        while todo:  # parents before children, the last child first
            node = todo.pop()
            order.append(node)
            if isinstance(node, Tree):
                todo += node.children
        built: list[Any] = []
        methods: dict[str, Callable[[Any, list[Any]], Any] | None] = {}
        for node in reversed(order):  # children before parents, left to right
            if not isinstance(node, Tree):
                built.append(node)  # a token: its parent's method reads it
                continue
            size = len(node.children)
            children = built[len(built) - size:] if size else []
            del built[len(built) - size:]
            data = node.data
            if data not in methods:
                method = getattr(self, data, None) if not data.startswith("_") else None
                methods[data] = method if callable(method) else None
            make = methods[data]
            built.append(make(node.meta, children) if make is not None
                         else Tree(data, children, node.meta))
        (result,) = built
        return result

    # spans
    def _span(self, meta: Any) -> n.Span:
        if getattr(meta, "empty", True):
            return n.NOWHERE
        return n.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> n.Span:
        return n.Span(self.file, tok.line or 0, tok.column or 0, tok.end_line or 0,
                      tok.end_column or 0)

    def _ref(self, tok: Token) -> n.Ref:
        return n.Ref(str(tok), self._tspan(tok))

    # top level
    def header(self, meta: Any, c: list[Any]) -> n.Header:
        return n.Header(str(c[0]), _unquote(c[1]) if len(c) > 1 else None, self._span(meta))

    def rounding(self, meta: Any, c: list[Any]) -> n.Rounding:
        return n.Rounding(str(c[0]), self._span(meta))

    def timezone(self, meta: Any, c: list[Any]) -> n.Timezone:
        return n.Timezone(_unquote(c[0]), self._span(meta))

    def customer_schema(self, meta: Any, c: list[Any]) -> n.CustomerSchema:
        return n.CustomerSchema(tuple(c), self._span(meta))

    def attr_decl(self, meta: Any, c: list[Any]) -> n.AttrDecl:
        default = c[2] if len(c) > 2 else None
        return n.AttrDecl(str(c[0]), self._ref(c[1]), default, self._span(meta))

    def name_list(self, meta: Any, c: list[Token]) -> tuple[n.Ref, ...]:
        return tuple(self._ref(t) for t in c)

    # storefronts
    def storefront(self, meta: Any, c: list[Any]) -> n.Storefront:
        return n.Storefront(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def _sf(self, key: Any, meta: Any, value: object) -> n.StorefrontItem:
        return n.StorefrontItem(key, value, self._span(meta))

    def sf_channel(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("channel", meta, self._ref(c[0]))

    def sf_region(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("region", meta, self._ref(c[0]))

    def sf_currency(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("currency", meta, self._ref(c[0]))

    def tax_mode(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def change_kind(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def dunning_end(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def unit(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def sf_tax(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("tax", meta, str(c[0]))

    def sf_psp(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("psp", meta, c[0])

    def sf_commission(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("commission", meta, Decimal(str(c[0])[:-1]))

    def sf_terms(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("terms", meta, c[0].value)

    def sf_formerly(self, meta: Any, c: list[Any]) -> n.StorefrontItem:
        return self._sf("formerly", meta, self._ref(c[0]))

    # catalogue
    def product(self, meta: Any, c: list[Any]) -> n.Product:
        return n.Product(str(c[0]), c[1], self._span(meta), self._tspan(c[0]))

    def bundle(self, meta: Any, c: list[Any]) -> n.Bundle:
        return n.Bundle(str(c[0]), c[1], self._span(meta), self._tspan(c[0]))

    def plan(self, meta: Any, c: list[Any]) -> n.Plan:
        return n.Plan(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def plan_product(self, meta: Any, c: list[Any]) -> n.PlanProduct:
        return n.PlanProduct("product", self._ref(c[0]), self._span(meta))

    def plan_bundle(self, meta: Any, c: list[Any]) -> n.PlanProduct:
        return n.PlanProduct("bundle", self._ref(c[0]), self._span(meta))

    def plan_every(self, meta: Any, c: list[Any]) -> n.PlanEvery:
        return n.PlanEvery(c[0].value, self._span(meta))

    def plan_trial(self, meta: Any, c: list[Any]) -> n.PlanTrial:
        elig = self._ref(c[1]) if len(c) > 1 else None
        return n.PlanTrial(c[0].value, elig, self._span(meta))

    def plan_price(self, meta: Any, c: list[Any]) -> n.PlanPrice:
        effective = existing = None
        consent = False
        for extra in c[2:]:
            if isinstance(extra, tuple):
                effective, existing = extra
            else:
                consent = True
        return n.PlanPrice(self._ref(c[0]), c[1], effective, existing, consent, self._span(meta))

    def price_from(self, meta: Any, c: list[Any]) -> tuple[dt.date, dt.date | None]:
        dates = [_date(t, self) for t in c]
        return dates[0], (dates[1] if len(dates) > 1 else None)

    def consent(self, meta: Any, c: list[Any]) -> bool:
        return True

    def plan_formerly(self, meta: Any, c: list[Any]) -> n.PlanFormerly:
        return n.PlanFormerly(self._ref(c[0]), self._span(meta))

    def plan_not_sold(self, meta: Any, c: list[Any]) -> n.PlanNotSold:
        return n.PlanNotSold(c[0], self._span(meta))

    def plan_change(self, meta: Any, c: list[Any]) -> n.PlanChange:
        kind = cast('Literal["upgrade", "downgrade"]', str(c[0]))  # CHANGE_KIND terminal
        timing, prorate = c[2]
        return n.PlanChange(kind, self._ref(c[1]), timing, prorate, self._span(meta))

    def change_timing(self, meta: Any, c: list[Token]
                      ) -> tuple[Literal["immediate", "period_end"], bool]:
        words = [str(t) for t in c]
        if words[0] == "immediate":
            return "immediate", "prorate" in words
        return "period_end", False

    def contract(self, meta: Any, c: list[Any]) -> n.Contract:
        return n.Contract(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def ct_customer(self, meta: Any, c: list[Any]) -> n.ContractItem:
        return n.ContractItem("customer", _unquote(c[0]), self._span(meta))

    def ct_plan(self, meta: Any, c: list[Any]) -> n.ContractItem:
        return n.ContractItem("plan", self._ref(c[0]), self._span(meta))

    def ct_price(self, meta: Any, c: list[Any]) -> n.ContractItem:
        return n.ContractItem("price", c[0], self._span(meta))

    def ct_valid(self, meta: Any, c: list[Any]) -> n.ContractItem:
        dates = tuple(_date(t, self) for t in c)
        return n.ContractItem("valid", dates, self._span(meta))

    # rules
    def eligibility(self, meta: Any, c: list[Any]) -> n.Eligibility:
        return n.Eligibility(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def deny(self, meta: Any, c: list[Any]) -> n.Deny:
        return n.Deny(_unquote(c[0]), c[1], self._span(meta))

    def promotion(self, meta: Any, c: list[Any]) -> n.Promotion:
        return n.Promotion(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def _pr(self, key: Any, meta: Any, value: object) -> n.PromoItem:
        return n.PromoItem(key, value, self._span(meta))

    def pr_code(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("code", meta, _unquote(c[0]))

    def pr_automatic(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("automatic", meta, None)

    def pr_stackable(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("stackable", meta, None)

    def pr_plans(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("plans", meta, c[0])

    def pr_storefronts(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("storefronts", meta, c[0])

    def pr_valid(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("valid", meta, tuple(_date(t, self) for t in c))

    def pr_percent(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("percent", meta, (Decimal(str(c[0]).rstrip("%")), c[1]))

    def pr_amount(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("amount", meta, (c[0], c[1]))

    def pr_limit(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("limit", meta, tuple(c))

    def limit_total(self, meta: Any, c: list[Any]) -> tuple[str, int]:
        return ("total", _whole(c[0], self))

    def limit_per_customer(self, meta: Any, c: list[Any]) -> tuple[str, int]:
        return ("per_customer", _whole(c[0], self))

    def pr_if(self, meta: Any, c: list[Any]) -> n.PromoItem:
        return self._pr("if", meta, c[0])

    def promo_term(self, meta: Any, c: list[Token]) -> n.PromoTerm:
        word = str(c[0])
        if word == "for":
            return n.PromoTerm("cycles", _whole(c[1], self), self._span(meta))
        return n.PromoTerm(cast('Literal["once", "forever"]', word), None, self._span(meta))

    def tax(self, meta: Any, c: list[Any]) -> n.Tax:
        return n.Tax(str(c[0]), tuple(c[1:]), self._span(meta), self._tspan(c[0]))

    def tax_rate(self, meta: Any, c: list[Any]) -> n.TaxRate:
        when = c[1] if len(c) > 1 else None
        return n.TaxRate(Decimal(str(c[0])[:-1]), when, self._span(meta))

    def route(self, meta: Any, c: list[Any]) -> n.Route:
        name = str(c[0]) if c and isinstance(c[0], Token) else None
        rules = tuple(x for x in c if isinstance(x, n.RouteRule))
        return n.Route(name, rules, self._span(meta))

    def route_rule(self, meta: Any, c: list[Any]) -> n.RouteRule:
        when = c[1] if len(c) > 1 else None
        return n.RouteRule(self._ref(c[0]), when, self._span(meta))

    def dunning(self, meta: Any, c: list[Any]) -> n.Dunning:
        items = tuple(x for x in c[1:] if isinstance(x, n.DunningItem))
        when = c[1] if len(c) > 1 and not isinstance(c[1], n.DunningItem) else None
        return n.Dunning(str(c[0]), when, items, self._span(meta), self._tspan(c[0]))

    def _dn(self, key: Any, meta: Any, value: object) -> n.DunningItem:
        return n.DunningItem(key, value, self._span(meta))

    def dn_retry(self, meta: Any, c: list[Any]) -> n.DunningItem:
        return self._dn("retry", meta, tuple(x.value for x in c))

    def dn_via(self, meta: Any, c: list[Any]) -> n.DunningItem:
        return self._dn("via", meta, self._ref(c[0]))

    def dn_no_retry(self, meta: Any, c: list[Any]) -> n.DunningItem:
        return self._dn("no_retry", meta, c[0])

    def dn_grace(self, meta: Any, c: list[Any]) -> n.DunningItem:
        keep = c[1] if len(c) > 1 else "keep"
        return self._dn("grace", meta, (c[0].value, keep))

    def grace_entitlements(self, meta: Any, c: list[Token]) -> str:
        return str(c[0])

    def dn_then(self, meta: Any, c: list[Any]) -> n.DunningItem:
        return self._dn("then", meta, str(c[0]))

    def lifecycle(self, meta: Any, c: list[Any]) -> n.Lifecycle:
        return n.Lifecycle(tuple(c), self._span(meta))

    def lc_pause(self, meta: Any, c: list[Any]) -> n.LifecycleItem:
        when = c[1] if len(c) > 1 else None
        return n.LifecycleItem("pause", (c[0].value, when), self._span(meta))

    def lc_cancel(self, meta: Any, c: list[Any]) -> n.LifecycleItem:
        return n.LifecycleItem("cancel", c[0], self._span(meta))

    def cancel_timing(self, meta: Any, c: list[Token]) -> str:
        return "immediate" if str(c[0]) == "immediate" else "period_end"

    def lc_refund(self, meta: Any, c: list[Any]) -> n.LifecycleItem:
        return n.LifecycleItem("refund", c[0], self._span(meta))

    def refund_policy(self, meta: Any, c: list[Any]) -> tuple[str, n.Duration | None, str]:
        kind = str(c[0])
        if kind == "full" and len(c) > 1:
            within = c[2].value
            after = str(c[4]) if len(c) > 4 else "none"
            return ("full", within, after)
        return (kind, None, kind)

    # expressions
    or_ = _bin("or")
    and_ = _bin("and")
    eq = _bin("==")
    ne = _bin("!=")
    lt = _bin("<")
    le = _bin("<=")
    gt = _bin(">")
    ge = _bin(">=")
    in_ = _bin("in")
    not_in = _bin("not in")
    add = _bin("+")
    sub = _bin("-")
    mul = _bin("*")
    div = _bin("/")

    def not_(self, meta: Any, c: list[Any]) -> n.Unary:
        return n.Unary("not", c[0], self._span(meta))

    def neg(self, meta: Any, c: list[Any]) -> n.Unary:
        return n.Unary("-", c[0], self._span(meta))

    def field(self, meta: Any, c: list[Any]) -> n.Field:
        return n.Field(c[0], str(c[1]), self._span(meta))

    def call(self, meta: Any, c: list[Any]) -> n.Call:
        return n.Call(str(c[0]), tuple(a for a in c[1:] if a is not None), self._span(meta))

    def name(self, meta: Any, c: list[Token]) -> n.Name:
        return n.Name(str(c[0]), self._span(meta))

    def set_(self, meta: Any, c: list[Any]) -> n.SetLit:
        return n.SetLit(tuple(x for x in c if x is not None), self._span(meta))

    def _lit(self, meta: Any, kind: Any, value: object) -> n.Literal:
        return n.Literal(kind, value, self._span(meta))

    def money(self, meta: Any, c: list[Token]) -> n.Literal:
        return self._lit(meta, "money", n.Money(str(c[0]), Decimal(str(c[1]))))

    def duration(self, meta: Any, c: list[Token]) -> n.Literal:
        value = n.Duration(_whole(c[0], self), _UNITS[str(c[1])])
        return self._lit(meta, "duration", value)

    def percent(self, meta: Any, c: list[Token]) -> n.Literal:
        return self._lit(meta, "percent", Decimal(str(c[0])[:-1]))

    def number(self, meta: Any, c: list[Token]) -> n.Literal:
        text = str(c[0])
        if "." in text:
            return self._lit(meta, "decimal", Decimal(text))
        return self._lit(meta, "int", int(text))

    def string(self, meta: Any, c: list[Token]) -> n.Literal:
        return self._lit(meta, "string", _unquote(c[0]))

    def true(self, meta: Any, c: list[Any]) -> n.Literal:
        return self._lit(meta, "bool", True)

    def false(self, meta: Any, c: list[Any]) -> n.Literal:
        return self._lit(meta, "bool", False)

    def date(self, meta: Any, c: list[Token]) -> n.Literal:
        return self._lit(meta, "date", _date(c[0], self))

    def datetime(self, meta: Any, c: list[Token]) -> n.Literal:
        try:
            value = dt.datetime.fromisoformat(str(c[0]).replace("Z", "+00:00"))
        except ValueError:
            raise _BadLiteral(self._tspan(c[0]), f"'{c[0]}' is not a valid datetime") from None
        _in_window(value.date(), c[0], self)  # then no offset can move it out of Python's
        utc = value.astimezone(dt.timezone.utc)
        _in_window(utc.date(), c[0], self)
        return self._lit(meta, "datetime", utc)
