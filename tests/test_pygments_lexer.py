"""The Pygments lexer: the grammar's keywords, no error tokens on real rulesets, exact
tokens for each kind of literal."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("pygments", reason="the lexer needs Pygments (the 'lsp' or 'docs' extra)")
from pygments.token import (  # noqa: E402
    Comment,
    Error,
    Keyword,
    Literal,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
)

from revrules.pygments_lexer import KEYWORDS, RevrulesLexer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# the grammar file, wherever the project keeps it
GRAMMAR = next(p for p in (ROOT / "src" / "revrules" / "grammar" / "revrules.lark",
                           ROOT / "grammar" / "revrules.lark") if p.exists())


def _tokens(text: str) -> list[tuple[object, str]]:
    return [(kind, value) for kind, value in RevrulesLexer().get_tokens(text)
            if kind is not Whitespace]


def test_keywords_are_the_grammars_quoted_words() -> None:
    # read independently of the lexer: every quoted word of the grammar file
    text = re.sub(r"//[^\n]*", "", GRAMMAR.read_text("utf-8"))
    quoted = sorted(set(re.findall(r'"([a-z_]+)"', text)))
    assert list(KEYWORDS) == quoted
    assert {"storefront", "period_end", "prorated", "unpaid", "true", "cycles"} <= set(KEYWORDS)


@pytest.mark.parametrize("path", sorted((ROOT / "rulesets").glob("*.rr"))
                         + sorted((ROOT / "examples").glob("*.rr")), ids=lambda p: p.name)
def test_bundled_rulesets_lex_without_error_tokens(path: Path) -> None:
    text = path.read_text("utf-8")
    tokens = list(RevrulesLexer().get_tokens(text))
    assert [value for kind, value in tokens if kind in Error] == []
    assert "".join(value for _, value in tokens) == text


def test_every_token_of_streaming() -> None:
    text = (ROOT / "rulesets" / "streaming.rr").read_text("utf-8")
    tokens = list(RevrulesLexer().get_tokens(text))
    assert "".join(value for _, value in tokens) == text
    assert not [t for t in tokens if t[0] in Error]
    kinds = {kind for kind, _ in tokens}
    assert {Comment.Single, Keyword.Declaration, Keyword, Name.Class, Name.Namespace,
            Name.Builtin, Name.Attribute, Name, Number.Money, Number.Percent,
            Number.Integer, Literal.Date, String.Double, Operator, Operator.Word,
            Punctuation} <= kinds


def test_exact_tokens() -> None:
    assert _tokens('storefront web_eu { channel web  currency EUR  tax inclusive  psp adyen, '
                   'stripe  commission 15% }  # the shop\n') == [
        (Keyword.Declaration, "storefront"), (Name.Class, "web_eu"), (Punctuation, "{"),
        (Keyword, "channel"), (Name, "web"), (Keyword, "currency"), (Name, "EUR"),
        (Keyword, "tax"), (Keyword, "inclusive"), (Keyword, "psp"), (Name, "adyen"),
        (Punctuation, ","), (Name, "stripe"), (Keyword, "commission"),
        (Number.Percent, "15%"), (Punctuation, "}"), (Comment.Single, "# the shop")]
    assert _tokens("  price web_eu   EUR 13.99 from 2027-02-01 consent required\n") == [
        (Keyword, "price"), (Name, "web_eu"), (Number.Money, "EUR 13.99"), (Keyword, "from"),
        (Literal.Date, "2027-02-01"), (Keyword, "consent"), (Keyword, "required")]
    assert _tokens('  deny "no trials" when customer.trials_used > 0 and not '
                   'storefront.channel in {web, direct}\n') == [
        (Keyword, "deny"), (String.Double, '"no trials"'), (Keyword, "when"),
        (Name.Builtin, "customer"), (Punctuation, "."), (Name.Attribute, "trials_used"),
        (Operator, ">"), (Number.Integer, "0"), (Operator.Word, "and"),
        (Operator.Word, "not"), (Name.Builtin, "storefront"), (Punctuation, "."),
        (Name.Attribute, "channel"), (Operator.Word, "in"), (Punctuation, "{"),
        (Name, "web"), (Punctuation, ","), (Name, "direct"), (Punctuation, "}")]
    assert _tokens("  adyen when total >= EUR 50.00 and event.at < "
                   "2027-01-01T00:00:00Z or max(1.5, 2) == true\n") == [
        (Name, "adyen"), (Keyword, "when"), (Name.Builtin, "total"), (Operator, ">="),
        (Number.Money, "EUR 50.00"), (Operator.Word, "and"), (Name.Builtin, "event"),
        (Punctuation, "."), (Name.Attribute, "at"), (Operator, "<"),
        (Literal.Date, "2027-01-01T00:00:00Z"), (Operator.Word, "or"),
        (Name.Function, "max"), (Punctuation, "("), (Number.Float, "1.5"),
        (Punctuation, ","), (Number.Integer, "2"), (Punctuation, ")"), (Operator, "=="),
        (Keyword.Constant, "true")]
    assert _tokens('ruleset streaming version "1"\nroute {\n}\n') == [
        (Keyword.Declaration, "ruleset"), (Name.Namespace, "streaming"), (Keyword, "version"),
        (String.Double, '"1"'), (Keyword.Declaration, "route"), (Punctuation, "{"),
        (Punctuation, "}")]


def test_a_stray_character_is_an_error_token() -> None:
    assert (Error, "@") in _tokens("plan p { @ }\n")


def test_registered_as_a_pygments_plugin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    target = project["project"]["entry-points"]["pygments.lexers"]["revrules"]
    module, _, name = target.partition(":")
    __import__(module)
    assert getattr(sys.modules[module], name) is RevrulesLexer
    assert RevrulesLexer.aliases == ["revrules", "rr"]
    assert RevrulesLexer.filenames == ["*.rr"]
