"""Text shown to people: input strings made safe to print on a terminal.

Ids, references, names and messages come from event logs, settlement reports and
rule files. Printed as they are, an ``ESC [ … m`` sequence would recolour or rewrite
the terminal, a bidi override would reorder what follows, a newline would forge a line.
:func:`printable` escapes every such character and leaves all other text as it is;
every human-readable report and every message of the command line goes through it.

>>> printable("s1\\x1b[2J\\u202egnp.exe")
's1\\\\x1b[2J\\\\u202egnp.exe'
>>> printable("Zürich 東京")
'Zürich 東京'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["UNSAFE", "printable", "printable_lines"]

#: What :func:`printable` escapes: C0 controls (tab, newline and ESC included), DEL, C1
#: controls, the bidi marks, embeddings, overrides and isolates, the line and paragraph
#: separators, and lone surrogates (which no encoder can write).
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                    "\ud800-\udfff]")

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every :data:`UNSAFE` character written as a Python-style escape
    (``\\x1b``, ``\\n``, ``\\u202e``); idempotent, and the identity on ordinary text."""
    if text.isprintable():  # fast path: every UNSAFE character is non-printable
        return text
    return UNSAFE.sub(_escape, text)


def printable_lines(lines: Iterable[str]) -> str:
    """Lines of a report joined with newlines, each made :func:`printable` (a newline
    inside a line is data, and is escaped)."""
    return "\n".join(printable(line) for line in lines)
