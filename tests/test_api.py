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
