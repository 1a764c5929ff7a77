"""The public API is what the docs say, and the README's examples run."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

import revrules
from revrules import grammars

ROOT = Path(__file__).parent.parent

PUBLIC = {
    "CheckResult", "Decision", "Diagnostic", "Discount", "Engine", "Error", "Event",
    "EventError", "Ledger", "Outcome", "RevenueEvent", "Ruleset", "RulesetError", "State",
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


def test_readme_python_examples_run(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README shows Python code"
    monkeypatch.chdir(ROOT)
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
        namespaces.append(namespace)
    decision = namespaces[0]["decision"]
    assert (decision.total, decision.tax) == (Decimal("12.99"), Decimal("2.07"))  # type: ignore[attr-defined]


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
