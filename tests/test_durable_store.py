"""The durable store (revrules.store) against the in-memory engine, on SQLite and
PostgreSQL: byte-identical outcomes, the same state and the same ledger; exactly-once
apply; refusals recorded without a state change; the schema version; ruleset switches.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from durable_store_support import (
    BACKENDS,
    EXAMPLES,
    RULES,
    STATE_FIELDS,
    fresh_url,
    generated_log,
    memory_run,
    read_log,
)

import revrules
from revrules import reports, wire
from revrules.events import EventError
from revrules.generator import generate
from revrules.ledger import Ledger
from revrules.store import SCHEMA_VERSION, Store, StoreError, SwitchRefused


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from fresh_url(request.param, tmp_path, request.node.name)


@pytest.fixture(scope="module")
def rules() -> revrules.Ruleset:
    return revrules.load(RULES)


def _edges() -> list[Any]:
    """The bundled log with what a webhook sender gets wrong: a redelivery, an id reused
    for another payload, a line that is not JSON, an invalid event, an unknown
    subscription one typo from known ones, an event before the last tick, a refund of
    more than was paid."""
    items: list[Any] = read_log(EXAMPLES)
    first = dict(items[0])  # type: ignore[arg-type]
    return [*items[:3], first, {**first, "plan": "basic_monthly"},
            EventError("bad_json", "line 4: not valid JSON: Expecting value (column 1)"),
            {"id": "x1", "type": "checkout", "at": "2026-13-01"},
            {"id": "x2", "type": "payment_succeeded", "at": "2026-11-20T00:00:00Z",
             "subscription": "s11", "amount": "1.00"},
            *items[3:],
            {"id": "x3", "type": "cancel_requested", "at": "2026-01-01T00:00:00Z",
             "subscription": "s1"},
            {"id": "x4", "type": "refund_requested", "at": "2027-06-01T00:00:00Z",
             "subscription": "s1", "amount": "999.00"},
            first]


def _store_run(url: str, rules: revrules.Ruleset, items: list[Any],
               batch: int = 1) -> list[str]:
    engine = revrules.Engine(rules)
    lines = []
    with Store.open(url) as store:
        for start in range(0, len(items), batch):
            chunk = [(n, item) for n, item in enumerate(items[start:start + batch], start + 1)]
            lines += [wire.outcome_to_json(o) for o in store.apply_many(engine, chunk)]
    return lines


def _same_state(store: Store, state: revrules.State) -> None:
    stored = store.state()
    for name in STATE_FIELDS:
        assert getattr(stored, name) == getattr(state, name), name
    # the store remembers every id the engine does (and never forgets one)
    assert set(state.applied.keys()) <= set(stored.applied.keys())
    for key in state.applied.keys():
        assert stored.applied[key] == state.applied[key]


@pytest.mark.parametrize("batch", [1, 5, 1000])
def test_outcomes_are_byte_identical_with_the_edges(url: str, rules: revrules.Ruleset,
                                                    batch: int) -> None:
    # in batches, each event sees what the events before it in the same transaction did
    # (a redelivery, a suggestion from a subscription the batch created, a tick)
    items = _edges()
    state, expected = memory_run(rules, items)
    got = _store_run(url, rules, items, batch)
    assert got == expected
    codes = [json.loads(line).get("error", {}).get("code") for line in got]
    assert {"id_conflict", "bad_json", "bad_field", "unknown_subscription",
            "out_of_order"} <= set(codes)
    assert "(did you mean 's1'?)" in got[7]  # the suggestion comes from the store
    with Store.open(url) as store:
        _same_state(store, state)


@pytest.mark.parametrize("batch", [1, 64])
def test_generated_log_gives_the_same_outcomes_state_and_ledger(
        url: str, rules: revrules.Ruleset, batch: int) -> None:
    items = generated_log()
    state, expected = memory_run(rules, items)
    assert _store_run(url, rules, items, batch) == expected
    result = reports.replay(rules, items)
    with Store.open(url) as store:
        _same_state(store, state)
        ledger = store.ledger(rules)
        outcomes = list(store.outcomes())
        assert reports.render_table(ledger, rules, outcomes) == \
            reports.render_table(result.ledger, rules, result.outcomes)
        assert reports.render_json(ledger, rules, outcomes) == \
            reports.render_json(result.ledger, rules, result.outcomes)
        # one currency's ledger from the indexed rows is that currency's part of the whole
        whole = Ledger.fold(e for o in result.outcomes if o.ok for e in o.events)
        eur = store.ledger(rules, currency="EUR")
        assert eur.totals() == {"EUR": whole.totals()["EUR"]}


@pytest.mark.parametrize("batch", [1, 16, 10_000])
def test_batches_redeem_a_total_limit_as_the_engine_does(url: str, tmp_path: Path,
                                                         batch: int) -> None:
    # a transaction of many checkouts counts its own redemptions, per customer and in
    # total, up to the limit and its exhaustion event
    text = RULES.read_text(encoding="utf-8").replace("limit 10000 total, 1 per customer",
                                                     "limit 3 total, 1 per customer")
    rules = revrules.load_text(text, "limited.rr")
    items = [dict(e) for e in generate(rules, 80, 2, 3, dt.date(2026, 11, 20))]
    state, expected = memory_run(rules, items)
    assert _store_run(url, rules, items, batch) == expected
    assert sum('"promo.exhausted"' in line for line in expected) == 1
    with Store.open(url) as store:
        _same_state(store, state)
        assert store.state().redemptions["black_friday"] == 3


def test_a_stored_id_changes_nothing_from_another_connection(url: str,
                                                             rules: revrules.Ruleset) -> None:
    items = read_log(EXAMPLES)
    engine = revrules.Engine(rules)
    with Store.open(url) as store:
        first = store.apply(engine, items[0])
        before = store.counts()
        with Store.open(url) as other:
            again = other.apply(revrules.Engine(rules), items[0])
        assert again.replayed and again.ok and not again.decisions
        assert store.counts() == before
        kept = store.outcome(first.event)
        assert kept is not None and wire.outcome_to_json(kept) == wire.outcome_to_json(first)


def test_a_refused_event_is_recorded_and_changes_no_state(url: str,
                                                         rules: revrules.Ruleset) -> None:
    items = read_log(EXAMPLES)
    engine = revrules.Engine(rules)
    refund = {"id": "big", "type": "refund_requested", "at": "2026-11-16T00:00:00Z",
              "subscription": "s1", "amount": "500.00"}
    with Store.open(url) as store:
        store.apply_many(engine, [(None, item) for item in items[:2]])
        state = store.state()
        outcome = store.apply(engine, refund)
        assert not outcome.ok
        after = store.state()
        for name in STATE_FIELDS:
            assert getattr(after, name) == getattr(state, name), name
        stored = store.outcome("big")
        assert stored is not None and stored.error == outcome.error
        history = store.history("s1")
        assert [(h.event_id, h.ok, h.code) for h in history][-1] == \
            ("big", False, outcome.error.code if outcome.error else None)


def test_schema_version_is_recorded_and_a_newer_one_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    with Store.open(url) as store:
        assert store.schema_version == SCHEMA_VERSION == 1
    with Store.open(url) as store:  # opening again migrates nothing
        assert store.schema_version == SCHEMA_VERSION
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99; this revrules knows versions "
                                         "up to 1"):
        Store.open(url)


def test_bad_urls_are_one_clear_error() -> None:
    with pytest.raises(StoreError, match="not a store URL"):
        Store.open("mysql://localhost/x")
    with pytest.raises(StoreError, match="three slashes"):
        Store.open("sqlite://host/x.db")


_SMALL = """
ruleset small version "{version}"
storefront web {{ channel web currency EUR tax inclusive psp stripe }}
product p {{ entitlements hd }}
plan {plan} {{ {formerly}product p  every 1 month  price web EUR 9.99 }}
tax vat {{ rate 19% }}
"""


def _small(version: str, plan: str = "monthly", formerly: str = "") -> revrules.Ruleset:
    text = _SMALL.format(version=version, plan=plan,
                         formerly=f"formerly {formerly}  " if formerly else "")
    return revrules.load_text(text, "small.rr")


def _checkout(n: int, plan: str = "monthly") -> dict[str, Any]:
    return {"id": f"e{n}", "type": "checkout", "at": f"2027-01-{n:02d}", "subscription":
            f"s{n}", "storefront": "web", "plan": plan, "customer": {"id": f"c{n}"}}


def test_a_switch_is_recorded_and_refused_when_plans_are_missing(url: str) -> None:
    v1, v2 = _small("1"), _small("2", "basic")
    renamed = _small("3", "monthly_eu", formerly="monthly")
    with Store.open(url) as store:
        store.apply(revrules.Engine(v1), _checkout(1))
        store.apply(revrules.Engine(v1), _checkout(2))
        with pytest.raises(SwitchRefused) as refused:
            store.apply(revrules.Engine(v2), _checkout(3, "basic"))
        assert [(s, e.code) for s, e in refused.value.problems] == \
            [("s1", "unknown_plan"), ("s2", "unknown_plan")]
        assert "cannot serve 2 of 2 subscriptions" in str(refused.value)
        assert store.subscription("s3") is None
        outcome = store.apply(revrules.Engine(renamed), _checkout(3, "monthly_eu"))
        assert outcome.ok
        sub = store.subscription("s1")
        assert sub is not None and sub.plan == "monthly_eu"
        assert [(d == v1.stamp.digest, p, r) for _, d, p, r in store.switches()] == \
            [(True, None, 0), (False, v1.stamp.digest, 2)]
        assert store.ruleset(v1.stamp.digest) is not None  # the text that decided e1


def test_a_state_file_moves_into_a_store(url: str, rules: revrules.Ruleset) -> None:
    items = read_log(EXAMPLES)
    state, expected = memory_run(rules, items)
    half, _ = memory_run(rules, items[:11])
    text = wire.state_to_json(half)
    engine = revrules.Engine(rules)
    with Store.open(url) as store:
        store.import_state(wire.state_from_json(text))
        got = [wire.outcome_to_json(store.apply(engine, item)) for item in items]
        assert got[11:] == expected[11:]
        assert all(json.loads(line).get("replayed") for line in got[:11])
        _same_state(store, state)
        with pytest.raises(StoreError, match="only be imported into an empty store"):
            store.import_state(half)
