"""Crash safety: ``revrules ingest`` killed with SIGKILL at seeded random moments, many
times, then run again on the same log, until it finishes. The store must then equal a
clean sequential run: the same outcomes in the same order, the same state, the same
ledger, every event stored once (SQLite and PostgreSQL).

``REVRULES_STORE_FULL=1`` kills more often, on a longer log.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from durable_store_support import (
    BACKENDS,
    FULL,
    ROOT,
    RULES,
    STATE_FIELDS,
    fresh_url,
    generated_log,
    memory_run,
)

import revrules
from revrules import reports, wire
from revrules.store import Store

KILLS = 12 if FULL else 5


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path, request.node.name)


def _ingest(url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "revrules", "ingest", str(RULES), str(log),
                             "--db", url, "--batch", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def test_sigkill_at_random_moments_loses_and_doubles_nothing(url: str, tmp_path: Path) -> None:
    items = generated_log()
    log = tmp_path / "events.jsonl"
    log.write_text("".join(wire.dumps(dict(e)) + "\n" for e in items), encoding="utf-8")
    rules = revrules.load(RULES)
    state, expected = memory_run(rules, items)
    rng = random.Random(20261202)
    positions = []
    source = "file:" + os.path.realpath(log)
    last = 0
    for _ in range(KILLS):
        proc = _ingest(url, log)
        # kill it at a random moment once it is ingesting (it first starts Python and
        # loads the ruleset, which takes longer on a busy machine)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            with Store.open(url) as store:
                if store.position(source) > last:
                    break
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        with contextlib.suppress(ProcessLookupError):  # it may have finished already
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(60)
        with Store.open(url) as store:
            last = store.position(source)
        positions.append(last)
    # the kills landed mid-log, at different places
    assert any(0 < p < len(items) for p in positions), positions
    proc = _ingest(url, log)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()
    with Store.open(url) as store:
        assert store.position(source) == len(items)
        got = [wire.outcome_to_json(o) for o in store.outcomes()]
        assert got == expected
        stored = store.state()
        for name in STATE_FIELDS:
            assert getattr(stored, name) == getattr(state, name), name
        # every id the engine remembers, as it remembers it (the store forgets none)
        assert {k: stored.applied[k] for k in state.applied.keys()} == dict(state.applied)
        assert len(stored.applied) == len(items)
        result = reports.replay(rules, items)
        assert reports.render_table(store.ledger(rules), rules, list(store.outcomes())) == \
            reports.render_table(result.ledger, rules, result.outcomes)
        assert store.counts()["events"] == len(items)
