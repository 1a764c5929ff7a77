"""Shared pieces of the durable store tests (tests/test_durable_store*.py): a store URL
per backend and test, the logs they replay, and the in-memory reference run.

PostgreSQL tests are marked ``postgres`` and read ``REVRULES_TEST_POSTGRES``; without
it they skip, unless ``REVRULES_REQUIRE_SERVICES=1`` (CI), where they fail.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import revrules
from revrules import wire
from revrules.events import EventError

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rulesets" / "streaming.rr"
EXAMPLES = ROOT / "examples" / "events.jsonl"
#: the generated log: a few thousand events in CI, 20,000 with REVRULES_STORE_FULL=1
FULL = os.environ.get("REVRULES_STORE_FULL") == "1"

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


def postgres_url() -> str:
    url = os.environ.get("REVRULES_TEST_POSTGRES")
    if not url:
        if os.environ.get("REVRULES_REQUIRE_SERVICES") == "1":
            pytest.fail("REVRULES_TEST_POSTGRES is not set, and REVRULES_REQUIRE_SERVICES=1 "
                        "says the PostgreSQL tests must run (source .ci/services)")
        pytest.skip("no PostgreSQL server: set REVRULES_TEST_POSTGRES (source .ci/services)")
    return url


def fresh_url(backend: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A URL of an empty store, dropped afterwards: a SQLite file under ``tmp_path``, or
    a PostgreSQL schema of its own (so that tests never see each other's rows)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / (name + '.db')}"
        return
    import psycopg

    base = postgres_url()
    schema = "rr_" + hashlib.sha256(f"{name}:{tmp_path}:{os.getpid()}".encode()).hexdigest()[:20]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    parts = urllib.parse.urlsplit(base)
    query = "&".join(q for q in (parts.query, f"schema={schema}") if q)
    yield urllib.parse.urlunsplit(parts._replace(query=query))
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def read_log(path: Path) -> list[Mapping[str, Any] | EventError]:
    with path.open(encoding="utf-8") as handle:
        return [item for _, item in wire.read_events(handle)]


def generated_log(customers: int | None = None, months: int | None = None) -> list[Any]:
    """The generated log: 20,000 events with REVRULES_STORE_FULL=1, else about 2,000."""
    from revrules.generator import generate

    rules = revrules.load(RULES)
    if customers is None:
        customers, months = (1200, 24) if FULL else (150, 12)
    events = generate(rules, customers, months or 12, 7, None)
    return list(events[:20_000] if FULL else events)


def memory_run(rules: revrules.Ruleset, items: list[Any]) -> tuple[revrules.State, list[str]]:
    """The reference: the in-memory engine over ``items``, and each outcome's JSON."""
    engine = revrules.Engine(rules)
    state = revrules.State()
    lines = []
    for item in items:
        if isinstance(item, EventError):
            from revrules.results import Error, Outcome
            outcome = Outcome("", False, state, error=Error(item.code, item.message))
        else:
            outcome = engine.apply(state, item)
        state = outcome.state
        lines.append(wire.outcome_to_json(outcome))
    return state, lines


STATE_FIELDS = ("subscriptions", "redemptions", "customer_redemptions", "due", "last_event",
                "last_tick", "clock")
