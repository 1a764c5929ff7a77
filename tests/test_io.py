"""Files and terminals: UTF-8 whatever the locale, durable atomic file replacement,
escaped control characters, numbers kept by ``fmt``, and size limits."""

from __future__ import annotations

import decimal
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import cli, reconcile, wire
from revrules.cli import main
from revrules.formatter import format_module
from revrules.parser import parse
from revrules.text import UNSAFE, printable

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
DATA = ROOT / "tests" / "data"

TINY = """ruleset tiny version "1"
customer { country: string }
storefront web { channel web currency EUR tax inclusive psp stripe }
"""
UNFORMATTED = "ruleset  tiny\nstorefront web { channel web currency EUR tax inclusive psp stripe }\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


# -- printable ---------------------------------------------------------------------------

HOSTILE = ["\x1b[2J\x1b]0;pwned\x07", "\x9b31m", "\x7f", "\u202egnp.exe", "\u2066x\u2069",
           "\u200e\u200f\u061c", "a\nforged line", "\r", "\t", "\x00", "\u2028\u2029", "\ud800"]


@pytest.mark.parametrize("text", HOSTILE)
def test_printable_escapes_every_control(text: str) -> None:
    shown = printable(text)
    assert UNSAFE.search(shown) is None
    assert shown.isprintable()
    assert printable(shown) == shown


def test_printable_spelling() -> None:
    assert printable("s1\x1b[31m\u202e\n\t\x9b") == "s1\\x1b[31m\\u202e\\n\\t\\x9b"
    assert printable("Zürich 東京 — ok ✓") == "Zürich 東京 — ok ✓"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_printable_properties(text: str) -> None:
    shown = printable(text)
    assert UNSAFE.search(shown) is None
    assert printable(shown) == shown
    if UNSAFE.search(text) is None:
        assert shown == text


# Ids, references and a ruleset version with control characters, through every
# human-readable command.
EVIL = "\x1b[2J\x9b31m\u202e\n"


@pytest.fixture
def evil_files(tmp_path: Path) -> dict[str, str]:
    rules = STREAMING.read_text("utf-8").replace('version "2026.11.2"', f'version "{EVIL[:3]}"')
    rr = tmp_path / "evil.rr"
    rr.write_text(rules, "utf-8")
    log = []
    for line in (DATA / "reconcile.jsonl").read_text("utf-8").splitlines():
        event = json.loads(line)
        event["id"] = event["id"] + EVIL
        if "subscription" in event:
            event["subscription"] += EVIL
        if "reference" in event:
            event["reference"] += EVIL
        log.append(event)
    log.append({"id": "x" + EVIL, "type": "renewal_due", "at": "2027-06-01",
                "subscription": "nobody" + EVIL})
    events = tmp_path / "evil.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in log), "utf-8")
    settlements = tmp_path / "evil.csv"
    settlements.write_text((DATA / "settlements.csv").read_text("utf-8") +
                           f"evil{EVIL[:-1]},ref{EVIL[:-1]},2026-11-20,1.00,EUR,0.01\n", "utf-8")
    return {"rules": str(rr), "events": str(events), "settlements": str(settlements),
            "id": log[0]["id"]}


def test_no_terminal_escape_reaches_the_output(capsys: pytest.CaptureFixture[str],
                                               evil_files: dict[str, str]) -> None:
    f = evil_files
    commands = [
        ["reconcile", f["rules"], f["events"], "--settlements", f["settlements"]],
        ["reconcile", f["rules"], f["events"], "--format", "json"],
        ["explain", f["rules"], f["events"], "--event", f["id"]],
        ["explain", f["rules"], f["events"], "--event", "a1\x1b[2J"],  # not found: a message
        ["replay", f["rules"], f["events"]],
        ["replay", f["rules"], f["events"], "--format", "json"],
        ["diff", f["rules"], str(STREAMING), f["events"]],
        ["growth", f["rules"], f["events"]],
        ["eval", f["rules"], f["events"]],
        ["check", f["rules"], f["rules"] + "\x1b[2J"],
    ]
    for argv in commands:
        _, out, err = run(capsys, *argv)
        for text in (out, err):
            text = text.replace("\n", "")
            assert UNSAFE.search(text) is None, (argv, text)
        assert out or err
    _, out, _ = run(capsys, "reconcile", f["rules"], f["events"], "--settlements",
                    f["settlements"])
    assert "pi_1\\x1b[2J\\x9b31m\\u202e\\n" in out


# -- UTF-8 whatever the locale ------------------------------------------------------------


def locales(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    # C without coercion or UTF-8 mode: ASCII streams
    yield "C", {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}
    localedef = shutil.which("localedef")
    if localedef is not None:
        folder = tmp_path / "locales"
        folder.mkdir()
        done = subprocess.run([localedef, "-i", "en_US", "-f", "ISO-8859-1",
                               str(folder / "en_US.ISO-8859-1")], capture_output=True,
                              check=False)
        if done.returncode in (0, 1) and (folder / "en_US.ISO-8859-1").exists():
            yield "ISO-8859-1", {"LC_ALL": "en_US.ISO-8859-1", "LOCPATH": str(folder),
                                 "PYTHONUTF8": "0"}


def test_output_is_utf8_whatever_the_locale(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in [
        {"id": "e1", "type": "tick", "at": "2026-11-01"},
        {"id": "e-日本", "type": "renewal_due", "at": "2026-11-02", "subscription": "s-日本"},
        {"id": "e3", "type": "tick", "at": "2026-11-03"}]), "utf-8")
    tried = []
    for name, extra in locales(tmp_path):
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONIOENCODING", "LANG", "LC_CTYPE", "PYTHONUTF8")}
        env.update(extra, PYTHONPATH=str(Path(revrules.__file__).parent.parent))
        probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.stdout.encoding)"],
                               env=env, capture_output=True, text=True, check=True)
        assert "utf" not in probe.stdout.lower(), name  # the locale really is not UTF-8
        state = tmp_path / f"state-{name}.json"
        done = subprocess.run([sys.executable, "-m", "revrules", "eval", str(STREAMING), str(log),
                               "--state-out", str(state)], env=env, capture_output=True,
                              check=False)
        assert done.returncode == 1, (name, done.stderr)
        lines = done.stdout.decode("utf-8").splitlines()
        assert [json.loads(x)["event"] for x in lines] == ["e1", "e-日本", "e3"]
        assert "unknown subscription 's-日本'" in lines[1]
        assert state.exists()
        done = subprocess.run([sys.executable, "-m", "revrules", "check", str(tmp_path / "ß.rr")],
                              env=env, capture_output=True, check=False)
        assert done.returncode == 2
        message = done.stderr.decode("utf-8")  # the name's bytes may not be the locale's
        assert message.startswith("revrules: cannot read ") and message.count("\n") == 1
        assert message.endswith(".rr: no such file\n")
        tried.append(name)
    assert "C" in tried


def test_lone_surrogates_are_written_as_escapes(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text('{"id": "e\\ud800", "type": "renewal_due", "at": "2026-11-02", '
                   '"subscription": "s\\udfff"}\n', "utf-8")
    state = tmp_path / "state.json"
    status, out, _ = run(capsys, "eval", str(STREAMING), str(log), "--state-out", str(state))
    assert status == 1
    assert json.loads(out)["event"] == "e\ud800"
    assert '"event": "e\\ud800"' in out
    state.read_text("utf-8")


# -- replacing files -------------------------------------------------------------------------


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_replaced_file_keeps_its_mode(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rr = tmp_path / "a.rr"
    rr.write_text(UNFORMATTED, "utf-8")
    os.chmod(rr, 0o640)
    assert run(capsys, "fmt", "--write", str(rr))[0] == 0
    assert stat.S_IMODE(rr.stat().st_mode) == 0o640
    assert rr.read_text("utf-8") == format_module(parse(UNFORMATTED))
    state = tmp_path / "state.json"
    state.write_text("{}")
    os.chmod(state, 0o604)
    run(capsys, "eval", str(STREAMING), str(ROOT / "examples" / "events.jsonl"),
        "--state-out", str(state))
    assert stat.S_IMODE(state.stat().st_mode) == 0o604
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    mask: int, mode: int) -> None:
    old = os.umask(mask)
    try:
        outputs = {"generated.jsonl": ["generate", str(STREAMING), "--customers", "2",
                                       "--months", "1", "-o"],
                   "report.html": ["replay", str(STREAMING), str(ROOT / "examples" / "events.jsonl"),
                                   "--html"],
                   "state.json": ["eval", str(STREAMING), str(ROOT / "examples" / "events.jsonl"),
                                  "--state-out"]}
        for name, argv in outputs.items():
            run(capsys, *argv, str(tmp_path / name))
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    finally:
        os.umask(old)


def test_fmt_write_through_a_symlink_writes_the_target(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = real / "rules.rr"
    target.write_text(UNFORMATTED, "utf-8")
    link = tmp_path / "link.rr"
    link.symlink_to(target)
    status, out, _ = run(capsys, "fmt", "--write", str(link))
    assert status == 0 and out == f"{link}: reformatted\n"
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text("utf-8") == format_module(parse(UNFORMATTED))
    assert temp_files(real) == [] and temp_files(tmp_path) == []


def test_the_file_and_its_directory_are_fsynced(capsys: pytest.CaptureFixture[str],
                                                tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync
    real_replace = os.replace

    def fsync(fd: int) -> None:
        synced.append("directory" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    def replace(a: str, b: str) -> None:
        synced.append("rename")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    run(capsys, "generate", str(STREAMING), "--customers", "1", "--months", "1", "-o",
        str(tmp_path / "out.jsonl"))
    assert synced == ["file", "rename", "directory"]


@pytest.mark.parametrize("failure", ["oserror", "interrupt", "sigterm"])
def test_temp_files_are_removed_on_every_exit(capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              failure: str) -> None:
    rr = tmp_path / "a.rr"
    rr.write_text(UNFORMATTED, "utf-8")

    def fail(fd: int) -> None:
        assert temp_files(tmp_path)  # the temporary file exists at this point
        if failure == "oserror":
            raise OSError(28, "No space left on device")
        if failure == "interrupt":
            raise KeyboardInterrupt
        # (without a handler, SIGTERM would end the test run itself)
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(os, "fsync", fail)
    status, _, err = run(capsys, "fmt", "--write", str(rr))
    assert (status, err.splitlines()[-1]) == {
        "oserror": (2, f"revrules: cannot write formatted ruleset to {rr}: no space left on "
                       "device"),
        "interrupt": (130, "revrules: interrupted"),
        "sigterm": (143, "revrules: terminated")}[failure]
    assert temp_files(tmp_path) == []
    assert rr.read_text("utf-8") == UNFORMATTED
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


# -- fmt never changes a number ---------------------------------------------------------------

NUMBERS = TINY.replace("customer { country: string }",
                       "customer { country: string  score: decimal }") + """
plan p {
  product basic
  every 1 month
  price web EUR 1234567890123456789012345678901234567.99
}

eligibility e {
  deny "x" when customer.score > 1234567890.123456789012345678901234567890
  deny "y" when customer.score > 0.000000000000000000000000000000000000001
}
"""


@pytest.mark.parametrize("context", [decimal.Context(), decimal.Context(
    prec=3, rounding=decimal.ROUND_FLOOR, traps=[decimal.Inexact, decimal.Rounded])])
def test_fmt_keeps_every_digit(context: decimal.Context) -> None:
    with decimal.localcontext(context):
        text = format_module(parse(NUMBERS))
    assert "EUR 1234567890123456789012345678901234567.99" in text
    assert "> 1234567890.123456789012345678901234567890\n" in text
    assert "> 0.000000000000000000000000000000000000001\n" in text
    assert format_module(parse(text)) == text


# -- size limits ------------------------------------------------------------------------------


def test_a_rule_file_over_the_limit_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "MAX_RULESET_BYTES", 1000)
    big = tmp_path / "big.rr"
    big.write_text(TINY + "#" * 1000 + "\n", "utf-8")
    small = tmp_path / "small.rr"
    small.write_text(TINY, "utf-8")
    message = f"revrules: ruleset {big} is too large: more than 1,000 bytes (the limit is 0 MiB)\n"
    for argv in (["check", str(big)], ["fmt", str(big)],
                 ["eval", str(big), str(ROOT / "examples" / "events.jsonl")]):
        assert run(capsys, *argv)[0::2] == (2, message)
    assert run(capsys, "check", str(small))[0] == 0


def test_the_rule_file_limit_is_8_mib() -> None:
    assert cli.MAX_RULESET_BYTES == 8 * 1024 * 1024
    assert wire.MAX_EVENT_LINE == 1024 * 1024


def test_a_rule_file_from_a_pipe_is_read_within_the_limit(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "MAX_RULESET_BYTES", 1000)
    status, _, err = run(capsys, "check", "/dev/zero")  # endless: only 1001 bytes are read
    assert status == 2
    assert err == ("revrules: ruleset /dev/zero is too large: more than 1,000 bytes (the "
                   "limit is 0 MiB)\n")


def test_an_event_line_over_the_limit_is_an_error_for_that_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_EVENT_LINE", 60)
    tick = '{"id": "e1", "type": "tick", "at": "2026-11-01"}'
    exact = '{"id": "e2", "type": "tick", "at": "2026-11-02"' + " " * 12 + "}"
    assert len(exact) == 60  # at the limit: read
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join([tick, "[" + " " * 500 + "]", exact, "x" * 61,
                              '{"id": "e3", "type": "tick", "at": "2026-11-03"}']) + "\n")
    status, out, _ = run(capsys, "eval", str(STREAMING), str(log))
    assert status == 1
    results = [json.loads(x) for x in out.splitlines()]
    assert [(r["event"], r.get("error", {}).get("code")) for r in results] == [
        ("e1", None), ("", "line_too_long"), ("e2", None), ("", "line_too_long"),
        ("e3", None)]
    assert results[1]["error"]["message"] == ("line 2: longer than 60 characters, the limit "
                                              "for one event")


def test_bounded_lines_never_hold_a_long_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_EVENT_LINE", 10)
    stream = io.StringIO("short\n" + "y" * 1000 + "\n" + '{"a": 123}\n' + "last")
    lines = list(wire.bounded_lines(stream))
    assert lines == ["short\n", "y" * 11, '{"a": 123}\n', "last"]
    assert [getattr(i, "code", None) for _, i in wire.read_events(lines)] == [
        "bad_json", "line_too_long", None, "bad_json"]


def test_a_settlement_report_that_is_not_csv_exits_2(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    report = tmp_path / "big.csv"
    report.write_text("psp,reference,date,amount,currency,fee\n"
                      f"stripe,{'x' * 200_000},2026-11-17,12.99,EUR,0.40\n")
    status, _, err = run(capsys, "reconcile", str(STREAMING), str(DATA / "reconcile.jsonl"),
                         "--settlements", str(report))
    assert status == 2
    assert err == (f"revrules: {report}: not valid CSV after line 1: field larger than field "
                   "limit (131072)\n")
    with pytest.raises(reconcile.SettlementError):
        reconcile.read_settlements(report.read_text().splitlines())



def test_rule_files_are_read_with_universal_newlines(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    canonical = format_module(parse(UNFORMATTED))
    rr = tmp_path / "crlf.rr"
    rr.write_bytes(canonical.replace("\n", "\r\n").encode("utf-8"))
    assert run(capsys, "fmt", "--check", str(rr)) == (0, "", "")
    assert run(capsys, "fmt", str(rr)) == (0, canonical, "")
