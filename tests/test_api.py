"""The public API is what the docs say, and the README's examples run."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from decimal import Decimal
from pathlib import Path

import pytest

import revrules
from revrules import grammars

ROOT = Path(__file__).parent.parent

PUBLIC = {
    "CheckResult", "Decision", "Diagnostic", "Discount", "Engine", "Error", "Event",
    "EventError", "Ledger", "Outcome", "Quote", "QuoteError", "RevenueEvent", "Ruleset",
    "RulesetError", "State",
    "Subscription", "Trace", "__version__", "check", "load", "load_text", "parse",
    "parse_event",
}


def test_exports_are_the_documented_ones() -> None:
    assert set(revrules.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(revrules, name) is not None


def test_package_ships_its_grammar_and_py_typed() -> None:
    # the grammar is in the top-level grammar/ folder, found from a checkout; that an
    # installed wheel carries it inside the package is tested in test_wheel.py
    package = Path(revrules.__file__).parent
    assert (package / "py.typed").exists()
    assert (ROOT / "grammar" / "revrules.lark").exists()
    assert Path(str(grammars.grammar_path("revrules"))) == ROOT / "grammar" / "revrules.lark"
    assert "revrules" in grammars.grammar_names()
    assert "start:" in grammars.grammar_text("revrules")


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def samples(path: Path) -> list[tuple[str, int, str]]:
    """The fenced code blocks of a Markdown file: (info string, first line, text)."""
    text = path.read_text("utf-8")
    return [(m[1].strip(), text.count("\n", 0, m.start()) + 2, m[2])
            for m in FENCE.finditer(text)]


def run_python(code: str, where: str, namespace: dict[str, object]) -> None:
    """Run a sample statement by statement; ``expr  # value`` checks the value.

    A comment holding ``...``, or one that is not a Python expression, is prose.
    """
    tree = ast.parse(code, where)
    lines = code.split("\n")
    for stmt in tree.body:
        exec(compile(ast.Module([stmt], []), where, "exec"), namespace)  # noqa: S102
        if not isinstance(stmt, ast.Expr) or stmt.end_lineno is None:
            continue
        line = lines[stmt.end_lineno - 1]
        comments = [t.string for t in tokenize.generate_tokens(io.StringIO(line).readline)
                    if t.type == tokenize.COMMENT]
        claim = comments[0][1:].strip() if comments else ""
        if not claim or "..." in claim:
            continue
        try:
            expected = eval(claim, {"Decimal": Decimal})  # noqa: S307
        except (SyntaxError, NameError):
            continue
        actual = eval(compile(ast.Expression(stmt.value), where, "eval"), namespace)  # noqa: S307
        assert actual == expected, f"{where}:{stmt.lineno}: {actual!r} != {claim}"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_samples_in_the_docs_run(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict[str, object] = {}  # the blocks of one file build on each other
    for info, line, code in samples(path):
        if info.split()[:1] == ["python"]:
            run_python(code, f"{path.name}:{line}", namespace)
    if path.name == "README.md":
        decision = namespace["decision"]
        assert (decision.total, decision.tax) == (Decimal("12.99"), Decimal("2.07"))  # type: ignore[attr-defined]


def test_readme_and_ledger_docs_show_python() -> None:
    for name in ("README.md", "ledger.md"):
        path = next(p for p in DOCS if p.name == name)
        assert any(info == "python" for info, _, _ in samples(path)), name


def test_a_false_claim_in_a_python_sample_fails() -> None:
    run_python("x = 2\nx + 1   # 3\nx   # ... anything\nx  # not python\n", "t", {})
    with pytest.raises(AssertionError, match="t:2: 3 != 4"):
        run_python("x = 2\nx + 1   # 4\n", "t", {})


_STREAMING = ROOT / "rulesets" / "streaming.rr"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_ruleset_samples_in_the_docs_are_what_their_fence_says(path: Path) -> None:
    """``rr`` loads, ``rr fragment`` parses, ``rr bad`` fails in streaming.rr's place,
    and a plain or ``text`` block is not a ruleset (docs/architecture.md)."""
    for info, line, code in samples(path):
        where = f"{path.name}:{line}"
        kind = info.split()
        if kind == ["rr"]:
            revrules.load_text(code, where)
        elif kind == ["rr", "fragment"]:
            revrules.parse(code, where)
        elif kind == ["rr", "bad"]:
            with pytest.raises(revrules.RulesetError):
                revrules.load_text(_in_streaming(code), where)
        elif kind[:1] == ["rr"]:
            pytest.fail(f"{where}: unknown sample kind {info!r}")
        elif kind in ([], ["text"]):
            try:
                module = revrules.parse(code, where)
            except revrules.RulesetError:
                continue
            assert not module.decls, f"{where}: a ruleset sample needs a ```rr fence"


def _in_streaming(code: str) -> str:
    """``rulesets/streaming.rr`` with the sample's declarations in place of theirs."""
    sample = revrules.parse(code)
    base = revrules.parse(_STREAMING.read_text("utf-8"))

    def key(decl: object) -> tuple[str, object]:
        return type(decl).__name__, getattr(decl, "name", None)

    replaced = {key(d) for d in sample.decls}
    source = base.source
    lines = source.split("\n")
    keep = [d for d in base.decls if key(d) not in replaced]
    kept = ["\n".join(lines[d.span.line - 1:d.span.end_line]) for d in keep]
    return "\n\n".join(kept) + "\n\n" + code


def test_a_bad_sample_must_fail() -> None:
    assert revrules.load_text(_in_streaming("route { stripe when storefront.channel == web\n"
                                            "  carrier otherwise }"))
    with pytest.raises(revrules.RulesetError):
        revrules.load_text(_in_streaming("route { paypal otherwise }"))


def test_every_grammar_keyword_is_in_the_language_reference() -> None:
    grammar = (ROOT / "grammar" / "revrules.lark").read_text("utf-8")
    keywords = set(re.findall(r'"([a-z_]+)"', re.sub(r"//[^\n]*", "", grammar)))
    assert {"ruleset", "storefront", "promotion", "stackable", "period_end", "weeks"} <= keywords
    reference = (ROOT / "docs" / "language.md").read_text("utf-8")
    shown = re.findall(r"`([^`\n]+)`", reference)  # inline code
    shown += [code for info, _, code in samples(ROOT / "docs" / "language.md")
              if info.split()[:1] == ["rr"]]
    words = {w for text in shown for w in re.findall(r"[a-z_]+", text)}
    assert sorted(keywords - words) == []


def test_readme_opens_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    assert first_block.group(1).splitlines() == [
        "pip install -e . && revrules eval rulesets/streaming.rr examples/events.jsonl",
        "pip install -e '.[test]' && pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert "pip install -e '.[test]' && pytest" in ci


def test_every_error_code_is_documented() -> None:
    package = ROOT / "src" / "revrules"
    files = [package / name for name in ("engine.py", "transaction.py", "pricing.py",
                                         "events.py", "wire.py", "runtime.py")]
    files += sorted((package / "transitions").glob("*.py"))
    sources = "".join(path.read_text("utf-8") for path in files)
    codes = set(re.findall(r'(?:\b_?fail|EventError|EvaluationError)\("([a-z_]+)"', sources))
    assert {"unknown_storefront", "not_due", "currency_mismatch"} <= codes
    docs = (ROOT / "docs" / "wire.md").read_text("utf-8")
    assert sorted(c for c in codes if f"`{c}`" not in docs) == []


def _imports(path: Path) -> set[str]:
    """The revrules modules (and names in them) ``path`` imports at run time: relative
    imports resolved, ``if TYPE_CHECKING:`` blocks left out."""
    import ast

    package = path.relative_to(ROOT / "src").with_suffix("").parts[:-1]
    found: set[str] = set()

    class Visit(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if not (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"):
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)

    Visit().visit(ast.parse(path.read_text("utf-8")))
    return {name for name in found if name.startswith("revrules")}


def test_the_engine_modules_import_downwards() -> None:
    """Pricing and emission know nothing of transactions or transitions; no transition
    imports the engine; each family imports only the families below it."""
    src = ROOT / "src" / "revrules"
    families = {p.stem: _imports(p) for p in (src / "transitions").glob("*.py")}
    upper = {"revrules.engine", "revrules.transaction", "revrules.transitions"}
    for name in ("pricing", "emission"):
        imported = _imports(src / f"{name}.py")
        assert not {i for i in imported if any(i.startswith(u) for u in upper)}, name
    assert not any(i.startswith("revrules.transitions") or i.startswith("revrules.engine")
                   for i in _imports(src / "transaction.py"))
    below = {"pauses": set(), "refunds": set(), "payments": {"pauses"},
             "checkout": {"payments"}, "plan_changes": {"payments"},
             "renewals": {"pauses", "payments", "plan_changes"},
             "store": {"pauses", "payments", "refunds", "renewals"}, "__init__": set()}
    assert set(families) == set(below)
    for family, imported in families.items():
        assert "revrules.engine" not in imported, family
        uses = {i.removeprefix("revrules.transitions.") for i in imported
                if i.startswith("revrules.transitions.")}
        assert uses == below[family], family
