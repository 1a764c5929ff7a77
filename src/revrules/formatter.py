"""Print a parsed ``.rr`` file back in its canonical layout.

``format_module(parse(text))`` is the text of ``revrules fmt``; it parses back to an
equal :class:`~revrules.nodes.Module` (spans aside), and formatting is idempotent.

The layout: declarations in source order, one blank line between them; a block's
items one per line, indented two spaces, except storefronts, products and bundles,
which stay on one line (``storefront web_eu { channel web  region EU  … }``); empty
blocks print as ``{}``. Expressions get single spaces around operators and only the
parentheses the grammar's precedence needs. Where the language has two spellings of
one thing, one is chosen: sets use braces, ``grace`` always says ``keep`` or
``revoke entitlements``, ``refund full within D`` always says what happens after, a
promotion's percentage is a bare number (``percent 50 off``), durations agree in
number (``1 month``, ``14 days``) and datetimes are printed in UTC.

Comments (``# …``, collected by the parser in ``Module.comments``) are kept, in their
order: an own-line comment stands before the item it precedes, a trailing comment at
the end of its item's line. Lines between ``# fmt: off`` and ``# fmt: on`` are copied
as they stand. Any other alignment of the source is not kept.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, cast

import attrs

from . import nodes as n
from .diagnostics import line_starts as source_line_starts
from .runtime import in_context

__all__ = ["format_expression", "format_module"]

INDENT = "  "

# Binding strength, loosest first; each level is a rule of the grammar's expression
# ladder (or_expr, and_expr, not_expr, comparison, sum, term, unary, postfix, atom).
OR, AND, NOT, COMPARE, SUM, TERM, UNARY, POSTFIX, ATOM = range(1, 10)

_BINARY_LEVEL: dict[str, int] = {
    "or": OR, "and": AND,
    "==": COMPARE, "!=": COMPARE, "<": COMPARE, "<=": COMPARE, ">": COMPARE, ">=": COMPARE,
    "in": COMPARE, "not in": COMPARE,
    "+": SUM, "-": SUM, "*": TERM, "/": TERM,
}

# A duration unit after a number is a keyword even where a name could follow, so an
# expression that ends in a number must not be followed by a route PSP named like one.
_UNIT_WORDS = frozenset({"day", "days", "week", "weeks", "month", "months", "year", "years"})


# -- expressions ---------------------------------------------------------------------


@in_context
def format_expression(expr: n.Expr) -> str:
    """An expression as canonical source text, e.g. ``a and (b or c)``."""
    return _expr(expr, OR)


def _expr(expr: n.Expr, needs: int) -> str:
    """``expr`` as text that parses at grammar level ``needs`` or tighter."""
    text, level = _printed(expr)
    return f"({text})" if level < needs else text


def _printed(expr: n.Expr) -> tuple[str, int]:
    """The text of ``expr`` and the grammar level it parses at."""
    if isinstance(expr, n.Binary):
        level = _BINARY_LEVEL[expr.op]
        if expr.op in ("and", "or"):  # associative: a chain prints flat, however nested
            return f" {expr.op} ".join(_expr(e, level + 1) for e in expr.chain()), level
        if level == COMPARE:  # comparisons do not chain: both sides are sums
            left, right = _expr(expr.left, SUM), _expr(expr.right, SUM)
        else:  # left-associative: a right operand of the same level needs parentheses
            left, right = _expr(expr.left, level), _expr(expr.right, level + 1)
        return f"{left} {expr.op} {right}", level
    if isinstance(expr, n.Unary):
        if expr.op == "not":
            return f"not {_expr(expr.operand, NOT)}", NOT
        return f"-{_expr(expr.operand, UNARY)}", UNARY
    if isinstance(expr, n.Field):
        return f"{_expr(expr.obj, POSTFIX)}.{expr.name}", POSTFIX
    if isinstance(expr, n.Call):
        return f"{expr.func}({_commas(format_expression(a) for a in expr.args)})", POSTFIX
    if isinstance(expr, n.Name):
        return expr.name, ATOM
    if isinstance(expr, n.SetLit):
        return "{" + _commas(format_expression(i) for i in expr.items) + "}", ATOM
    if isinstance(expr, n.Literal):
        return _literal(expr)
    raise TypeError(f"not an expression: {expr!r}")


def _literal(lit: n.Literal) -> tuple[str, int]:
    value = lit.value
    kind = lit.kind
    if kind == "bool" and isinstance(value, bool):
        return ("true" if value else "false"), ATOM
    if kind == "string" and isinstance(value, str):
        return _string(value), ATOM
    if kind == "datetime" and isinstance(value, dt.datetime):
        return _datetime(value), ATOM
    if kind == "date" and isinstance(value, dt.date):
        return value.isoformat(), ATOM
    # Numbers have no sign in the language: a negative value (never built by the
    # parser) is printed as unary minus, which means the same.
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return _signed(str(abs(value)), value < 0)
    if kind == "decimal" and isinstance(value, Decimal):
        digits = _digits(value)
        return _signed(digits if "." in digits else digits + ".0", value.is_signed())
    if kind == "percent" and isinstance(value, Decimal):
        return _signed(_digits(value) + "%", value.is_signed())
    if kind == "money" and isinstance(value, n.Money):
        return _signed(_money(value), value.amount.is_signed())
    if kind == "duration" and isinstance(value, n.Duration):
        return _signed(_duration(n.Duration(abs(value.count), value.unit)), value.count < 0)
    raise ValueError(f"cannot print a {kind} literal with value {value!r}")


def _signed(text: str, negative: bool) -> tuple[str, int]:
    return (f"-{text}", UNARY) if negative else (text, ATOM)


def _digits(value: Decimal) -> str:
    """The amount's own digits, never in exponent form: ``12.90`` stays ``12.90``."""
    return format(value.copy_abs(), "f")  # exact: abs() would round to the context


def _money(money: n.Money) -> str:
    return f"{money.currency} {_digits(money.amount)}"


def _duration(duration: n.Duration) -> str:
    return f"{duration.count} {duration.unit}{'' if duration.count == 1 else 's'}"


def _datetime(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    fraction = f".{value.microsecond:06d}" if value.microsecond else ""
    return value.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _string(text: str) -> str:
    """A string literal: the parser reads ``\\n``, ``\\t`` and ``\\x`` as ``x``."""
    return '"' + re.sub(r'[\\"\n\t]', lambda m: _STRING_ESCAPES[m[0]], text) + '"'


def _commas(parts: Iterable[str]) -> str:
    return ", ".join(parts)


def _refs(refs: Iterable[n.Ref]) -> str:
    return _commas(r.name for r in refs)


# -- declarations --------------------------------------------------------------------


@in_context
def format_module(module: n.Module) -> str:
    """A whole ruleset in canonical layout, ending with one newline.

    Declarations keep their source order, one blank line apart, except that a run of
    one-line declarations of the same kind (storefronts, products, bundles) stays
    together, as people write them. Comments stay, in their order (see
    :func:`_place_comments`), and a ``# fmt: off`` … ``# fmt: on`` region is copied
    as it stands.
    """
    source = module.source if module.comments else ""
    comments = [c for c in module.comments if c.span.line > 0] if source else []
    starts = source_line_starts(source)
    regions = _verbatim_regions(source, comments, module.decls)
    units: list[_Unit] = []
    source_lines = source.split("\n")
    decls = iter(module.decls)
    pending = next(decls, None)
    for first, last in regions + [(sys.maxsize, sys.maxsize)]:
        while pending is not None and pending.span.line < first:
            units.append(_decl_unit(pending, source, starts, bool(comments)))
            pending = next(decls, None)
        if first == sys.maxsize:
            break
        while pending is not None and pending.span.line <= last:
            pending = next(decls, None)  # inside the region: printed as it stands
        lines = source_lines[first - 1:last]
        begin = starts[first - 1]
        end = starts[last] - 1 if last < len(starts) else len(source)
        units.append(_Unit(None, [_Line("\n".join(lines), begin, end)]))
    kept = [c for c in comments
            if not any(first <= c.span.line <= last for first, last in regions)]
    return _render(units, _place_comments(kept, units, source, starts))


@attrs.frozen
class _Line:
    """One printed line (a verbatim region: several) and the source it prints."""

    text: str
    start: int  # source offsets, end exclusive; 0, 0 when there are no comments
    end: int


@attrs.frozen
class _Unit:
    """A top-level declaration or ``fmt: off`` region as printed lines."""

    decl: n.Decl | None  # None for a verbatim region
    lines: list[_Line]


@attrs.frozen
class _Placed:
    """A comment, where it goes, and the blank lines around it in the source."""

    text: str
    line: int  # index of the printed line it stands before, or is at the end of
    trailing: bool
    blank_before: bool
    blank_after: bool


_FMT_OFF = re.compile(r"#\s*fmt:\s*off")
_FMT_ON = re.compile(r"#\s*fmt:\s*on")


def _verbatim_regions(source: str, comments: list[n.Comment],
                      decls: tuple[n.Decl, ...]) -> list[tuple[int, int]]:
    """The line ranges (1-based, inclusive) that ``# fmt: off`` keeps as they stand.

    A region runs from the line of ``# fmt: off`` to the line of the next
    ``# fmt: on``, or to the last non-blank line of the file, and then grows to whole
    declarations: a declaration that shares a line with it is kept whole.
    """
    regions: list[tuple[int, int]] = []
    lines = source.split("\n")
    i = 0
    while i < len(comments):
        if not _FMT_OFF.fullmatch(comments[i].text):
            i += 1
            continue
        first = comments[i].span.line
        j = next((k for k in range(i + 1, len(comments))
                  if _FMT_ON.fullmatch(comments[k].text)), None)
        if j is not None:
            last = comments[j].span.line
        else:
            last = len(lines)
            while last > first and not lines[last - 1].strip():
                last -= 1
        grown = True
        while grown:
            grown = False
            for decl in decls:
                if decl.span.line <= last and decl.span.end_line >= first and not (
                        first <= decl.span.line and decl.span.end_line <= last):
                    first, last = min(first, decl.span.line), max(last, decl.span.end_line)
                    grown = True
        if regions and first <= regions[-1][1]:  # grown into the region before
            first = regions.pop()[0]
        regions.append((first, last))
        i = next((k for k in range(i, len(comments)) if comments[k].span.line > last),
                 len(comments))
    return regions


def _decl_unit(decl: n.Decl, source: str, starts: tuple[int, ...], located: bool) -> _Unit:
    """The printed lines of ``decl``, each with the source it stands for."""
    texts = _decl(decl).split("\n")
    if not located:
        return _Unit(decl, [_Line(t, 0, 0) for t in texts])
    begin, end = _offset(starts, decl.span.line, decl.span.column), _end_offset(starts, decl.span)
    if len(texts) == 1:
        return _Unit(decl, [_Line(texts[0], begin, end)])
    items = _items(decl)
    if len(items) != len(texts) - 2:  # pragma: no cover - every block item is one line
        raise ValueError(f"cannot place comments in {decl!r}")
    head_end = (_end_offset(starts, decl.when.span)
                if isinstance(decl, n.Dunning) and decl.when is not None else begin)
    brace = _open_brace(source, head_end)
    lines = [_Line(texts[0], begin, brace + 1)]
    lines += [_Line(text, _offset(starts, item.span.line, item.span.column),
                    _end_offset(starts, item.span))
              for text, item in zip(texts[1:-1], items, strict=True)]
    lines.append(_Line(texts[-1], end - 1, end))
    return _Unit(decl, lines)


def _items(decl: n.Decl) -> tuple[Any, ...]:
    for field in ("attrs", "denies", "rates", "rules", "items"):
        found = getattr(decl, field, None)
        if isinstance(found, tuple):
            return found
    return ()


def _offset(starts: tuple[int, ...], line: int, column: int) -> int:
    return starts[line - 1] + column - 1


def _end_offset(starts: tuple[int, ...], span: n.Span) -> int:
    return starts[span.end_line - 1] + span.end_column - 1


def _open_brace(source: str, pos: int) -> int:
    """Where the ``{`` of a block is: the first one from ``pos`` on outside comments."""
    while True:
        ch = source[pos]
        if ch == "#":
            pos = source.index("\n", pos)
        elif ch == "{":
            return pos
        pos += 1


def _place_comments(comments: list[n.Comment], units: list[_Unit], source: str,
                    starts: tuple[int, ...]) -> list[_Placed]:
    """Where each comment goes; the order of comments never changes.

    A comment with code before it on its line stays at the end of the printed line of
    that code (the last one that ends on the line); any other comment, and one inside
    something printed on one line (a multi-line expression, a storefront), goes on
    its own line before the next printed line that starts after it, or before the one
    it is inside. Blank lines around own-line comments between declarations are kept
    (one at most).
    """
    lines = [line for unit in units for line in unit.lines]
    ends = [line.end for line in lines]
    begins = [line.start for line in lines]
    text_lines = source.split("\n")

    def blank(number: int) -> bool:
        return 1 <= number <= len(text_lines) and not text_lines[number - 1].strip()

    placed: list[_Placed] = []
    for comment in comments:
        at = _offset(starts, comment.span.line, comment.span.column)
        line_start = starts[comment.span.line - 1]
        own_line = not source[line_start:at].strip()
        index = bisect.bisect_right(begins, at)  # the first printed line after it
        if index > 0 and begins[index - 1] < at < ends[index - 1]:
            placed.append(_Placed(comment.text, index - 1, False, False, False))
            continue
        if not own_line and index > 0 and line_start <= ends[index - 1] - 1:
            placed.append(_Placed(comment.text, index - 1, True, False, False))
            continue
        placed.append(_Placed(comment.text, index, False,
                              own_line and blank(comment.span.line - 1),
                              own_line and blank(comment.span.line + 1)))
    return placed


def _render(units: list[_Unit], placed: list[_Placed]) -> str:
    out: list[str] = []
    before: dict[int, list[_Placed]] = {}
    trailing: dict[int, str] = {}
    for p in placed:
        if p.trailing:
            trailing[p.line] = p.text
        else:
            before.setdefault(p.line, []).append(p)

    def group(comments: list[_Placed], indent: str, blank_first: bool) -> None:
        for i, c in enumerate(comments):
            if (blank_first if i == 0 else comments[i - 1].blank_after or c.blank_before):
                out.append("")
            out.append(indent + c.text)

    index = 0
    previous: _Unit | None = None
    for unit in units:
        separate = previous is not None and not _grouped(previous, unit)
        if separate:
            out.append("")
        for k, line in enumerate(unit.lines):
            comments = before.get(index, [])
            if k == 0:
                group(comments, "", bool(out) and not separate and comments[0].blank_before
                      if comments else False)
                if comments and comments[-1].blank_after:
                    out.append("")
            else:
                group(comments, INDENT, False)
            text = line.text
            if index in trailing:
                text += "  " + trailing[index]
            out.append(text)
            index += 1
        previous = unit
    last = before.get(index, [])
    group(last, "", bool(out) and bool(last) and last[0].blank_before)
    return "\n".join(out) + "\n" if out else ""


def _grouped(previous: _Unit, unit: _Unit) -> bool:
    """Whether two one-line declarations of one kind stand together, with no blank."""
    a, b = previous.decl, unit.decl
    return (a is not None and b is not None and type(a) is type(b)
            and isinstance(b, _ONE_LINERS) and len(previous.lines) == 1
            and len(unit.lines) == 1)


_ONE_LINERS = (n.Storefront, n.Product, n.Bundle, n.Rounding, n.Timezone)


def _block(head: str, lines: Iterable[str]) -> str:
    body = [INDENT + line for line in lines]
    if not body:
        return f"{head} {{}}"
    return "\n".join([f"{head} {{", *body, "}"])


def _inline_block(head: str, items: Iterable[str], sep: str = "  ") -> str:
    body = sep.join(items)
    return f"{head} {{ {body} }}" if body else f"{head} {{}}"


def _decl(decl: n.Decl) -> str:
    if isinstance(decl, n.Header):
        version = f" version {_string(decl.version)}" if decl.version is not None else ""
        return f"ruleset {decl.name}{version}"
    if isinstance(decl, n.Rounding):
        return f"rounding {decl.mode}"
    if isinstance(decl, n.Timezone):
        return f"timezone {_string(decl.zone)}"
    if isinstance(decl, n.CustomerSchema):
        return _block("customer", (_attr(a) for a in decl.attrs))
    if isinstance(decl, n.Storefront):
        return _inline_block(f"storefront {decl.name}", (_storefront_item(i) for i in decl.items))
    if isinstance(decl, n.Product):
        return _inline_block(f"product {decl.name}", [f"entitlements {_refs(decl.entitlements)}"])
    if isinstance(decl, n.Bundle):
        return _inline_block(f"bundle {decl.name}", [f"products {_refs(decl.products)}"])
    if isinstance(decl, n.Plan):
        return _block(f"plan {decl.name}", (_plan_item(i) for i in decl.items))
    if isinstance(decl, n.Contract):
        return _block(f"contract {decl.name}", (_contract_item(i) for i in decl.items))
    if isinstance(decl, n.Eligibility):
        return _block(f"eligibility {decl.name}",
                      (f"deny {_string(d.reason)} when {format_expression(d.when)}"
                       for d in decl.denies))
    if isinstance(decl, n.Promotion):
        return _block(f"promotion {decl.name}", (_promo_item(i) for i in decl.items))
    if isinstance(decl, n.Tax):
        return _block(f"tax {decl.name}", (_tax_rate(r) for r in decl.rates))
    if isinstance(decl, n.Route):
        head = "route" if decl.name is None else f"route {decl.name}"
        return _block(head, _route_rules(decl.rules))
    if isinstance(decl, n.Dunning):
        head = f"dunning {decl.name}"
        if decl.when is not None:
            head += f" for {format_expression(decl.when)}"
        return _block(head, (_dunning_item(i) for i in decl.items))
    if isinstance(decl, n.Lifecycle):
        return _block("lifecycle", (_lifecycle_item(i) for i in decl.items))
    raise TypeError(f"not a declaration: {decl!r}")


def _attr(attr: n.AttrDecl) -> str:
    text = f"{attr.name}: {attr.type.name}"
    if attr.default is not None:
        # the grammar allows any literal here, sets included
        text += f" = {format_expression(attr.default)}"
    return text


def _storefront_item(item: n.StorefrontItem) -> str:
    value = item.value
    if item.key in ("channel", "region", "currency") and isinstance(value, n.Ref):
        return f"{item.key} {value.name}"
    if item.key == "tax" and value in ("inclusive", "exclusive"):
        return f"tax {value}"
    if item.key == "psp" and isinstance(value, tuple) and value:
        return f"psp {_refs(value)}"
    if item.key == "commission" and isinstance(value, Decimal):
        return f"commission {_digits(value)}%"
    if item.key == "terms" and isinstance(value, n.Duration):
        return f"terms net {_duration(value)}"
    if item.key == "formerly" and isinstance(value, n.Ref):
        return f"formerly {value.name}"
    raise ValueError(f"cannot print storefront item {item!r}")


def _plan_item(item: n.PlanItem) -> str:
    if isinstance(item, n.PlanProduct):
        return f"{item.kind} {item.target.name}"
    if isinstance(item, n.PlanEvery):
        return f"every {_duration(item.every)}"
    if isinstance(item, n.PlanTrial):
        text = f"trial {_duration(item.length)}"
        return text if item.eligibility is None else f"{text} if {item.eligibility.name}"
    if isinstance(item, n.PlanPrice):
        text = f"price {item.storefront.name} {format_expression(item.price)}"
        if item.effective is not None:
            text += f" from {item.effective.isoformat()}"
            if item.existing is not None:
                text += f" existing from {item.existing.isoformat()}"
        elif item.existing is not None:
            raise ValueError(f"cannot print 'existing from' without 'from': {item!r}")
        return text + (" consent required" if item.consent else "")
    if isinstance(item, n.PlanNotSold):
        return f"not sold in {_refs(item.storefronts)}"
    if isinstance(item, n.PlanFormerly):
        return f"formerly {item.name.name}"
    if isinstance(item, n.PlanChange):
        text = f"{item.kind} to {item.target.name}"
        if item.timing == "immediate":
            return text + (" immediate prorate" if item.prorate else " immediate")
        if item.prorate:
            raise ValueError(f"cannot print a prorated change at period_end: {item!r}")
        return text + " at period_end"
    raise TypeError(f"not a plan item: {item!r}")


def _contract_item(item: n.ContractItem) -> str:
    value = item.value
    if item.key == "customer" and isinstance(value, str):
        return f"customer {_string(value)}"
    if item.key == "plan" and isinstance(value, n.Ref):
        return f"plan {value.name}"
    if item.key == "price" and isinstance(value, n.Literal):
        return f"price {format_expression(value)}"
    if item.key == "valid":
        return f"valid {_date_range(value)}"
    raise ValueError(f"cannot print contract item {item!r}")


def _date_range(value: object) -> str:
    if (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(d, dt.date) for d in value)):
        return f"{value[0].isoformat()} to {value[1].isoformat()}"
    raise ValueError(f"not a date range: {value!r}")


def _promo_item(item: n.PromoItem) -> str:
    key, value = item.key, item.value
    if key in ("automatic", "stackable"):
        return key
    if key == "code" and isinstance(value, str):
        return f"code {_string(value)}"
    if key in ("plans", "storefronts") and isinstance(value, tuple) and value:
        return f"{key} {_refs(value)}"
    if key == "valid":
        return f"valid {_date_range(value)}"
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], n.PromoTerm):
        off, term = value
        if key == "percent" and isinstance(off, Decimal):
            return f"percent {_digits(off)} off {_promo_term(term)}"
        if key == "amount" and isinstance(off, n.Literal):
            return f"amount {format_expression(off)} off {_promo_term(term)}"
    if key == "limit" and isinstance(value, tuple) and value:
        return "limit " + _commas(_limit(part) for part in value)
    if key == "if":
        return f"if {format_expression(cast(n.Expr, value))}"
    raise ValueError(f"cannot print promotion item {item!r}")


def _promo_term(term: n.PromoTerm) -> str:
    if term.kind == "cycles" and term.cycles is not None:
        return f"for {term.cycles} cycles"
    if term.kind in ("once", "forever"):
        return term.kind
    raise ValueError(f"cannot print promotion term {term!r}")


def _limit(part: object) -> str:
    if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], int):
        if part[0] == "total":
            return f"{part[1]} total"
        if part[0] == "per_customer":
            return f"{part[1]} per customer"
    raise ValueError(f"cannot print promotion limit {part!r}")


def _tax_rate(rate: n.TaxRate) -> str:
    text = f"rate {_digits(rate.rate)}%"
    return text if rate.when is None else f"{text} when {format_expression(rate.when)}"


def _route_rules(rules: tuple[n.RouteRule, ...]) -> list[str]:
    lines = []
    for i, rule in enumerate(rules):
        if rule.when is None:
            lines.append(f"{rule.psp.name} otherwise")
            continue
        when = format_expression(rule.when)
        following = rules[i + 1].psp.name if i + 1 < len(rules) else None
        if following in _UNIT_WORDS and when[-1:].isdigit():
            when = f"({when})"  # else `3` and the next PSP would read as `3 days`
        lines.append(f"{rule.psp.name} when {when}")
    return lines


def _dunning_item(item: n.DunningItem) -> str:
    key, value = item.key, item.value
    if key == "retry" and isinstance(value, tuple) and value:
        return "retry after " + _commas(_duration(d) for d in value)
    if key == "via" and isinstance(value, n.Ref):
        return f"retry via {value.name}"
    if key == "no_retry":
        return f"no retry when {format_expression(cast(n.Expr, value))}"
    if (key == "grace" and isinstance(value, tuple) and len(value) == 2
            and isinstance(value[0], n.Duration) and value[1] in ("keep", "revoke")):
        return f"grace {_duration(value[0])} {value[1]} entitlements"
    if key == "then" and value in ("cancel", "pause", "unpaid"):
        return f"then {value}"
    raise ValueError(f"cannot print dunning item {item!r}")


def _lifecycle_item(item: n.LifecycleItem) -> str:
    key, value = item.key, item.value
    if (key == "pause" and isinstance(value, tuple) and len(value) == 2
            and isinstance(value[0], n.Duration)):
        text = f"pause max {_duration(value[0])}"
        return text if value[1] is None else f"{text} when {format_expression(value[1])}"
    if key == "cancel" and value == "period_end":
        return "cancel at period_end"
    if key == "cancel" and value == "immediate":
        return "cancel immediate"
    if key == "refund" and isinstance(value, tuple) and len(value) == 3:
        kind, within, after = value
        if kind == "full" and isinstance(within, n.Duration) and after in ("prorated", "none"):
            return f"refund full within {_duration(within)}, {after} after"
        if kind in ("full", "prorated", "none") and within is None:
            return f"refund {kind}"
    raise ValueError(f"cannot print lifecycle item {item!r}")
