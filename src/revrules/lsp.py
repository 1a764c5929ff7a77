"""``revrules lsp``: a language server for ``.rr`` files over stdio (pygls).

It publishes the checker's diagnostics whenever a document is opened, changed or
saved; answers go-to-definition, find-references and hover for declared names;
lists the declarations (the outline); completes names and keywords; and formats a
document as ``revrules fmt`` does. The
answers come from :mod:`revrules.editor`; this module only speaks the protocol.

A document that does not parse still gets its syntax errors, and navigation in the
declarations that parse on their own; formatting it gives no edits. A failure inside a
handler is logged to the client (``window/logMessage``) and answered with no result:
the server never stops because of a document.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import unquote

import attrs
from lsprotocol import types as t
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from . import editor
from . import nodes as n
from ._version import __version__
from .diagnostics import Diagnostic, RulesetError

__all__ = ["RevrulesServer", "create_server", "serve"]

log = logging.getLogger(__name__)
R = TypeVar("R")

_SEVERITY = {"error": t.DiagnosticSeverity.Error, "warning": t.DiagnosticSeverity.Warning}
_SYMBOL_KIND = {"storefront": t.SymbolKind.Module, "product": t.SymbolKind.Class,
                "bundle": t.SymbolKind.Class, "plan": t.SymbolKind.Class,
                "contract": t.SymbolKind.Object, "eligibility": t.SymbolKind.Function,
                "promotion": t.SymbolKind.Event, "tax": t.SymbolKind.Function,
                "dunning": t.SymbolKind.Function, "attribute": t.SymbolKind.Field,
                "psp": t.SymbolKind.Constant}
_COMPLETION_KIND = {"keyword": t.CompletionItemKind.Keyword,
                    "name": t.CompletionItemKind.Reference,
                    "field": t.CompletionItemKind.Field}


@attrs.define
class _Document:
    text: str
    positions: editor.Positions
    analysis: editor.Analysis
    index: editor.Index


class RevrulesServer(LanguageServer):
    """The server, with the analysis of each open document."""

    def __init__(self) -> None:
        super().__init__("revrules", __version__,
                         text_document_sync_kind=t.TextDocumentSyncKind.Full)
        self.documents: dict[str, _Document] = {}
        self.last_good: dict[str, n.Module] = {}  # uri -> the last module that parsed

    # -- documents ---------------------------------------------------------------------
    def encoding(self) -> editor.Encoding:
        chosen = str(self.workspace.position_encoding or "utf-16")
        return chosen if chosen in ("utf-8", "utf-32") else "utf-16"  # type: ignore[return-value]

    def text(self, uri: str) -> str | None:
        """The text of an open document; None for a document the client has not opened
        (never read from disk)."""
        doc = self.workspace.text_documents.get(unquote(uri))
        return None if doc is None else doc.source

    def refresh(self, uri: str, version: int | None = None) -> None:
        """Analyse the document's current text and publish its diagnostics."""
        text = self.text(uri)
        if text is None:
            return
        analysis = editor.analyse(text, _file(uri))
        positions = editor.Positions(text, self.encoding())
        self.documents[uri] = _Document(text, positions, analysis, editor.index(analysis.best))
        if analysis.module is not None:
            self.last_good[uri] = analysis.module
        diagnostics = [_diagnostic(d, positions) for d in analysis.diagnostics]
        self.text_document_publish_diagnostics(
            t.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version))

    def forget(self, uri: str) -> None:
        self.documents.pop(uri, None)
        self.last_good.pop(uri, None)
        self.text_document_publish_diagnostics(t.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def document(self, uri: str) -> _Document | None:
        """The analysis of an open document's current text."""
        text = self.text(uri)
        if text is None:
            return None
        doc = self.documents.get(uri)
        if doc is None or doc.text != text:
            self.refresh(uri)
            doc = self.documents.get(uri)
        return doc

    def occurrence(self, uri: str, position: t.Position
                   ) -> tuple[_Document, editor.Occurrence] | None:
        """The name at a position of an open document, if there is one."""
        doc = self.document(uri)
        if doc is None:
            return None
        offset = doc.positions.from_lsp(position.line, position.character)
        occ = doc.index.at(*doc.positions.lark(offset))
        return None if occ is None else (doc, occ)


def _file(uri: str) -> str:
    return to_fs_path(uri) or uri


def _range(positions: editor.Positions, span: n.Span) -> t.Range:
    (sl, sc), (el, ec) = positions.span_range(span)
    return t.Range(start=t.Position(line=sl, character=sc), end=t.Position(line=el, character=ec))


def _diagnostic(d: Diagnostic, positions: editor.Positions) -> t.Diagnostic:
    message = d.message if not d.hint else f"{d.message}\nhelp: {d.hint}"
    return t.Diagnostic(range=_range(positions, d.span), message=message,
                        severity=_SEVERITY.get(d.severity, t.DiagnosticSeverity.Error),
                        code=d.code, source="revrules")


def _guarded(server: RevrulesServer, default: R, handler: Callable[[], R]) -> R:
    """Run a handler; an unexpected failure is logged to the client, never raised."""
    try:
        return handler()
    except Exception as exc:  # the server outlives any document
        log.exception("revrules lsp: handler failed")
        try:
            server.window_log_message(t.LogMessageParams(
                type=t.MessageType.Error,
                message=f"revrules: internal error: {type(exc).__name__}: {exc}"))
        except Exception:  # pragma: no cover - the client went away
            pass
        return default


def create_server() -> RevrulesServer:
    """A server with every feature registered (not started)."""
    server = RevrulesServer()

    @server.feature(t.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: RevrulesServer, params: t.DidOpenTextDocumentParams) -> None:
        doc = params.text_document
        _guarded(ls, None, lambda: ls.refresh(doc.uri, doc.version))

    @server.feature(t.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: RevrulesServer, params: t.DidChangeTextDocumentParams) -> None:
        doc = params.text_document
        _guarded(ls, None, lambda: ls.refresh(doc.uri, doc.version))

    @server.feature(t.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: RevrulesServer, params: t.DidSaveTextDocumentParams) -> None:
        _guarded(ls, None, lambda: ls.refresh(params.text_document.uri))

    @server.feature(t.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: RevrulesServer, params: t.DidCloseTextDocumentParams) -> None:
        _guarded(ls, None, lambda: ls.forget(params.text_document.uri))

    @server.feature(t.TEXT_DOCUMENT_DEFINITION)
    def definition(ls: RevrulesServer, params: t.DefinitionParams) -> list[t.Location] | None:
        def answer() -> list[t.Location] | None:
            uri = params.text_document.uri
            at = ls.occurrence(uri, params.position)
            if at is None:
                return None
            doc, occ = at
            found = doc.index.definitions(occ)
            return [t.Location(uri=uri, range=_range(doc.positions, o.span)) for o in found] \
                or None
        return _guarded(ls, None, answer)

    @server.feature(t.TEXT_DOCUMENT_REFERENCES)
    def references(ls: RevrulesServer, params: t.ReferenceParams) -> list[t.Location] | None:
        def answer() -> list[t.Location] | None:
            uri = params.text_document.uri
            at = ls.occurrence(uri, params.position)
            if at is None:
                return None
            doc, occ = at
            found = doc.index.references(occ, params.context.include_declaration)
            return [t.Location(uri=uri, range=_range(doc.positions, o.span)) for o in found]
        return _guarded(ls, None, answer)

    @server.feature(t.TEXT_DOCUMENT_HOVER)
    def hover(ls: RevrulesServer, params: t.HoverParams) -> t.Hover | None:
        def answer() -> t.Hover | None:
            at = ls.occurrence(params.text_document.uri, params.position)
            if at is None:
                return None
            doc, occ = at
            return t.Hover(contents=t.MarkupContent(kind=t.MarkupKind.Markdown,
                                                    value=doc.index.hover(occ)),
                           range=_range(doc.positions, occ.span))
        return _guarded(ls, None, answer)

    @server.feature(t.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    def outline(ls: RevrulesServer, params: t.DocumentSymbolParams
                ) -> list[t.DocumentSymbol] | None:
        def answer() -> list[t.DocumentSymbol] | None:
            doc = ls.document(params.text_document.uri)
            if doc is None:
                return None
            return [t.DocumentSymbol(name=s.name, detail=editor.KIND_WORDS[s.kind],
                                     kind=_SYMBOL_KIND[s.kind],
                                     range=_range(doc.positions, s.span),
                                     selection_range=_range(doc.positions, s.name_span))
                    for s in doc.index.symbols]
        return _guarded(ls, None, answer)

    @server.feature(t.TEXT_DOCUMENT_COMPLETION, t.CompletionOptions(trigger_characters=["."]))
    def completion(ls: RevrulesServer, params: t.CompletionParams) -> t.CompletionList | None:
        def answer() -> t.CompletionList | None:
            uri = params.text_document.uri
            doc = ls.document(uri)
            if doc is None:
                return None
            offset = doc.positions.from_lsp(params.position.line, params.position.character)
            start = doc.text.rfind("\n", 0, offset) + 1
            modules = [doc.analysis.best]
            if doc.analysis.module is None and uri in ls.last_good:
                modules.append(ls.last_good[uri])
            items = [t.CompletionItem(label=c.label, kind=_COMPLETION_KIND[c.kind],
                                      detail=c.detail)
                     for c in editor.completions(modules, doc.text[start:offset])]
            return t.CompletionList(is_incomplete=False, items=items)
        return _guarded(ls, None, answer)

    @server.feature(t.TEXT_DOCUMENT_FORMATTING)
    def formatting(ls: RevrulesServer, params: t.DocumentFormattingParams
                   ) -> list[t.TextEdit] | None:
        def answer() -> list[t.TextEdit] | None:
            uri = params.text_document.uri
            doc = ls.document(uri)
            if doc is None:
                return None
            formatted = format_text(doc.text, _file(uri))
            if formatted is None or formatted == doc.text:
                return []
            end_line, end_char = doc.positions.end()
            whole = t.Range(start=t.Position(line=0, character=0),
                            end=t.Position(line=end_line, character=end_char))
            return [t.TextEdit(range=whole, new_text=formatted)]
        return _guarded(ls, None, answer)

    return server


def format_text(text: str, file: str) -> str | None:
    """``text`` as ``revrules fmt`` prints it, or None when it does not parse."""
    from .formatter import format_module
    from .parser import parse

    try:
        return format_module(parse(text, file))
    except RulesetError:
        return None


class _OneLine(logging.Formatter):
    """Log records as one line each, without tracebacks."""

    def formatException(self, ei: object) -> str:  # noqa: N802 - logging's name
        return ""

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return ""

    def format(self, record: logging.LogRecord) -> str:
        record.exc_text = ""
        return super().format(record).rstrip("\n").replace("\n", " ")


def serve(traceback: bool = False) -> None:
    """Run the server on stdin and stdout until the client says exit.

    Problems (a malformed message, a failing handler) are logged to stderr one line
    each; with ``traceback`` with the Python traceback too.
    """
    handler = logging.StreamHandler()
    fmt = "revrules lsp: %(levelname)s: %(message)s"
    handler.setFormatter(logging.Formatter(fmt) if traceback else _OneLine(fmt))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    try:
        create_server().start_io()
    finally:
        root.removeHandler(handler)
