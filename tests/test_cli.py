"""The ``revrules`` command: exit statuses, messages, and never a traceback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from revrules import wire
from revrules._version import __version__
from revrules.cli import main

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
EXAMPLE_EVENTS = ROOT / "examples" / "events.jsonl"

TINY = """ruleset tiny version "1"
customer { country: string }
storefront web { channel web currency EUR tax inclusive psp stripe }
"""
WITH_WARNING = TINY + """tax vat {
  rate 0%
  rate 19% when customer.country == "DE"
}
"""
BROKEN = TINY + """storefront shop { channel webb currency EUR tax inclusive psp stripe }
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


# -- check ---------------------------------------------------------------------------


def test_check_clean_file(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    path = write("tiny.rr", TINY)
    status, out, err = run(capsys, "check", path)
    assert status == 0
    assert out == f"{path}: ok\n"
    assert err == ""


def test_check_the_shipped_ruleset(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "check", str(STREAMING))
    assert status == 0
    assert out.endswith(": ok\n")


def test_check_relative_path_starting_with_ruleset(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # a path like rulesets/streaming.rr is a path, not ruleset source text
    monkeypatch.chdir(ROOT)
    status, out, _ = run(capsys, "check", "rulesets/streaming.rr")
    assert status == 0
    assert out == "rulesets/streaming.rr: ok\n"


def test_check_warnings_do_not_fail(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    path = write("warn.rr", WITH_WARNING)
    status, out, err = run(capsys, "check", path)
    assert status == 0
    assert out == f"{path}: ok\n"
    assert "warning[RR101]:" in err
    assert f"{path}:6:3" in err
    assert "^" in err


def test_check_errors_fail_with_rendered_diagnostics(capsys: pytest.CaptureFixture[str],
                                                     write) -> None:  # type: ignore[no-untyped-def]
    good = write("tiny.rr", TINY)
    bad = write("broken.rr", BROKEN)
    status, out, err = run(capsys, "check", good, bad)
    assert status == 1
    assert out == f"{good}: ok\n"  # the clean file is still reported
    assert f"{bad}:4:27: error[unknown_channel]: unknown channel 'webb' (did you mean 'web'?)" in err
    assert "^^^^" in err
    assert "1 error found" in err


def test_check_syntax_error(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    bad = write("syntax.rr", "ruleset x\nplan p {{\n")
    status, out, err = run(capsys, "check", bad)
    assert status == 1
    assert out == ""
    assert f"{bad}:2:" in err


def test_check_missing_file_is_an_io_problem(capsys: pytest.CaptureFixture[str],
                                             tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.rr")
    status, out, err = run(capsys, "check", missing)
    assert status == 2
    assert out == ""
    assert err.strip() == f"revrules: cannot read {missing}: no such file"


def test_check_directory_and_binary_file(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    binary = tmp_path / "binary.rr"
    binary.write_bytes(b"\xff\xfe\x00ruleset")
    status, _, err = run(capsys, "check", str(tmp_path), str(binary))
    assert status == 2
    assert len(err.strip().splitlines()) == 2
    assert "directory" in err and "UTF-8" in err


# -- eval ----------------------------------------------------------------------------


def test_eval_bad_rules_exits_2(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    bad = write("broken.rr", BROKEN)
    events = write("events.jsonl", '{"id": "e1", "type": "tick", "at": "2027-01-01"}\n')
    status, out, err = run(capsys, "eval", bad, events)
    assert status == 2
    assert out == ""
    assert "unknown channel 'webb'" in err


def test_eval_missing_events_file_exits_2(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    status, out, err = run(capsys, "eval", str(STREAMING), str(tmp_path / "none.jsonl"))
    assert status == 2
    assert out == ""
    assert "cannot read events from" in err
    assert len(err.strip().splitlines()) == 1


def test_eval_missing_rules_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _, err = run(capsys, "eval", str(tmp_path / "none.rr"), str(EXAMPLE_EVENTS))
    assert status == 2
    assert "cannot read" in err


def test_eval_bad_state_in_exits_2(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    state = write("state.json", '{"not": "a state"}')
    events = write("events.jsonl", "")
    status, out, err = run(capsys, "eval", str(STREAMING), events, "--state-in", state)
    assert status == 2
    assert out == ""
    assert err.startswith(f"revrules: {state}: ")
    assert len(err.strip().splitlines()) == 1


def test_eval_bad_lines_give_error_outcomes(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    events = write("events.jsonl", 'not json\n\n[1]\n'
                   '{"id": "e3", "type": "teleport", "at": "2027-01-01"}\n'
                   '{"id": "e4", "type": "tick", "at": "2027-01-01T10:00:00"}\n')
    status, out, err = run(capsys, "eval", str(STREAMING), events)
    assert status == 1
    assert err == ""
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["ok"] for line in lines] == [False] * 4
    assert [line["error"]["code"] for line in lines] == ["bad_json", "bad_json", "unknown_type",
                                                         "naive_datetime"]
    assert lines[0]["error"]["message"].startswith("line 1: ")
    assert lines[1]["error"]["message"].startswith("line 3: ")
    assert lines[2]["event"] == "e3"


def test_eval_reads_stdin(capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"id": "e1", "type": "nope", "at": "x"}\n'))
    status, out, _ = run(capsys, "eval", str(STREAMING), "-")
    assert status == 1
    assert json.loads(out)["error"]["code"] == "unknown_type"


def test_eval_unknown_storefront(capsys: pytest.CaptureFixture[str], write) -> None:  # type: ignore[no-untyped-def]
    events = write("events.jsonl", json.dumps({
        "id": "e9", "type": "checkout", "at": "2026-12-01", "subscription": "s9",
        "storefront": "web_xx", "plan": "premium_monthly",
        "customer": {"id": "c9", "country": "DE", "trials_used": 1}}) + "\n")
    status, out, _ = run(capsys, "eval", str(STREAMING), events)
    assert status == 1
    line = json.loads(out)
    assert line == {"event": "e9", "ok": False, "error": line["error"]}
    assert line["error"]["code"] == "unknown_storefront"
    assert "web_xx" in line["error"]["message"]


GOLDEN = ROOT / "tests" / "golden" / "streaming_events.out.jsonl"


def test_eval_example_log_matches_golden_file(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    """The README's first command, byte for byte (REVRULES_UPDATE_GOLDEN=1 rewrites it)."""
    state_out = tmp_path / "state.json"
    status, out, err = run(capsys, "eval", str(STREAMING), str(EXAMPLE_EVENTS),
                           "--state-out", str(state_out))
    assert (status, err) == (0, "")
    if os.environ.get("REVRULES_UPDATE_GOLDEN"):
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8")
    lines = [json.loads(line, parse_float=lambda s: pytest.fail(f"float {s}"))
             for line in out.splitlines()]
    first = lines[0]["decisions"][0]
    assert (first["list"], first["tax"], first["net"], first["total"]) == (
        "12.99", "2.07", "10.92", "12.99")
    jpy = lines[3]["decisions"][0]
    assert (jpy["currency"], jpy["total"], jpy["tax"]) == ("JPY", "1200", "109")
    text = state_out.read_text(encoding="utf-8")
    assert wire.state_to_json(wire.state_from_json(text)) + "\n" == text

    # continuing from the saved state replays nothing twice
    status, out, _ = run(capsys, "eval", str(STREAMING), str(EXAMPLE_EVENTS),
                         "--state-in", str(state_out))
    assert status == 0
    assert all(json.loads(line).get("replayed") for line in out.splitlines())


@pytest.mark.parametrize("cut", [1, 7, 13, 16, 21])
def test_eval_in_two_halves_through_saved_state(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path, cut: int) -> None:
    lines = EXAMPLE_EVENTS.read_text(encoding="utf-8").splitlines(keepends=True)
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text("".join(lines[:cut]), encoding="utf-8")
    second.write_text("".join(lines[cut:]), encoding="utf-8")
    state = tmp_path / "state.json"
    _, out1, _ = run(capsys, "eval", str(STREAMING), str(first), "--state-out", str(state))
    _, out2, _ = run(capsys, "eval", str(STREAMING), str(second), "--state-in", str(state))
    assert out1 + out2 == GOLDEN.read_text(encoding="utf-8")


# -- the program ---------------------------------------------------------------------


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0
    assert out == f"revrules {__version__}\n"


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "check" in out and "eval" in out


@pytest.mark.parametrize("argv", [[], ["frobnicate"], ["eval"], ["eval", "only-rules.rr"],
                                  ["check"], ["eval", "a", "b", "--state-in"]])
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert "usage:" in err


def test_python_dash_m() -> None:
    result = subprocess.run([sys.executable, "-m", "revrules", "--version"],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0
    assert result.stdout.strip() == f"revrules {__version__}"
    assert result.stderr == ""
