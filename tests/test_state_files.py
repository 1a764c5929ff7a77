"""State files are validated at load (docs/wire.md "The state file"): a mutated state is
either refused with a one-line error or works afterwards, without raising or looping."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State, wire
from revrules.cli import main

ROOT = Path(__file__).resolve().parent.parent
RULES = revrules.load(ROOT / "rulesets" / "streaming.rr")
ENGINE = Engine(RULES)
EXAMPLES = int(os.environ.get("REVRULES_STATE_MUTATIONS", "150"))


def _base() -> State:
    events = [json.loads(line) for line in
              (ROOT / "examples" / "events.jsonl").read_text("utf-8").splitlines() if line]
    state, _ = ENGINE.run(events)
    return state


BASE = _base()
BASE_DATA = json.loads(wire.state_to_json(BASE))
AFTER = ["2027-06-01", "2028-06-01"]


def _paths(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(obj, dict):
        for key in sorted(obj):
            yield from _paths(obj[key], (*path, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*path, i))


PATHS = [p for p in _paths(BASE_DATA) if p and p != ("format",)]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 10**7), st.sampled_from(
        ["", "s1", "s2", "x", "canceled", "paused", "active", "trialing", "EUR", "JPY",
         "2026-11-15", "1899-12-31", "9999-12-31", "2027-01-15T10:00:00Z", "-1", "1e400",
         "12.99", "NaN", "premium_monthly", "web_eu", "nope"]),
    st.just({}), st.just([]))


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    data = json.loads(json.dumps(data))
    parent = data
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "rename" and isinstance(parent, dict):
        parent[f"{last}x"] = parent.pop(last)
    elif action == "duplicate" and isinstance(parent, dict):
        parent[f"{last}2"] = parent[last]
    else:
        parent[last] = value
    return data


@contextlib.contextmanager
def step_guard(seconds: int) -> Iterator[None]:
    """Turn a hang into a failure (a guard, not a measurement)."""
    def alarm(*_: Any) -> None:
        raise TimeoutError("applying events to a loaded state did not finish")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _events(state: State) -> list[dict[str, Any]]:
    subs = sorted(state.subscriptions.keys())[:3] or ["s1"]
    out: list[dict[str, Any]] = []
    for n, at in enumerate(AFTER):
        out.append({"id": f"m{n}t", "type": "tick", "at": at})
        for sub in subs:
            for kind in ("payment_succeeded", "payment_failed", "cancel_requested",
                         "refund_requested"):
                out.append({"id": f"m{n}{kind}{sub}", "type": kind, "at": at,
                            "subscription": sub})
    return out


def refused_or_works(text: str) -> str:
    try:
        state = wire.state_from_json(text)
    except wire.WireError as exc:
        assert "\n" not in str(exc) and str(exc)
        return "refused"
    problem = ENGINE.verify(state)
    if problem is not None:
        assert "\n" not in problem
        return "refused"
    with step_guard(20):
        for event in _events(state):
            outcome = ENGINE.apply(state, event)  # must not raise
            state = outcome.state
        wire.state_to_json(state)  # and the result can still be written
    return "works"


def test_the_unmutated_state_works() -> None:
    assert refused_or_works(wire.state_to_json(BASE)) == "works"


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS),
                          st.sampled_from(["set", "set", "delete", "rename", "duplicate"]),
                          VALUES), min_size=1, max_size=3))
def test_a_mutated_state_is_refused_cleanly_or_works(
        mutations: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    data: Any = BASE_DATA
    for path, action, value in mutations:
        try:
            data = _mutate(data, path, action, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed the place
    refused_or_works(json.dumps(data))


def test_a_subscription_filed_under_another_id_is_refused() -> None:
    data = json.loads(wire.state_to_json(BASE))
    key = sorted(data["subscriptions"])[0]
    data["subscriptions"][key]["id"] = key + "-other"
    with pytest.raises(wire.WireError, match=r"\$\.subscriptions\..*\.id: .* is filed under"):
        wire.state_from_json(json.dumps(data))


def test_a_wrong_due_index_is_refused_by_eval(
        capsys: pytest.CaptureFixture[str], write: Any) -> None:
    data = json.loads(wire.state_to_json(BASE))
    key = sorted(data["subscriptions"])[0]
    data["due"][key] = "2026-01-01"
    state = write("state.json", json.dumps(data))
    log = write("log.jsonl", '{"id": "t", "type": "tick", "at": "2027-06-01"}\n')
    assert main(["eval", str(ROOT / "rulesets" / "streaming.rr"), log, "--state-in", state]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a consistent state: $.due." in err


def test_the_state_file_records_the_ruleset() -> None:
    data = json.loads(wire.state_to_json(BASE))
    assert data["ruleset"]["name"] == RULES.name
    assert data["ruleset"]["version"] == RULES.version
    assert data["ruleset"]["digest"] == RULES.stamp.digest
    assert data["ruleset"]["digest"].startswith("sha256:")


def test_a_period_index_beyond_the_calendar_is_refused() -> None:
    data = json.loads(wire.state_to_json(BASE))
    key = sorted(data["subscriptions"])[0]
    data["subscriptions"][key]["index"] = 900_000
    problem = ENGINE.verify(wire.state_from_json(json.dumps(data)))
    assert problem is not None and problem.startswith(f"$.subscriptions.{key}")
