"""What an editor asks about a ``.rr`` file, answered without any editor protocol.

The language server (:mod:`revrules.lsp`) and the Pygments lexer
(:mod:`revrules.pygments_lexer`) are thin layers over this module:

- :func:`grammar_keywords`: the keywords of the grammar, read from the Lark grammar
  itself, so the lexer and completion never drift from the parser;
- :class:`Positions`: parser positions (1-based lines and columns counted in code
  points, lines ending at ``\\n`` only) to and from LSP positions (0-based lines ending
  at ``\\n``, ``\\r\\n`` or ``\\r``; characters counted in UTF-16 code units unless
  the client and server agreed on UTF-8 or UTF-32);
- :func:`analyse`: the parse and the checker's diagnostics of a text; when the text
  does not parse, the declarations that still parse on their own (:func:`salvage`),
  so that navigation keeps working while one declaration is being typed;
- :class:`Index`: every declaration and every reference to it, from the AST spans;
  go-to-definition, find-references, hover text and completion are look-ups in it.

Nothing here raises for any input text.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence
from typing import Any, Literal, cast

import attrs

from . import nodes as n
from .diagnostics import Diagnostic, RulesetError
from .diagnostics import line_starts as lark_line_starts

__all__ = [
    "Analysis", "Completion", "Index", "Occurrence", "Positions", "Symbol", "analyse",
    "completions", "grammar_keywords", "index", "salvage",
]

Kind = Literal["storefront", "product", "bundle", "plan", "contract", "eligibility",
               "promotion", "tax", "dunning", "attribute", "psp"]
#: The kinds of names that have declarations, as a reader says them.
KIND_WORDS: dict[str, str] = {
    "storefront": "storefront", "product": "product", "bundle": "bundle", "plan": "plan",
    "contract": "contract", "eligibility": "eligibility rule", "promotion": "promotion",
    "tax": "tax table", "dunning": "dunning policy", "attribute": "customer attribute",
    "psp": "payment service provider",
}


# -- keywords --------------------------------------------------------------------------


@functools.cache
def grammar_keywords() -> tuple[str, ...]:
    """Every word the grammar quotes (``"storefront"``, ``"when"``, ``"period_end"``),
    sorted; taken from the parser's own Lark grammar, not from a list kept by hand."""
    from lark.lexer import PatternStr

    from .parser import _parser

    words = {t.pattern.value for t in _parser().terminals
             if isinstance(t.pattern, PatternStr) and re.fullmatch(r"[a-z_]+", t.pattern.value)}
    return tuple(sorted(words))


#: Keywords that start a top-level declaration.
DECLARATION_KEYWORDS = ("ruleset", "rounding", "timezone", "customer", "storefront", "product",
                        "bundle", "plan", "contract", "eligibility", "promotion", "tax", "route",
                        "dunning", "lifecycle")
#: The objects an expression can read (``customer.country``, ``total``).
ROOTS = ("customer", "storefront", "plan", "subscription", "event", "payment", "total")


# -- positions -------------------------------------------------------------------------

Encoding = Literal["utf-16", "utf-8", "utf-32"]
_LSP_BREAK = re.compile(r"\r\n|\r|\n")


class Positions:
    """Positions in one document text, in the parser's terms and in LSP's.

    ``text`` is the document as the editor holds it; a byte-order mark at its start
    is not part of what the parser sees, so parser columns on line 1 start after it.
    """

    def __init__(self, text: str, encoding: Encoding = "utf-16"):
        self.text = text
        self.encoding = encoding
        self.bom = 1 if text.startswith("\ufeff") else 0
        self.source = text[self.bom:]
        self._lark = lark_line_starts(self.source)
        starts = [0]
        starts.extend(m.end() for m in _LSP_BREAK.finditer(text))
        self._lsp = starts

    # parser coordinates <-> offsets in ``text``
    def offset(self, line: int, column: int) -> int:
        """The offset in ``text`` of a parser position (1-based line and column)."""
        if line < 1:
            return 0
        if line > len(self._lark):
            return len(self.text)
        start = self._lark[line - 1]
        end = self._lark[line] - 1 if line < len(self._lark) else len(self.source)
        return self.bom + min(start + max(column - 1, 0), end)

    def lark(self, offset: int) -> tuple[int, int]:
        """The parser position (1-based line and column) of an offset in ``text``."""
        pos = min(max(offset - self.bom, 0), len(self.source))
        line = bisect.bisect_right(self._lark, pos)
        return line, pos - self._lark[line - 1] + 1

    # LSP coordinates <-> offsets in ``text``
    def _units(self, text: str) -> int:
        if self.encoding == "utf-32":
            return len(text)
        if self.encoding == "utf-8":
            return len(text.encode("utf-8", "surrogatepass"))
        return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)

    def lsp(self, offset: int) -> tuple[int, int]:
        """The LSP position (0-based line, character in the agreed units) of an offset."""
        offset = min(max(offset, 0), len(self.text))
        line = bisect.bisect_right(self._lsp, offset) - 1
        start = self._lsp[line]
        if offset > start and self.text[offset - 1] == "\r" and self.text[offset:offset + 1] \
                == "\n":  # inside a \r\n pair: at the end of the line
            offset -= 1
        return line, self._units(self.text[start:offset])

    def from_lsp(self, line: int, character: int) -> int:
        """The offset of an LSP position; past the end of its line means the line's end."""
        if line < 0:
            return 0
        if line >= len(self._lsp):
            return len(self.text)
        start = self._lsp[line]
        end = self._lsp[line + 1] if line + 1 < len(self._lsp) else len(self.text)
        body = self.text[start:end]
        stripped = body.rstrip("\r\n") if end < len(self.text) or body.endswith(("\r", "\n")) \
            else body
        units = 0
        for i, c in enumerate(stripped):
            if units >= character:
                return start + i
            units += self._units(c)
        return start + len(stripped)

    def span_range(self, span: n.Span) -> tuple[tuple[int, int], tuple[int, int]]:
        """A span as an LSP range ``((line, character), (line, character))``; a span
        without a place (line 0) is the start of the document."""
        if span.line < 1:
            return (0, 0), (0, 0)
        start = self.offset(span.line, span.column)
        end = self.offset(span.end_line, span.end_column) if span.end_line >= 1 else start
        return self.lsp(start), self.lsp(max(start, end))

    def end(self) -> tuple[int, int]:
        """The LSP position of the end of the document."""
        return self.lsp(len(self.text))


# -- analysis --------------------------------------------------------------------------


@attrs.frozen
class Analysis:
    """A text's parse (``module``, None when it does not parse), the declarations that
    still parse when it does not (``partial``), and every diagnostic."""

    module: n.Module | None
    partial: n.Module
    diagnostics: tuple[Diagnostic, ...]

    @property
    def best(self) -> n.Module:
        """The module to navigate in: the parse, or else the declarations salvaged."""
        return self.module if self.module is not None else self.partial


def analyse(text: str, file: str = "<string>") -> Analysis:
    """Parse and check ``text``: the diagnostics as ``revrules check`` gives them."""
    from .checker import check
    from .parser import parse

    try:
        module = parse(text, file)
    except RulesetError as exc:
        return Analysis(None, salvage(text, file), exc.diagnostics)
    except RecursionError:  # pragma: no cover - the parser bounds nesting itself
        return Analysis(None, n.Module(file, ()), ())
    result = check(module)
    return Analysis(module, module, result.diagnostics)


_DECL_START = re.compile(r"^(?:" + "|".join(DECLARATION_KEYWORDS) + r")\b", re.MULTILINE)


def salvage(text: str, file: str = "<string>") -> n.Module:
    """The declarations of ``text`` that parse on their own, with their spans in
    ``text``: each piece from one line that starts with a declaration keyword to the
    next is parsed alone; the pieces that do not parse are left out."""
    from .parser import parse

    source = text.removeprefix("\ufeff")
    starts = [m.start() for m in _DECL_START.finditer(source)]
    lines = lark_line_starts(source)
    decls: list[n.Decl] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(source)
        try:
            piece = parse(source[start:end], file)
        except (RulesetError, RecursionError):
            continue
        shift = bisect.bisect_right(lines, start) - 1
        decls.extend(cast(n.Decl, _shifted(d, shift)) for d in piece.decls)
    return n.Module(file, tuple(decls), source)


def _shifted(value: object, lines: int) -> object:
    """``value`` with every span in it moved down by ``lines`` lines."""
    if lines == 0:
        return value
    if isinstance(value, n.Span):
        return attrs.evolve(value, line=value.line + lines, end_line=value.end_line + lines)
    if isinstance(value, tuple):
        return tuple(_shifted(v, lines) for v in value)
    if attrs.has(type(value)):
        changes = {}
        for field in attrs.fields(cast(Any, type(value))):
            inner = getattr(value, field.name)
            if isinstance(inner, (n.Span, tuple)) or attrs.has(type(inner)):
                changes[field.alias or field.name] = _shifted(inner, lines)
        return attrs.evolve(value, **changes)  # type: ignore[misc]
    return value


# -- the index of names ----------------------------------------------------------------


@attrs.frozen
class Occurrence:
    """One name in the source: a declaration's name or a reference to one."""

    kind: Kind
    name: str
    span: n.Span
    declaration: bool = False


@attrs.frozen
class Symbol:
    """A declaration: its name's span and the span of the whole declaration."""

    kind: Kind
    name: str
    name_span: n.Span
    span: n.Span


class Index:
    """Every declaration of a module and every occurrence of a declared name."""

    def __init__(self, module: n.Module):
        self.module = module
        self.symbols: list[Symbol] = []
        self.occurrences: list[Occurrence] = []
        self._build()
        self.occurrences.sort(key=lambda o: (o.span.line, o.span.column))
        self._starts = [(o.span.line, o.span.column) for o in self.occurrences]

    # -- building ----------------------------------------------------------------------
    def _declare(self, kind: Kind, name: str, name_span: n.Span, span: n.Span) -> None:
        self.symbols.append(Symbol(kind, name, name_span, span))
        self.occurrences.append(Occurrence(kind, name, name_span, True))

    def _refer(self, kind: Kind, ref: n.Ref) -> None:
        if ref.span.line > 0:
            self.occurrences.append(Occurrence(kind, ref.name, ref.span))

    def _build(self) -> None:
        declared: dict[type, Kind] = {
            n.Storefront: "storefront", n.Product: "product", n.Bundle: "bundle",
            n.Plan: "plan", n.Contract: "contract", n.Eligibility: "eligibility",
            n.Promotion: "promotion", n.Tax: "tax", n.Dunning: "dunning"}
        decls = self.module.decls
        for decl in decls:
            kind = declared.get(type(decl))
            if kind is not None:
                named = cast(n.Storefront, decl)  # every declared kind has these three
                self._declare(kind, named.name, named.name_span, named.span)
            elif isinstance(decl, n.CustomerSchema):
                for attr in decl.attrs:
                    s = attr.span
                    name_span = n.Span(s.file, s.line, s.column, s.line, s.column + len(attr.name))
                    self._declare("attribute", attr.name, name_span, s)
        # names an expression may use, by namespace (as the checker resolves them)
        self._names: dict[str, set[str]] = {
            "storefront": {s.name for s in self.symbols if s.kind == "storefront"},
            "plan": {s.name for s in self.symbols if s.kind == "plan"},
            "psp": set()}
        for decl in decls:
            if isinstance(decl, n.Storefront):
                for item in decl.items:
                    if item.key == "psp":
                        for ref in cast("tuple[n.Ref, ...]", item.value):
                            self._names["psp"].add(ref.name)
                            self._refer("psp", ref)
        for decl in decls:
            self._references(decl)

    def _references(self, decl: n.Decl) -> None:
        if isinstance(decl, n.Bundle):
            for ref in decl.products:
                self._refer("product", ref)
        elif isinstance(decl, n.Plan):
            for item in decl.items:
                if isinstance(item, n.PlanProduct):
                    self._refer(item.kind, item.target)
                elif isinstance(item, n.PlanTrial) and item.eligibility is not None:
                    self._refer("eligibility", item.eligibility)
                elif isinstance(item, n.PlanPrice):
                    self._refer("storefront", item.storefront)
                elif isinstance(item, n.PlanNotSold):
                    for ref in item.storefronts:
                        self._refer("storefront", ref)
                elif isinstance(item, n.PlanChange):
                    self._refer("plan", item.target)
        elif isinstance(decl, n.Contract):
            for c in decl.items:
                if c.key == "plan" and isinstance(c.value, n.Ref):
                    self._refer("plan", c.value)
        elif isinstance(decl, n.Eligibility):
            for deny in decl.denies:
                self._expression(deny.when)
        elif isinstance(decl, n.Promotion):
            for p in decl.items:
                if p.key in ("plans", "storefronts"):
                    for ref in cast("tuple[n.Ref, ...]", p.value):
                        self._refer("plan" if p.key == "plans" else "storefront", ref)
                elif p.key == "if":
                    self._expression(cast(n.Expr, p.value))
        elif isinstance(decl, n.Tax):
            for rate in decl.rates:
                self._expression(rate.when)
        elif isinstance(decl, n.Route):
            for rule in decl.rules:
                self._refer("psp", rule.psp)
                self._expression(rule.when)
        elif isinstance(decl, n.Dunning):
            self._expression(decl.when)
            for d in decl.items:
                if d.key == "via" and isinstance(d.value, n.Ref):
                    self._refer("psp", d.value)
                elif d.key == "no_retry":
                    self._expression(cast(n.Expr, d.value))
        elif isinstance(decl, n.Lifecycle):
            for step in decl.items:
                if step.key == "pause":
                    self._expression(cast("tuple[object, n.Expr | None]", step.value)[1])

    def _expression(self, expr: n.Expr | None) -> None:
        todo: list[tuple[n.Expr, str | None]] = [(expr, None)] if expr is not None else []
        while todo:
            e, hint = todo.pop()
            if isinstance(e, n.Name):
                self._name(e, hint)
            elif isinstance(e, n.Field):
                obj = e.obj
                if isinstance(obj, n.Name) and obj.name == "customer":
                    s = e.span
                    if s.line > 0 and e.name != "id":
                        start = s.end_column - len(e.name)
                        self.occurrences.append(Occurrence(
                            "attribute", e.name, n.Span(s.file, s.end_line, start, s.end_line,
                                                        s.end_column)))
                elif not isinstance(obj, n.Name):
                    todo.append((obj, None))
            elif isinstance(e, n.Binary):
                todo.append((e.left, _namespace(e.right)))
                todo.append((e.right, _namespace(e.left)))
            elif isinstance(e, n.Unary):
                todo.append((e.operand, None))
            elif isinstance(e, n.SetLit):
                todo.extend((item, hint) for item in e.items)
            elif isinstance(e, n.Call):
                todo.extend((arg, None) for arg in e.args)

    def _name(self, e: n.Name, hint: str | None) -> None:
        if e.name in ROOTS or e.span.line < 1:
            return
        order = ("storefront", "plan", "psp")
        if hint in order:
            order = (hint, *(k for k in order if k != hint))  # type: ignore[assignment]
        for kind in order:
            if e.name in self._names[kind]:
                self.occurrences.append(Occurrence(cast(Kind, kind), e.name, e.span))
                return

    # -- look-ups ----------------------------------------------------------------------
    def at(self, line: int, column: int) -> Occurrence | None:
        """The occurrence at a parser position (1-based), touching its end included."""
        i = bisect.bisect_right(self._starts, (line, column)) - 1
        for occ in self.occurrences[max(i - 1, 0):i + 1][::-1]:
            s = occ.span
            if s.line == line and s.column <= column <= s.end_column:
                return occ
        return None

    def definitions(self, occ: Occurrence) -> list[Occurrence]:
        """Where the name of ``occ`` is declared (a PSP: each storefront listing it)."""
        if occ.kind == "psp":
            return [o for o in self.occurrences if o.kind == "psp" and o.name == occ.name
                    and self._in_storefront(o)]
        return [o for o in self.occurrences
                if o.declaration and o.kind == occ.kind and o.name == occ.name]

    def _in_storefront(self, occ: Occurrence) -> bool:
        return any(s.kind == "storefront" and _within(occ.span, s.span) for s in self.symbols)

    def references(self, occ: Occurrence, include_declaration: bool = True) -> list[Occurrence]:
        """Every occurrence of the name of ``occ``, in source order."""
        return [o for o in self.occurrences if o.kind == occ.kind and o.name == occ.name
                and (include_declaration or not (o.declaration or (
                    o.kind == "psp" and self._in_storefront(o))))]

    def symbol(self, occ: Occurrence) -> Symbol | None:
        """The first declaration of the name of ``occ``."""
        for s in self.symbols:
            if s.kind == occ.kind and s.name == occ.name:
                return s
        return None

    def hover(self, occ: Occurrence) -> str:
        """Markdown for a name: what it is and its declaration's source text."""
        word = KIND_WORDS[occ.kind]
        if occ.kind == "psp":
            fronts = [s.name for s in self.symbols if s.kind == "storefront"
                      and any(_within(o.span, s.span) for o in self.definitions(occ))]
            listed = ", ".join(f"`{f}`" for f in fronts) or "no storefront"
            return f"{word} `{occ.name}`, listed by {listed}"
        symbol = self.symbol(occ)
        if symbol is None:
            return f"{word} `{occ.name}` (not declared)"
        text = source_text(self.module.source, symbol.span)
        return f"{word} `{occ.name}`\n\n```revrules\n{text}\n```"


def _namespace(expr: n.Expr) -> str | None:
    """The namespace a bare name compared with ``expr`` lives in, if ``expr`` says it."""
    if isinstance(expr, n.Name) and expr.name in ("storefront", "plan"):
        return expr.name
    if isinstance(expr, n.Field) and expr.name in ("storefront", "plan", "psp"):
        return expr.name
    return None


def _within(inner: n.Span, outer: n.Span) -> bool:
    return (outer.line, outer.column) <= (inner.line, inner.column) and \
        (inner.end_line, inner.end_column) <= (outer.end_line, outer.end_column)


def source_text(source: str, span: n.Span) -> str:
    """The text a span covers in ``source`` (the parser's text, without a BOM)."""
    if span.line < 1:
        return ""
    positions = Positions(source)
    return source[positions.offset(span.line, span.column):
                  positions.offset(span.end_line, span.end_column)]


def index(module: n.Module) -> Index:
    """The :class:`Index` of a module."""
    return Index(module)


# -- completion ------------------------------------------------------------------------


@attrs.frozen
class Completion:
    label: str
    kind: Literal["keyword", "name", "field"]
    detail: str


_FIELD_BEFORE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)?$")


def completions(modules: Sequence[n.Module], line_before: str) -> list[Completion]:
    """What may be typed at a place whose line reads ``line_before`` up to the cursor:
    after ``customer.`` the customer's attributes, after ``storefront.`` (and the
    other objects) their fields; elsewhere every declared name, then every keyword."""
    from .checker import _FIELDS

    symbols = [s for m in modules for s in index(m).symbols]
    field = _FIELD_BEFORE.search(line_before)
    if field is not None:
        root = field[1]
        if root == "customer":
            names = dict.fromkeys(["id", *(s.name for s in symbols if s.kind == "attribute")])
            return [Completion(a, "field", "customer attribute") for a in names]
        if root in _FIELDS:
            return [Completion(f, "field", f"{root} field") for f in sorted(_FIELDS[root])]
        return []
    if re.search(r"\.[A-Za-z0-9_]*$", line_before):  # after '1.' or ').': nothing to offer
        return []
    seen: dict[str, Completion] = {}
    for s in symbols:
        if s.kind != "attribute":
            seen.setdefault(s.name, Completion(s.name, "name", KIND_WORDS[s.kind]))
    for word in grammar_keywords():
        seen.setdefault(word, Completion(word, "keyword", "keyword"))
    return list(seen.values())

