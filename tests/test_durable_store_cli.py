"""The store's commands: ``revrules ingest`` (idempotent, resumable, a progress bar only
on a terminal, ruleset switches refused with the list), ``revrules state``, and
``replay``/``explain``/``reconcile``/``growth`` reading ``--db`` byte for byte as they
read the log."""

from __future__ import annotations

import io
import sqlite3
import sys
from pathlib import Path

import pytest
from durable_store_support import EXAMPLES, RULES, generated_log

from revrules import wire
from revrules.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_ingest_twice_changes_nothing_the_second_time(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    status, out, err = _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)
    assert (status, err) == (0, "")
    assert out == f"{EXAMPLES}: 22 events read, 22 stored (0 not applied), 0 already in " \
                  "the store\n"
    before = _dump(db)
    status, out, _ = _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)
    assert status == 0 and "0 events read" in out and "22 lines stored before" in out
    assert _dump(db) == before
    # the same events from another file: every id is a replay, and nothing changes
    copy = tmp_path / "copy.jsonl"
    copy.write_text(EXAMPLES.read_text(encoding="utf-8"), encoding="utf-8")
    status, out, _ = _run(capsys, "ingest", str(RULES), str(copy), "--db", url)
    assert status == 0 and "22 events read, 0 stored (0 not applied), 22 already" in out
    assert [line for line in _dump(db) if "sources" not in line] == \
        [line for line in before if "sources" not in line]


def test_ingest_resumes_after_the_last_stored_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    log = tmp_path / "events.jsonl"
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:9]), encoding="utf-8")  # a log cut short, then grown
    assert _run(capsys, "ingest", str(RULES), str(log), "--db", url)[0] == 0
    log.write_text("".join(lines), encoding="utf-8")
    status, out, _ = _run(capsys, "ingest", str(RULES), str(log), "--db", url)
    assert status == 0
    assert "13 events read, 13 stored" in out and "9 lines stored before" in out


def test_the_progress_bar_is_only_drawn_on_a_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("".join(wire.dumps(dict(e)) + "\n" for e in generated_log(200, 12)),
                   encoding="utf-8")
    status, _, err = _run(capsys, "ingest", str(RULES), str(log), "--db",
                          f"sqlite:///{tmp_path / 'a.db'}")
    assert status == 0 and err == ""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["ingest", str(RULES), str(log), "--db", f"sqlite:///{tmp_path / 'b.db'}"]) == 0
    drawn = terminal.getvalue()
    lines = len(log.read_text(encoding="utf-8").splitlines())
    assert lines >= 2000  # shorter logs draw no bar
    assert "\ringesting [" in drawn and f"] {lines}/{lines}" in drawn


@pytest.mark.parametrize("command", [["replay"], ["replay", "--format", "json"],
                                     ["replay", "--format", "csv"], ["growth"],
                                     ["growth", "--format", "json"], ["growth", "--months", "3"],
                                     ["replay", "--basis", "accrual", "--movements", "--tax"],
                                     ["replay", "--basis", "accrual", "--movements", "--tax",
                                      "--format", "json"],
                                     ["replay", "--basis", "accrual", "--format", "csv"],
                                     ["reconcile"],
                                     ["explain", "--event", "e13"],
                                     ["explain", "--event", "e20"]])
def test_commands_read_the_store_as_they_read_the_log(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)[0] == 0
    from_log = _run(capsys, command[0], str(RULES), str(EXAMPLES), *command[1:])
    from_store = _run(capsys, command[0], str(RULES), "--db", url, *command[1:])
    assert from_store == from_log
    assert from_log[1]


def test_replay_html_from_the_store_is_the_same_page(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)
    _run(capsys, "replay", str(RULES), str(EXAMPLES), "--html", str(tmp_path / "a.html"))
    _run(capsys, "replay", str(RULES), "--db", url, "--html", str(tmp_path / "b.html"))
    assert (tmp_path / "a.html").read_bytes() == (tmp_path / "b.html").read_bytes()


def test_db_and_events_are_one_or_the_other(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert _run(capsys, "replay", str(RULES)) == \
        (2, "", "revrules: replay needs EVENTS or --db URL\n")
    assert _run(capsys, "replay", str(RULES), str(EXAMPLES), "--db", url) == \
        (2, "", "revrules: replay reads EVENTS or --db URL, not both\n")
    assert _run(capsys, "replay", str(RULES), "--db", "mysql://x/y")[2] == \
        "revrules: not a store URL: 'mysql://x/y' (sqlite:///path.db or postgresql://host/db)\n"
    _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)
    assert _run(capsys, "explain", str(RULES), "--db", url, "--event", "e133") == \
        (2, "", "revrules: no event 'e133' in the store (did you mean 'e13'?)\n")


def test_state_shows_a_subscription_and_its_history(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", url)
    status, out, _ = _run(capsys, "state", "--db", url, "--subscription", "s1")
    assert status == 0
    first, *history = out.splitlines()
    assert first.startswith('{"id": "s1", "customer_id": "c1"')
    assert history[:2] == ["  #2 2026-11-15T10:00:00Z checkout e1: applied",
                           "  #3 2026-11-15T10:00:05Z payment_succeeded e2: applied"]
    assert _run(capsys, "state", "--db", url, "--subscription", "s12") == \
        (2, "", f"revrules: {url}: no subscription 's12' (did you mean 's1'?)\n")
    # the whole state, as a state file that eval reads
    out_file = tmp_path / "state.json"
    assert _run(capsys, "state", "--db", url, "--out", str(out_file))[0] == 0
    assert wire.state_from_json(out_file.read_text(encoding="utf-8")).subscription("s1")


def test_a_state_file_moves_into_a_store_with_ingest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = EXAMPLES.read_text(encoding="utf-8").splitlines(keepends=True)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_text("".join(lines[:11]), encoding="utf-8")
    rest.write_text("".join(lines[11:]), encoding="utf-8")
    state = tmp_path / "state.json"
    _run(capsys, "eval", str(RULES), str(first), "--state-out", str(state))
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert _run(capsys, "ingest", str(RULES), str(rest), "--db", url, "--state-in",
                str(state))[0] == 0
    direct = f"sqlite:///{tmp_path / 'direct.db'}"
    _run(capsys, "ingest", str(RULES), str(EXAMPLES), "--db", direct)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    _run(capsys, "state", "--db", url, "--out", str(a))
    _run(capsys, "state", "--db", direct, "--out", str(b))
    assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")


SMALL = """
ruleset small version "{v}"
storefront web {{ channel web currency EUR tax inclusive psp stripe }}
product p {{ entitlements hd }}
plan {plan} {{ product p  every 1 month  price web EUR 9.99 }}
tax vat {{ rate 19% }}
"""


def test_ingest_refuses_a_ruleset_that_cannot_serve_the_store(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    v1, v2 = tmp_path / "v1.rr", tmp_path / "v2.rr"
    v1.write_text(SMALL.format(v="1", plan="monthly"), encoding="utf-8")
    v2.write_text(SMALL.format(v="2", plan="yearly"), encoding="utf-8")
    log = tmp_path / "e.jsonl"
    log.write_text('{"id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": '
                   '"s1", "storefront": "web", "plan": "monthly", "customer": {"id": "c1"}}\n',
                   encoding="utf-8")
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert _run(capsys, "ingest", str(v1), str(log), "--db", url)[0] == 0
    status, out, _ = _run(capsys, "ingest", str(v2), str(log), "--db", url)
    assert status == 1
    assert out.splitlines() == [
        f"{url}: subscription 's1': unknown_plan: subscription 's1' is on plan 'monthly', "
        "which ruleset small does not have (a plan that replaces it can say 'formerly "
        "monthly')",
        f"{v2}: cannot serve 1 of 1 subscriptions in {url}; the store stays on its ruleset"]
