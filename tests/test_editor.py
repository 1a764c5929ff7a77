"""The editor analysis behind the language server: positions, the index of names,
salvaged declarations, hover and completion; and no input makes any of it raise."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revrules import editor
from revrules.parser import parse

ROOT = Path(__file__).resolve().parent.parent
STREAMING = (ROOT / "rulesets" / "streaming.rr").read_text("utf-8")
TINY = ('ruleset tiny\n'
        'customer { tier: string = "basic" }\n'
        'storefront web { channel web currency EUR tax inclusive psp stripe }\n'
        'plan p { product x every 1 month price web EUR 5.00 }\n'
        'product x { entitlements e }\n'
        'tax vat { rate 19% when customer.tier == "gold" and storefront == web }\n'
        'dunning d { retry via stripe  no retry when payment.psp == stripe }\n')


# -- positions ---------------------------------------------------------------------------


def test_positions_round_trip_every_offset() -> None:
    text = "a\r\nb\U0001F600c\rd\ne\u2028f\x0cg\n"
    for encoding in ("utf-16", "utf-8", "utf-32"):
        p = editor.Positions(text, encoding)  # type: ignore[arg-type]
        for offset in range(len(text) + 1):
            if text[offset - 1:offset + 1] == "\r\n":
                continue  # between \r and \n: no LSP position
            assert p.from_lsp(*p.lsp(offset)) == offset


def test_lsp_lines_break_at_crlf_cr_and_lf_only() -> None:
    p = editor.Positions("a\r\nb\rc\nd\u2028e\x0cf")
    assert [p.lsp(i) for i in (0, 3, 5, 7)] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    assert p.lsp(11) == (3, 4)  # U+2028 and form feed are characters, not line breaks
    assert p.lsp(1) == (0, 1) and p.lsp(2) == (0, 1)  # \r\n ends the line


def test_units_per_encoding() -> None:
    text = 'x "\U0001F600é" y'
    offset = text.index("y")
    assert editor.Positions(text, "utf-16").lsp(offset) == (0, 8)
    assert editor.Positions(text, "utf-8").lsp(offset) == (0, 11)
    assert editor.Positions(text, "utf-32").lsp(offset) == (0, 7)
    assert editor.Positions(text, "utf-16").from_lsp(0, 8) == offset
    # past the end of a line: the end of that line
    assert editor.Positions("ab\ncd").from_lsp(0, 99) == 2
    assert editor.Positions("ab\ncd").from_lsp(9, 0) == 5


def test_parser_columns_after_a_byte_order_mark() -> None:
    text = "\ufeffruleset t\nstorefront web { channel webb currency EUR tax inclusive psp s }\n"
    analysis = editor.analyse(text, "t.rr")
    [d] = analysis.diagnostics
    assert d.code == "unknown_channel"
    p = editor.Positions(text)
    assert p.span_range(d.span) == ((1, 25), (1, 29))
    header = parse(text).decls[0]
    # the BOM is one UTF-16 unit before line 1's first column
    assert p.span_range(header.span) == ((0, 1), (0, 10))
    assert p.lark(p.offset(1, 3)) == (1, 3)


# -- the index ---------------------------------------------------------------------------


def _names(text: str, line: int, column: int) -> list[tuple[str, int, int]]:
    ix = editor.index(parse(text))
    occ = ix.at(line, column)
    assert occ is not None
    return [(o.kind, o.span.line, o.span.column) for o in ix.references(occ)]


def test_references_by_namespace() -> None:
    # storefront 'web': its declaration, a price, and a comparison in a tax rule
    assert _names(TINY, 3, 12) == [("storefront", 3, 12), ("storefront", 4, 40),
                                   ("storefront", 6, 67)]
    # the attribute, declared in the schema and read in the tax rule
    assert _names(TINY, 6, 35) == [("attribute", 2, 12), ("attribute", 6, 34)]
    # product x: used before it is declared
    assert _names(TINY, 4, 18) == [("product", 4, 18), ("product", 5, 9)]
    # a PSP: listed by the storefront, routed to, compared with
    assert _names(TINY, 7, 23) == [("psp", 3, 61), ("psp", 7, 23), ("psp", 7, 60)]


def test_definitions_and_hover() -> None:
    ix = editor.index(parse(TINY))
    occ = ix.at(4, 18)  # 'x' in 'product x'
    assert occ is not None and not occ.declaration
    [d] = ix.definitions(occ)
    assert (d.span.line, d.span.column, d.declaration) == (5, 9, True)
    assert ix.hover(occ) == "product `x`\n\n```revrules\nproduct x { entitlements e }\n```"
    psp = ix.at(7, 60)
    assert psp is not None
    assert [(o.span.line, o.span.column) for o in ix.definitions(psp)] == [(3, 61)]
    assert ix.hover(psp) == "payment service provider `stripe`, listed by `web`"
    assert ix.at(1, 3) is None  # 'ruleset' is a keyword
    # the end of a name still touches it
    assert ix.at(4, 19) == occ


def test_duplicate_declarations_are_both_definitions() -> None:
    text = TINY + "product x { entitlements f }\n"
    ix = editor.index(parse(text))
    occ = ix.at(4, 18)
    assert occ is not None
    assert [o.span.line for o in ix.definitions(occ)] == [5, 8]


def test_salvage_keeps_the_declarations_that_parse_with_their_spans() -> None:
    assert "price web_us USD 7.99" in STREAMING
    broken = STREAMING.replace("price web_us USD 7.99", "price web_us USD", 1)
    analysis = editor.analyse(broken, "s.rr")
    assert analysis.module is None
    assert [d.code for d in analysis.diagnostics] == ["syntax"]
    whole = parse(STREAMING, "s.rr")
    kept = [d for d in whole.decls if getattr(d, "name", None) != "basic_monthly"]
    assert analysis.partial.decls == tuple(kept)
    # every span inside, down to names in expressions, is where the whole parse has it
    assert _spans(analysis.partial.decls) == _spans(tuple(kept))
    assert len(_spans(tuple(kept))) > 200


def _spans(value: object) -> list[object]:
    import attrs

    found: list[object] = []
    todo = [value]
    while todo:
        v = todo.pop()
        if isinstance(v, tuple):
            todo.extend(reversed(v))
        elif attrs.has(type(v)):
            for f in attrs.fields(type(v)):
                inner = getattr(v, f.name)
                if type(inner).__name__ == "Span":
                    found.append(inner)
                else:
                    todo.append(inner)
    return found


def test_completion_names_keywords_and_fields() -> None:
    module = parse(TINY)
    items = editor.completions([module], "  price ")
    labels = [c.label for c in items]
    assert labels[:5] == ["web", "p", "x", "vat", "d"]
    assert labels[5:] == list(editor.grammar_keywords())
    assert [c.label for c in editor.completions([module], "when customer.")] == ["id", "tier"]
    assert [c.label for c in editor.completions([module], "when storefront.ch")] == [
        "channel", "currency", "name", "region"]
    assert editor.completions([module], "when 1.") == []


# -- never raises --------------------------------------------------------------------------


_PIECES = st.sampled_from([
    "ruleset t\n", "storefront web { channel web currency EUR tax inclusive psp s }\n",
    "plan p {\n", "}\n", "price web EUR 1.00\n", "customer { a: int }\n", "customer.a",
    " when ", "\r\n", "\r", "\ufeff", "\U0001F600", '"', "#", "{", "(", "2026-02-30",
    "EUR ", "1.5 days", " and ", "tax t { rate 5% when customer.a > 1 }\n", "\n", " "])


@settings(max_examples=60, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join), st.integers(0, 40), st.integers(0, 40))
def test_no_text_and_no_position_makes_the_analysis_raise(text: str, line: int,
                                                          character: int) -> None:
    analysis = editor.analyse(text, "f.rr")
    p = editor.Positions(text)
    for d in analysis.diagnostics:
        (sl, sc), (el, ec) = p.span_range(d.span)
        assert (sl, sc) <= (el, ec)
    ix = editor.index(analysis.best)
    occ = ix.at(*p.lark(p.from_lsp(line, character)))
    if occ is not None:
        ix.definitions(occ)
        ix.references(occ)
        ix.hover(occ)
    editor.completions([analysis.best], text[-20:])


@pytest.mark.parametrize("text", ["", "\ufeff", "ruleset", "plan p { price", "}" * 50,
                                  "not " * 200, "plan p {\n" * 30])
def test_odd_documents(text: str) -> None:
    analysis = editor.analyse(text)
    assert analysis.module is None or analysis.diagnostics is not None
    editor.index(analysis.best)


# -- the command -------------------------------------------------------------------------


def test_lsp_command_is_listed(capsys: pytest.CaptureFixture[str]) -> None:
    from revrules.cli import main

    assert main(["lsp", "--help"]) == 0
    assert "language server" in capsys.readouterr().out


def test_lsp_command_without_pygls_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sys

    from revrules.cli import main

    monkeypatch.delitem(sys.modules, "revrules.lsp", raising=False)
    monkeypatch.setitem(sys.modules, "pygls", None)
    monkeypatch.setitem(sys.modules, "pygls.lsp", None)
    monkeypatch.setitem(sys.modules, "pygls.lsp.server", None)
    assert main(["lsp"]) == 2
    assert capsys.readouterr().err == (
        "revrules: the language server needs pygls; install it with "
        "pip install 'revrules[lsp]'\n")


def test_lsp_server_survives_a_malformed_message_without_a_traceback() -> None:
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("pygls", reason="the language server needs pygls (the 'lsp' extra)")

    def message(body: dict[str, object]) -> bytes:
        data = json.dumps(body).encode()
        return b"Content-Length: %d\r\n\r\n" % len(data) + data

    stream = (message({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"processId": None, "rootUri": None, "capabilities": {}}})
              + b"Content-Length: 5\r\n\r\n{bad}"
              + message({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
              + message({"jsonrpc": "2.0", "method": "exit"}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "revrules", "lsp", "--stdio"], input=stream,
                          capture_output=True, timeout=120, env=env)
    assert done.returncode == 0
    assert b'"id": 2' in done.stdout  # the shutdown after the bad message was answered
    errors = done.stderr.decode().splitlines()
    assert errors and all(line.startswith("revrules lsp: ERROR: ") for line in errors)
    assert "Traceback" not in done.stderr.decode()


def test_every_kind_of_declaration_is_indexed() -> None:
    ix = editor.index(parse(STREAMING))
    kinds = {(s.kind, s.name) for s in ix.symbols}
    assert {("storefront", "b2b"), ("product", "sports"), ("bundle", "premium_sports"),
            ("plan", "business_annual"), ("contract", "acme"), ("eligibility", "trial_ok"),
            ("promotion", "loyalty"), ("tax", "vat"), ("dunning", "stores"),
            ("attribute", "trials_used")} <= kinds
    lines = STREAMING.split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith("dunning stores"))
    occ = ix.at(row + 1, 10)
    assert occ is not None and occ.declaration
    assert ix.hover(occ) == ("dunning policy `stores`\n\n```revrules\n"
                             "dunning stores for storefront.channel == app_store {"
                             "  # the app store retries itself; we only wait\n"
                             "  grace 16 days keep entitlements  # as long as the store's own "
                             "billing grace\n  then cancel\n}\n```")
    assert [(o.span.line, o.span.column) for o in ix.definitions(occ)] == [(row + 1, 9)]
