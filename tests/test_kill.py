"""SIGKILL during ``revrules eval --state-out`` (docs/reliability.md, "Files and
terminals"; docs/cli.md "Writing files").

``eval`` runs in a child process on a log from ``revrules generate`` and is killed with
SIGKILL, which no program can catch or clean up after:

* at every step of the atomic write (before the temporary file, after it is made, half
  written, written, fsynced, renamed, the directory fsynced, and after the command):
  the child kills itself there, so each step is hit exactly, and the outcome is exact;
* from outside, after increasing delays spread over the whole run, and as soon as the
  temporary file shows up in the directory.

After every kill the state file is the previous complete file (or absent when there
was none) or the complete new one, byte for byte, and it loads; nothing else is in the
directory but, at most, the one leftover the docs name: a temporary file
``.state.json.XXXXXXXX.tmp`` holding the start of the new state.

``REVRULES_KILLS`` sets the number of delayed kills (default 12; a fifth as many, at
least 2, watch for the temporary file); with ``-s`` the test prints how many kills the
state file survived.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from revrules import cli, wire

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
KILLS = int(os.environ.get("REVRULES_KILLS", "12"))
TEMP = re.compile(r"\.state\.json\.[A-Za-z0-9_]+\.tmp")
pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                                reason="SIGKILL and fork are POSIX")

# the steps of the atomic write a child can die at, and whether the new file is in place
STEPS = {"before_temp": False, "temp_made": False, "half_written": False,
         "written": False, "fsynced": False, "renamed": True, "directory_fsynced": True,
         "after_command": True}
SURVIVED: list[str] = []


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _arm(step: str) -> None:
    """In the child: SIGKILL itself when the write reaches ``step``."""
    mkstemp, fdopen, fsync, replace = tempfile.mkstemp, os.fdopen, os.fsync, os.replace
    calls = {"fsync": 0}

    def mkstemp_(*args: Any, **kwargs: Any) -> Any:
        if step == "before_temp":
            _die()
        made = mkstemp(*args, **kwargs)
        if step == "temp_made":
            _die()
        return made

    def fdopen_(*args: Any, **kwargs: Any) -> Any:
        handle = fdopen(*args, **kwargs)
        if step == "half_written":
            write = handle.write

            def half(text: str) -> int:
                write(text[:len(text) // 2])
                handle.flush()  # in the kernel: what a real kill mid-write leaves
                _die()
                return 0
            handle.write = half
        return handle

    def fsync_(fd: int) -> None:
        calls["fsync"] += 1
        if calls["fsync"] == 1 and step == "written":
            _die()
        fsync(fd)
        if calls["fsync"] == 2 and step == "directory_fsynced":
            _die()

    def replace_(*args: Any, **kwargs: Any) -> None:
        if step == "fsynced":
            _die()
        replace(*args, **kwargs)
        if step == "renamed":
            _die()

    setattr(tempfile, "mkstemp", mkstemp_)  # noqa: B010 - the child only
    setattr(os, "fdopen", fdopen_)  # noqa: B010
    setattr(os, "fsync", fsync_)  # noqa: B010
    setattr(os, "replace", replace_)  # noqa: B010


def _child(argv: list[str], step: str | None = None) -> int:
    """Fork a process that runs the command line (output to /dev/null); its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        sys.stdout = sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
        if step is not None:
            _arm(step)
        code = cli.main(argv)
        if step == "after_command":
            _die()
    finally:
        os._exit(code)


def _wait(pid: int) -> int:
    """The child's exit status, or minus the signal that ended it."""
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


class Case:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.log = root / "log.jsonl"
        assert cli.main(["generate", str(STREAMING), "--customers", "40", "--months", "6",
                         "--seed", "11", "-o", str(self.log)]) == 0
        half = root / "half.jsonl"
        lines = self.log.read_text(encoding="utf-8").splitlines(keepends=True)
        half.write_text("".join(lines[:len(lines) // 2]), encoding="utf-8")
        self.previous = self.run_to(root / "previous.json", half)
        started = time.monotonic()
        self.final = self.run_to(root / "final.json", self.log)
        self.duration = time.monotonic() - started
        assert self.previous != self.final
        self.runs = 0

    def run_to(self, target: Path, log: Path) -> bytes:
        assert _wait(_child(["eval", str(STREAMING), str(log), "--state-out",
                             str(target)])) == 0
        return target.read_bytes()

    def folder(self, previous: bool) -> Path:
        """A fresh folder, holding the previous complete state file or nothing."""
        self.runs += 1
        folder = self.root / f"run{self.runs}"
        folder.mkdir()
        if previous:
            (folder / "state.json").write_bytes(self.previous)
        return folder

    def argv(self, folder: Path) -> list[str]:
        return ["eval", str(STREAMING), str(self.log), "--state-out",
                str(folder / "state.json")]

    def check(self, folder: Path, previous: bool) -> tuple[bytes | None, list[str]]:
        """What the kill left: the state file's bytes (None: absent) and the temporary
        files; fails unless it is one of the outcomes the docs allow."""
        names = sorted(os.listdir(folder))
        temps = [n for n in names if TEMP.fullmatch(n)]
        assert set(names) - set(temps) <= {"state.json"}, names
        assert len(temps) <= 1, temps  # one write, so at most one leftover
        for name in temps:  # the start of the new state, never anything else
            assert self.final.startswith((folder / name).read_bytes()), name
        state = folder / "state.json"
        if not state.exists():
            assert not previous
            return None, temps
        got = state.read_bytes()
        assert got in ((self.previous, self.final) if previous else (self.final,))
        wire.validate_state(wire.state_from_json(got.decode("utf-8")))
        return got, temps


def temps_left(folder: Path) -> bool:
    return any(TEMP.fullmatch(n) for n in os.listdir(folder))


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    SURVIVED.clear()
    yield Case(tmp_path_factory.mktemp("kill"))
    kinds = Counter("at a write step" if s in STEPS else s for s in SURVIVED)
    print(f"kills survived: {len(SURVIVED)} ("
          + ", ".join(f"{kind}: {n}" for kind, n in sorted(kinds.items())) + ")")


@pytest.mark.parametrize("previous", [True, False], ids=["replacing", "new"])
@pytest.mark.parametrize("step", list(STEPS))
def test_a_kill_at_each_step_of_the_write_leaves_the_old_file_or_the_new(
        case: Case, step: str, previous: bool) -> None:
    folder = case.folder(previous)
    assert _wait(_child(case.argv(folder), step)) == -signal.SIGKILL
    got, temps = case.check(folder, previous)
    if STEPS[step]:
        assert (got, temps) == (case.final, [])
    else:
        assert got == (case.previous if previous else None)
        # the documented leftover: the temporary file exists from mkstemp to the rename
        assert len(temps) == (0 if step == "before_temp" else 1), temps
    SURVIVED.append(step)


def test_kills_after_increasing_delays_leave_the_old_file_or_the_new(case: Case) -> None:
    outcomes = []
    for i in range(KILLS):
        previous = i % 2 == 0
        folder = case.folder(previous)
        pid = _child(case.argv(folder))
        # deterministic moments spread over the run, denser towards its end (the write)
        time.sleep(case.duration * (1 - ((KILLS - i) / (KILLS + 1)) ** 2))
        os.kill(pid, signal.SIGKILL)
        status = _wait(pid)
        assert status in (0, -signal.SIGKILL)
        got, temps = case.check(folder, previous)
        outcomes.append((status, got == case.final, bool(temps)))
        if status:
            SURVIVED.append("delayed, mid-write" if temps else "delayed")
    assert any(status for status, _, _ in outcomes), outcomes  # some kills landed


def test_a_kill_when_the_temporary_file_appears_leaves_the_old_file(case: Case) -> None:
    for _ in range(max(2, KILLS // 5)):
        folder = case.folder(True)
        pid = _child(case.argv(folder))
        deadline = time.monotonic() + 10 * case.duration + 5
        while time.monotonic() < deadline:
            if any(TEMP.fullmatch(n) for n in os.listdir(folder)):
                os.kill(pid, signal.SIGKILL)
                break
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                pid = 0  # finished before it was seen
                break
        if pid:
            status = _wait(pid)
            assert status in (0, -signal.SIGKILL)
            if status:
                SURVIVED.append("watched, mid-write" if temps_left(folder) else "watched")
        _, temps = case.check(folder, True)
        if temps:  # the next run writes the new state beside the leftover, untouched
            assert _wait(_child(case.argv(folder))) == 0
            assert case.check(folder, True) == (case.final, temps)


def test_a_kill_of_the_real_command_line(case: Case) -> None:
    """The same through ``python -m revrules`` (one run: it costs an interpreter start)."""
    folder = case.folder(True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "revrules", *case.argv(folder)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if any(TEMP.fullmatch(n) for n in os.listdir(folder)):
                break
        process.send_signal(signal.SIGKILL)
    finally:
        status = process.wait()
    assert status in (0, -signal.SIGKILL)
    if status:
        SURVIVED.append("command line, mid-write" if temps_left(folder) else "command line")
    case.check(folder, True)
