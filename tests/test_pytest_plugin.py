"""The pytest plugin: .rrtest files as pytest items, and the fixtures (docs/testing.md).

The plugin's entry point exists only in an installed revrules, so these tests load it
with ``-p revrules.pytest_plugin`` in a pytest run of their own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "_seeded"


def _plugin_installed() -> bool:
    """Whether the installed package registers the plugin (its ``pytest11`` entry point);
    without an install, the tests name it with ``-p``."""
    from importlib.metadata import entry_points
    return any(e.value == "revrules.pytest_plugin" for e in entry_points(group="pytest11"))


def pytest_run(where: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    plugin = [] if _plugin_installed() else ["-p", "revrules.pytest_plugin"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *plugin, "-p",
         "no:cacheprovider", "-q", "-rN", "--rootdir", str(where), "-c", os.devnull, *args],
        cwd=where, capture_output=True, text=True, env=env, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_items_and_readable_failures(tmp_path: Path) -> None:
    for name in ("tax_stack.rr", "tax_stack.rrtest"):
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / "more.rrtest").write_text('''ruleset "tax_stack.rr"
scenario "wrong figures" {
  2027-01-01 checkout s1 plan monthly at shop customer c1 { country "DE" }
  expect tax EUR 1.91 total EUR 11.90
}
''', encoding="utf-8")
    code, out = pytest_run(tmp_path, "-vv")
    assert code == 1, out
    assert "more.rrtest::scenario wrong figures FAILED" in out
    assert "tax_stack.rrtest::scenario German VAT PASSED" in out
    assert "tax_stack.rrtest::invariant tax never above the net FAILED" in out
    assert "tax_stack.rrtest::invariant tax within the total PASSED" in out
    assert "\n  tax: expected EUR 1.91, actual EUR 1.90\n" in out
    assert ("shrunk to this scenario (paste it into the file):\n"
            "# invariant 'tax never above the net' fails after the last event") in out
    assert "2 failed, 2 passed" in out


def test_a_file_that_does_not_parse_is_a_collection_error(tmp_path: Path) -> None:
    (tmp_path / "bad.rrtest").write_text('ruleset "x.rr"\nscenario {\n', encoding="utf-8")
    code, out = pytest_run(tmp_path)
    assert code == 2, out
    assert "bad.rrtest:2:10: error[syntax]: unexpected '{'" in out


def test_fixtures(tmp_path: Path) -> None:
    shutil.copy(ROOT / "rulesets" / "streaming.rr", tmp_path / "streaming.rr")
    (tmp_path / "test_mine.py").write_text('''
import pytest

pytestmark = pytest.mark.revrules_ruleset("streaming.rr")


def test_ruleset_and_engine(ruleset, engine):
    assert ruleset.name == "streaming"
    assert engine.rules is ruleset


def test_replay_event_lines(replay):
    state, outcomes = replay("""
        2026-11-15 checkout s1 plan premium_monthly at web_eu customer c1 { country "DE" trials_used 1 }
        2026-11-15 pay s1
    """)
    assert [o.ok for o in outcomes] == [True, True]
    assert str(outcomes[0].decisions[0].tax) == "2.07"
    assert state.subscription("s1").status == "active"


def test_replay_wire_events(replay):
    state, outcomes = replay([{"id": "e1", "type": "tick", "at": "2027-01-01"}])
    assert outcomes[0].ok
''', encoding="utf-8")
    code, out = pytest_run(tmp_path)
    assert code == 0, out
    assert "3 passed" in out


def test_the_repository_collects_the_bundled_files_once() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "--co", "-q", "-p",
                           "no:cacheprovider", "rulesets"], cwd=ROOT, capture_output=True,
                          text=True, env=env, check=False)
    items = [line for line in proc.stdout.splitlines() if "::" in line]
    assert "rulesets/streaming.rrtest::scenario S1 web, inclusive VAT, trial blocked" in items
    assert len(items) == len(set(items)) > 20
    # the other way round: the plugin named on the command line when it is not installed,
    # the fallback in the top-level conftest.py when the installed one is turned off
    other = ["-p", "no:revrules"] if _plugin_installed() else ["-p", "revrules.pytest_plugin"]
    with_plugin = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", *other,
         "rulesets"], cwd=ROOT, capture_output=True, text=True, env=env, check=False)
    assert [line for line in with_plugin.stdout.splitlines() if "::" in line] == items
