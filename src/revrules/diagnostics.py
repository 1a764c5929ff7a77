"""Diagnostics: what is wrong with a ruleset, where, and how to fix it.

Every stage reports problems as :class:`Diagnostic` values; one renderer shows them
as ``file:line:col``, the source line and a caret under the span::

    streaming.rr:25:9: error[unknown_storefront]: unknown storefront 'web_xx' (did you mean 'web_eu'?)
        |
     25 |   price web_xx   EUR 6.99
        |         ^^^^^^
"""

from __future__ import annotations

import difflib
import functools
import json
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import attrs

from .nodes import Span

Severity = Literal["error", "warning"]


@attrs.frozen
class Diagnostic:
    """One problem found in a ruleset, with a stable ``code`` for tools.

    Error codes are names (``unknown_storefront``, ``unlisted_psp``, like the engine's
    event error codes); warning codes are ``RR1xx`` (docs/codes.md). Both show in the
    rendered head: ``file:line:col: warning[RR101]: …``."""

    severity: Severity
    code: str
    message: str
    span: Span
    hint: str | None = None

    def render(self, source: str | None = None) -> str:
        """The diagnostic as text, with the source line and a caret if ``source`` is given."""
        head = f"{self.span}: {self.severity}[{self.code}]: {self.message}"
        lines = [printable(head)]
        if source is not None and self.span.line > 0:
            lines.extend(_excerpt(source, self.span))
        if self.hint:
            lines.append(printable(f"  = help: {self.hint}"))
        return "\n".join(lines)


def printable(text: str) -> str:
    """``text`` with every non-printable character escaped (``\\n``, ``\\x1b``, ``\\u2028``).

    File names and messages can quote outside text; escaping keeps a diagnostic on its
    own lines and keeps terminal escape sequences out of the output.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _excerpt(source: str, span: Span) -> list[str]:
    starts = line_starts(source)
    if span.line > len(starts):
        return []
    begin = starts[span.line - 1]
    end = starts[span.line] - 1 if span.line < len(starts) else len(source)
    # one character, one column: tabs and other non-printable characters show as a space
    text = "".join(c if c.isprintable() else " " for c in source[begin:end].rstrip("\r"))
    width = len(str(span.line))
    start = max(span.column - 1, 0)
    if span.end_line == span.line and span.end_column > span.column:
        length = span.end_column - span.column
    else:
        length = max(len(text.rstrip()) - start, 1)
    gutter = " " * width
    return [
        f" {gutter} |",
        f" {span.line} | {text}",
        f" {gutter} | {' ' * start}{'^' * length}",
    ]


@functools.lru_cache(maxsize=16)
def line_starts(source: str) -> tuple[int, ...]:
    """Where each line of ``source`` starts, computed once per source text.

    Lines end at ``\\n`` only, as the parser counts them: ``\\r``, form feeds, U+2028
    and the other characters :meth:`str.splitlines` also breaks at are not line breaks.
    """
    starts = [0]
    find = source.find
    pos = find("\n")
    while pos >= 0:
        starts.append(pos + 1)
        pos = find("\n", pos + 1)
    return tuple(starts)


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt ``name``, if one is close enough.

    Ties go to the candidate given first (declaration order), so suggestions are
    stable and do not depend on hashing.
    """
    best, best_score = None, 0.6
    matcher = difflib.SequenceMatcher(b=name)
    for candidate in dict.fromkeys(candidates):
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < best_score or matcher.quick_ratio() < best_score:
            continue
        score = matcher.ratio()
        if score > best_score or (best is None and score >= best_score):
            best, best_score = candidate, score
    return best


#: Characters a suggestion may put into a name, besides those already in it.
NAME_ALPHABET = string.ascii_letters + string.digits + "_-.:"
#: Names longer than this get no suggestion from :func:`one_edit_away`.
MAX_SUGGESTED_LENGTH = 64


def one_edit_away(name: str, present: Callable[[str], bool]) -> list[str]:
    """The names one typo from ``name`` (a character dropped, added, replaced or two
    swapped) for which ``present`` is true, sorted.

    For looking up a suggestion among very many names (subscription ids) without
    scanning them: the number of ``present`` calls depends on ``len(name)`` only, never
    on how many names there are: at most ``(2 * len(name) + 1) * (len(alphabet) + 1)``,
    the alphabet being :data:`NAME_ALPHABET` and the characters of ``name``.
    """
    if len(name) > MAX_SUGGESTED_LENGTH:
        return []
    alphabet = sorted(set(NAME_ALPHABET) | set(name))
    candidates = {name[:i] + name[i + 1:] for i in range(len(name))}
    candidates |= {name[:i] + name[i + 1] + name[i] + name[i + 2:]
                   for i in range(len(name) - 1)}
    for i in range(len(name) + 1):
        candidates |= {name[:i] + c + name[i:] for c in alphabet}
        if i < len(name):
            candidates |= {name[:i] + c + name[i + 1:] for c in alphabet}
    candidates.discard(name)
    return sorted(c for c in candidates if present(c))


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or the empty string."""
    best = suggest(name, candidates)
    return f" (did you mean '{best}'?)" if best else ""


def json_text(value: object, limit: int = 60) -> str:
    """A value read from JSON, spelt as JSON spells it (``true``, ``null``, ``"text"``,
    ``[1]``), for messages; cut after ``limit`` characters with an ellipsis."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError, RecursionError):
        text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


class RulesetError(Exception):
    """A ruleset that does not parse or check; carries every diagnostic found.

    ``str(error)`` renders them all with source excerpts.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic], sources: dict[str, str] | None = None):
        self.diagnostics = tuple(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(self.render())

    def render(self) -> str:
        parts = [d.render(self.sources.get(d.span.file)) for d in self.diagnostics]
        errors = sum(1 for d in self.diagnostics if d.severity == "error")
        parts.append(f"{errors} error{'s' if errors != 1 else ''} found")
        return "\n\n".join(parts)
