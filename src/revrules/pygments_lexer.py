"""A Pygments lexer for ``.rr`` rule files.

Registered under the ``pygments.lexers`` entry point, so once revrules is installed
``pygmentize -l revrules FILE.rr`` (or ``rr``) highlights a ruleset, and so does any
documentation tool built on Pygments for a code block marked ``revrules``.

The keywords are the grammar's own (:func:`revrules.editor.grammar_keywords`), read
from the Lark grammar when this module is imported. Token types:

- ``Keyword.Declaration`` for a keyword that starts a declaration at the start of a
  line (``storefront``, ``plan``, ``dunning`` …), ``Keyword`` for the others, and
  ``Keyword.Constant`` for ``true`` and ``false``;
- ``Operator.Word`` for ``and``, ``or``, ``not``, ``in``; ``Operator`` for symbols;
- ``Name.Class`` for the name a declaration introduces (``Name.Namespace`` for the
  ruleset's), ``Name.Builtin`` for the objects an expression reads (``customer``,
  ``storefront`` …), ``Name.Attribute`` after a dot, ``Name.Function`` before ``(``,
  ``Name`` for every other name;
- ``Number.Money`` for an amount with its currency (``EUR 12.99``),
  ``Number.Percent`` (``19%``), ``Number.Integer``, ``Number.Float``;
- ``Literal.Date`` for dates and datetimes, ``String.Double``, ``Comment.Single``.
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (
    Comment,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from .checker import _FUNCTIONS
from .editor import DECLARATION_KEYWORDS, ROOTS, grammar_keywords

__all__ = ["KEYWORDS", "RevrulesLexer"]

#: Every keyword of the grammar, as this lexer highlights them.
KEYWORDS: tuple[str, ...] = grammar_keywords()
_WORD_OPERATORS = ("and", "or", "not", "in")
_CONSTANTS = ("true", "false")
_OTHER = tuple(k for k in KEYWORDS if k not in _WORD_OPERATORS + _CONSTANTS)
_DECLARING = ("storefront", "product", "bundle", "plan", "contract", "eligibility",
              "promotion", "tax", "route", "dunning")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# a declaration keyword, then the name it introduces
_DECLARES_NAMESPACE = bygroups(  # type: ignore[no-untyped-call]
    Keyword.Declaration, Whitespace, Name.Namespace)
_DECLARES = bygroups(Keyword.Declaration, Whitespace, Name.Class)  # type: ignore[no-untyped-call]


class RevrulesLexer(RegexLexer):
    """Lexer for revrules ``.rr`` rule files."""

    name = "revrules"
    aliases = ["revrules", "rr"]
    filenames = ["*.rr"]
    mimetypes = ["text/x-revrules"]
    url = "https://github.com/revrules/revrules"

    tokens = {
        "root": [
            (r"[ \t\r\f\v]+|\n", Whitespace),
            (r"#[^\n]*", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"', String.Double),
            # a declaration and the name it introduces
            (r"^(ruleset)([ \t]+)(" + _NAME + ")", _DECLARES_NAMESPACE),
            (r"^(" + "|".join(_DECLARING) + r")([ \t]+)(" + _NAME + ")", _DECLARES),
            (words(DECLARATION_KEYWORDS, prefix=r"^", suffix=r"\b"), Keyword.Declaration),
            # literals
            (r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?"
             r"(?:Z|[+-][0-9]{2}:[0-9]{2})", Literal.Date),
            (r"[0-9]{4}-[0-9]{2}-[0-9]{2}", Literal.Date),
            (r"[A-Z]{3}[ \t]+[0-9]+(?:\.[0-9]+)?", Number.Money),
            (r"[0-9]+(?:\.[0-9]+)?%", Number.Percent),
            (r"[0-9]+\.[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            # names
            (r"(?<=\.)" + _NAME, Name.Attribute),
            (words(ROOTS, prefix=r"\b", suffix=r"\b(?=[ \t]*(?:\.|==|!=|<|>|\bin\b|\bnot\b))"),
             Name.Builtin),
            (words(_FUNCTIONS, prefix=r"\b", suffix=r"(?=[ \t]*\()"), Name.Function),
            (words(_CONSTANTS, prefix=r"\b", suffix=r"\b"), Keyword.Constant),
            (words(_WORD_OPERATORS, prefix=r"\b", suffix=r"\b"), Operator.Word),
            (words(_OTHER, prefix=r"\b", suffix=r"\b"), Keyword),
            (_NAME + r"(?=[ \t]*\()", Name.Function),
            (_NAME, Name),
            # symbols
            (r"==|!=|<=|>=|[<>=+\-*/]", Operator),
            (r"[{}()\[\],:.]", Punctuation),
        ],
    }
