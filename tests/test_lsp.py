"""``revrules lsp`` end to end: a real LSP client (pytest-lsp) talks to
``python -m revrules lsp`` over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("pygls", reason="the language server needs pygls (the 'lsp' extra)")
pytest_lsp = pytest.importorskip("pytest_lsp", reason="the end-to-end tests need pytest-lsp "
                                 "(in the 'test' extra)")
from lsprotocol import types as t  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STREAMING = (ROOT / "rulesets" / "streaming.rr").read_text("utf-8")
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


@pytest_lsp.fixture(
    scope="module",
    config=ClientServerConfig(server_command=[sys.executable, "-m", "revrules", "lsp"],
                              server_env=ENV))
async def client(lsp_client: LanguageClient):  # type: ignore[no-untyped-def]
    await lsp_client.initialize_session(t.InitializeParams(
        capabilities=client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


_opened = 0


async def _open(client: LanguageClient, text: str) -> str:
    """Open a new document and wait for its diagnostics; return its uri."""
    global _opened
    _opened += 1
    uri = (ROOT / "tests" / f"lsp-doc-{_opened}.rr").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        text_document=t.TextDocumentItem(uri=uri, language_id="revrules", version=1,
                                         text=text)))
    await _diagnostics(client, uri)
    return uri


async def _diagnostics(client: LanguageClient, uri: str) -> list[t.Diagnostic]:
    """The next diagnostics published for ``uri`` (polled: no notification is missed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while uri not in client.diagnostics:
        assert loop.time() < deadline, f"no diagnostics for {uri}"
        await asyncio.sleep(0.01)
    return list(client.diagnostics.pop(uri))


def _at(text: str, needle: str, nth: int = 0, into: int = 0) -> t.Position:
    """The position ``into`` characters into the ``nth`` occurrence of ``needle``."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(needle, offset + 1)
    offset += into
    line = text.count("\n", 0, offset)
    return t.Position(line=line, character=offset - (text.rfind("\n", 0, offset) + 1))


def _range(text: str, needle: str, word: str, nth: int = 0) -> tuple[int, int, int, int]:
    """The range of ``word`` inside the ``nth`` occurrence of ``needle`` (one line)."""
    start = _at(text, needle, nth, needle.index(word))
    return (start.line, start.character, start.line, start.character + len(word))


def _replace(text: str, old: str, new: str) -> str:
    """``text`` with the first ``old`` replaced: ``old`` must be there."""
    assert old in text, old
    return text.replace(old, new, 1)


def _where(locations: list[t.Location] | None) -> list[tuple[int, int, int, int]]:
    return [(loc.range.start.line, loc.range.start.character, loc.range.end.line,
             loc.range.end.character) for loc in locations or []]


pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_diagnostics_of_a_file_with_errors_as_you_type(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    # a clean file: an empty list
    bad = _replace(STREAMING, "price web_us USD 7.99", "price web_xx USD 7.99")
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=bad)]))
    found = await _diagnostics(client, uri)
    assert [(d.code, d.severity, d.source, d.message) for d in found] == [
        ("coverage", t.DiagnosticSeverity.Error, "revrules",
         "plan 'basic_monthly' has no price in storefront 'web_us'\n"
         "help: add 'price web_us USD …' or 'not sold in web_us'"),
        ("unknown_storefront", t.DiagnosticSeverity.Error, "revrules",
         "unknown storefront 'web_xx' (did you mean 'web_eu'?)")]
    assert (found[1].range.start.line, found[1].range.start.character,
            found[1].range.end.line, found[1].range.end.character) == _range(
                bad, "price web_xx USD", "web_xx")

    # a syntax error while typing
    typing = _replace(bad, "price web_xx USD 7.99", "price web_xx USD")
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=3),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=typing)]))
    found = await _diagnostics(client, uri)
    usd = _at(typing, "price web_xx USD", into=13)
    assert [(d.code, d.range.start.line, d.range.start.character) for d in found] == [
        ("syntax", usd.line, usd.character)]
    assert found[0].message == "unexpected 'USD'; expected an amount like EUR 12.99"

    # fixed again, then saved: no diagnostics
    client.text_document_did_change(t.DidChangeTextDocumentParams(
        text_document=t.VersionedTextDocumentIdentifier(uri=uri, version=4),
        content_changes=[t.TextDocumentContentChangeWholeDocument(text=STREAMING)]))
    assert await _diagnostics(client, uri) == []
    client.text_document_did_save(t.DidSaveTextDocumentParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert await _diagnostics(client, uri) == []


async def test_clean_file_has_no_diagnostics(client: LanguageClient) -> None:
    uri = (ROOT / "tests" / "lsp-clean.rr").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        text_document=t.TextDocumentItem(uri=uri, language_id="revrules", version=1,
                                         text=STREAMING)))
    assert await _diagnostics(client, uri) == []


async def test_definition(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    # 'premium_monthly' in 'upgrade to premium_monthly immediate prorate'
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "to premium_monthly", into=5)))
    assert isinstance(found, list)
    assert _where(found) == [_range(STREAMING, "plan premium_monthly {", "premium_monthly")]
    assert found[0].uri == uri
    # a customer attribute used in an expression
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "customer.segment", into=10)))
    assert _where(found) == [_range(STREAMING, "  segment: string", "segment")]
    # a keyword is no name
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "every 1 month", into=1)))
    assert found is None


async def test_definition_in_a_file_that_does_not_parse(client: LanguageClient) -> None:
    broken = _replace(STREAMING, "price web_us USD 7.99", "price web_us USD")
    uri = await _open(client, broken)
    # the plan being typed is left out, the declarations that parse are still found
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(broken, "price web_jp", nth=1, into=8)))
    assert _where(found) == [_range(broken, "storefront web_jp", "web_jp")]
    # inside the plan that does not parse: nothing is known
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(broken, "price web_jp", into=8)))
    assert found is None
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(broken, "price web_us USD", into=8)))
    assert found is None


async def test_references(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    position = _at(STREAMING, "storefront telco_de", into=12)
    found = await client.text_document_references_async(t.ReferenceParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=position,
        context=t.ReferenceContext(include_declaration=True)))
    # the declaration, a price in each of the three plans sold there, the business plan's
    # 'not sold in' and the loyalty promotion's storefronts
    assert _where(found) == [
        _range(STREAMING, "storefront telco_de", "telco_de"),
        *(_range(STREAMING, "price telco_de", "telco_de", nth) for nth in range(3)),
        _range(STREAMING, "ios, telco_de", "telco_de"),
        _range(STREAMING, "storefronts web_eu, telco_de", "telco_de")]
    assert STREAMING.count("telco_de") == 6
    found = await client.text_document_references_async(t.ReferenceParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=position,
        context=t.ReferenceContext(include_declaration=False)))
    assert len(found or []) == 5


async def test_hover(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    found = await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "trial 14 days if trial_ok", into=18)))
    assert found is not None
    assert isinstance(found.contents, t.MarkupContent)
    assert found.contents.kind == t.MarkupKind.Markdown
    # the declaration's source text, its comments included
    assert found.contents.value == (
        "eligibility rule `trial_ok`\n\n```revrules\n"
        "eligibility trial_ok {  # who may start a free trial\n"
        '  deny "trial already used" when customer.trials_used > 0'
        "  # one trial per customer, ever\n"
        '  deny "no trials via carrier" when storefront.channel == telecom'
        "  # carrier billing has no free trials\n}\n```")
    assert found.range is not None
    assert (found.range.start.line, found.range.start.character,
            found.range.end.line, found.range.end.character) == _range(
                STREAMING, "trial 14 days if trial_ok", "trial_ok")


async def test_completion(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    found = await client.text_document_completion_async(t.CompletionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "price web_eu EUR 6.99", into=6)))
    assert isinstance(found, t.CompletionList)
    labels = {item.label: item for item in found.items}
    assert labels["web_eu"].kind == t.CompletionItemKind.Reference
    assert labels["web_eu"].detail == "storefront"
    assert labels["premium_monthly"].detail == "plan"
    assert labels["storefront"].kind == t.CompletionItemKind.Keyword
    assert "period_end" in labels
    # after 'customer.': the schema's attributes
    found = await client.text_document_completion_async(t.CompletionParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        position=_at(STREAMING, "customer.segment", into=9)))
    assert isinstance(found, t.CompletionList)
    assert [item.label for item in found.items] == ["id", "country", "trials_used", "segment"]


async def test_formatting(client: LanguageClient) -> None:
    from revrules.formatter import format_module
    from revrules.parser import parse

    messy = "ruleset   tiny\nstorefront web {channel web currency EUR tax inclusive psp stripe}\n"
    uri = await _open(client, messy)
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        options=t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is not None and len(edits) == 1
    assert (edits[0].range.start.line, edits[0].range.start.character,
            edits[0].range.end.line, edits[0].range.end.character) == (0, 0, 2, 0)
    assert edits[0].new_text == format_module(parse(messy)) == (
        "ruleset tiny\n\nstorefront web { channel web  currency EUR  tax inclusive  psp stripe }\n")
    # a formatted file needs no edit; a file that does not parse gets none
    uri = await _open(client, edits[0].new_text)
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        options=t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is not None and list(edits) == []
    uri = await _open(client, "ruleset tiny\nplan p {\n")
    edits = await client.text_document_formatting_async(t.DocumentFormattingParams(
        text_document=t.TextDocumentIdentifier(uri=uri),
        options=t.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is not None and list(edits) == []


async def test_positions_count_utf16_code_units(client: LanguageClient) -> None:
    # a string with an astral character (two UTF-16 units) before the bad name
    text = ('ruleset u\nstorefront web { channel web currency EUR tax inclusive psp stripe }\n'
            'eligibility e { deny "\U0001F600 no" when storefront == webb }\n')
    uri = (ROOT / "tests" / "lsp-utf16.rr").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        text_document=t.TextDocumentItem(uri=uri, language_id="revrules", version=1,
                                         text=text)))
    found = await _diagnostics(client, uri)
    assert [d.code for d in found] == ["unknown_name"]
    # 'webb' starts at code point 47 of line 3 (0-based), which is UTF-16 unit 48
    assert (found[0].range.start.line, found[0].range.start.character,
            found[0].range.end.character) == (2, 48, 52)


async def test_unopened_documents_get_no_answer_and_close_clears(client: LanguageClient) -> None:
    ghost = (ROOT / "rulesets" / "streaming.rr").as_uri()  # on disk, but never opened
    position = _at(STREAMING, "price web_eu", into=8)
    assert await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=ghost), position=position)) is None
    assert await client.text_document_hover_async(t.HoverParams(
        text_document=t.TextDocumentIdentifier(uri=ghost), position=position)) is None
    # positions past the end of a line or of the file are no names, and no failure
    uri = await _open(client, "ruleset x\nplan p {\n")
    for line, character in ((0, 500), (99, 0)):
        assert await client.text_document_hover_async(t.HoverParams(
            text_document=t.TextDocumentIdentifier(uri=uri),
            position=t.Position(line=line, character=character))) is None
    client.text_document_did_close(t.DidCloseTextDocumentParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert await _diagnostics(client, uri) == []
    # the server still answers
    uri = await _open(client, STREAMING)
    found = await client.text_document_definition_async(t.DefinitionParams(
        text_document=t.TextDocumentIdentifier(uri=uri), position=position))
    assert _where(found) == [_range(STREAMING, "storefront web_eu", "web_eu")]


async def test_warnings_are_published_as_warnings(client: LanguageClient) -> None:
    # a rate after the unconditional 'rate 0%' line (and its comment)
    start = STREAMING.index("\n  rate 0%") + 1
    zero = STREAMING[start:STREAMING.index("\n", start) + 1]
    text = _replace(STREAMING, zero, zero + "  rate 5%\n")
    uri = (ROOT / "tests" / "lsp-warning.rr").as_uri()
    client.text_document_did_open(t.DidOpenTextDocumentParams(
        text_document=t.TextDocumentItem(uri=uri, language_id="revrules", version=1,
                                         text=text)))
    [found] = await _diagnostics(client, uri)
    line = text[:text.index("  rate 5%")].count("\n")
    where = ROOT / "tests" / "lsp-warning.rr"
    assert (found.code, found.severity, found.message) == (
        "RR101", t.DiagnosticSeverity.Warning,
        f"this rate never applies: the rate at {where}:{line}:3 always matches first")
    assert (found.range.start.line, found.range.start.character,
            found.range.end.line, found.range.end.character) == (line, 2, line, 9)


async def test_outline_lists_the_declarations(client: LanguageClient) -> None:
    uri = await _open(client, STREAMING)
    found = await client.text_document_document_symbol_async(t.DocumentSymbolParams(
        text_document=t.TextDocumentIdentifier(uri=uri)))
    assert found is not None
    symbols = [(s.name, s.detail) for s in found if isinstance(s, t.DocumentSymbol)]
    assert len(symbols) == len(found) == 24
    assert symbols[:4] == [("country", "customer attribute"),
                           ("trials_used", "customer attribute"),
                           ("segment", "customer attribute"), ("web_eu", "storefront")]
    assert symbols[-2:] == [("standard", "dunning policy"), ("stores", "dunning policy")]
    plan = next(s for s in found if isinstance(s, t.DocumentSymbol) and s.name == "basic_monthly")
    assert (plan.range.start.line, plan.range.end.line) == (21, 31)  # lines 22-32
    assert (plan.selection_range.start.line, plan.selection_range.start.character) == (21, 5)
