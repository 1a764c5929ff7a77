"""Streamed, partitioned and Dask replays give the sequential replay's report, byte for
byte, and a streamed replay keeps no outcome (docs/ledger.md "Parallel replay")."""

from __future__ import annotations

import datetime as dt
import gc
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import revrules
from revrules import reports
from revrules.cli import main
from revrules.generator import generate
from revrules.parallel import partition_of, replay_file, replay_partitioned
from revrules.results import Outcome

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "rulesets" / "streaming.rr"


def _limited_text() -> str:
    """The bundled ruleset with small total limits: a code promotion (3) and an
    automatic one (7) that compete for the same checkouts."""
    text = BUNDLED.read_text(encoding="utf-8")
    text = text.replace("limit 10000 total, 1 per customer", "limit 3 total, 1 per customer")
    assert "limit 3 total" in text
    return text.replace("promotion loyalty {", """promotion launch {
  automatic
  plans basic_monthly, premium_monthly
  storefronts web_eu, web_us
  percent 20 off for 2 cycles
  limit 7 total
}

promotion loyalty {""")


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> tuple[revrules.Ruleset, str, str]:
    """(ruleset, its path, a log that exhausts both limits)."""
    folder = tmp_path_factory.mktemp("limited")
    rules_path = folder / "limited.rr"
    rules_path.write_text(_limited_text(), encoding="utf-8")
    rules = revrules.load(rules_path)
    events = generate(rules, 80, 2, 3, dt.date(2026, 11, 20))
    log = folder / "log.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return rules, str(rules_path), str(log)


def _lines(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text("utf-8").splitlines()]


def _report(result: reports.Streamed | Any, rules: revrules.Ruleset) -> str:
    return reports.render_json(result.ledger, rules, result.summary)


def _exhausted(rules: revrules.Ruleset, log: list[dict[str, Any]]) -> list[str]:
    fold = reports.Fold(rules)
    return [e.rule or "" for o in fold.outcomes(log) for e in o.events
            if e.type == "promo.exhausted"]


def test_the_limited_log_exhausts_both_promotions(limited: Any) -> None:
    rules, _, log = limited
    assert sorted(_exhausted(rules, _lines(log))) == ["black_friday", "launch"]


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 7])
def test_partitions_give_the_sequential_report(limited: Any, partitions: int) -> None:
    rules, _, log = limited
    want = reports.stream(rules, _lines(log))
    got = replay_file(rules, log, 1, partitions)  # the partitions one after the other
    assert got.fallback is None
    assert got.rounds == 3  # counts 0; the first 3 and 7 win; confirmed
    assert got.summary == want.summary
    assert _report(got, rules) == _report(want, rules)
    assert reports.render_csv(got.ledger) == reports.render_csv(want.ledger)


def test_ignoring_the_global_limits_would_differ(limited: Any) -> None:
    """The test above can fail: per partition, each part would redeem up to the limit."""
    rules, _, log = limited
    want = _report(reports.stream(rules, _lines(log)), rules)
    items = _lines(log)
    parts: list[list[dict[str, Any]]] = [[], [], [], []]
    for item in items:
        if item["type"] == "tick":
            for part in parts:
                part.append(item)
        else:
            owner = next(i["customer"]["id"] for i in items if i["type"] == "checkout"
                         and i["subscription"] == item["subscription"])
            parts[partition_of(owner, 4)].append(item)
    ledger = revrules.Ledger.fold((), rules)
    for part in parts:
        ledger = ledger.merge(reports.stream(rules, part).ledger)
    assert reports.render_json(ledger, rules, reports.Summary(len(items))) != want


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_replay_workers_cli_is_byte_identical(limited: Any, workers: int,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _, rules_path, log = limited
    assert main(["replay", rules_path, log, "--format", "json"]) == 0
    want = capsys.readouterr().out
    assert main(["replay", rules_path, log, "--format", "json", "--workers",
                 str(workers)]) == 0
    assert capsys.readouterr().out == want


def test_replay_workers_reports_the_first_failure(write: Any,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    items = [{"id": "e1", "type": "tick", "at": "2027-01-01"},
             {"id": "e2", "type": "renewal_due", "at": "2027-01-02", "subscription": "nope"},
             {"id": "e3", "type": "tick", "at": "2026-01-01"}]
    log = write("bad.jsonl", "".join(json.dumps(i) + "\n" for i in items) + "{oops\n")
    assert main(["replay", str(BUNDLED), log]) == 1
    want = capsys.readouterr()
    assert main(["replay", str(BUNDLED), log, "--workers", "2"]) == 1
    got = capsys.readouterr()
    assert (got.out, got.err) == (want.out, want.err)
    assert "3 of 4 events did not apply (first: event e2 unknown_subscription" in got.err


def test_replay_workers_bad_input_is_one_line(write: Any, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "\xe9", "type": "tick", "at": "2027-01-01"}\n')
    for log, message in ((str(tmp_path / "missing.jsonl"), "cannot read events from"),
                         (str(tmp_path), "it is a directory"),
                         (str(latin), "is not UTF-8 text"), ("-", "give a file, not -")):
        assert main(["replay", str(BUNDLED), log, "--workers", "2"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def _two_customers() -> tuple[str, str]:
    """Two customer ids in different partitions of 2."""
    first = "c-0"
    second = next(f"c-{n}" for n in range(1, 100)
                  if partition_of(f"c-{n}", 2) != partition_of(first, 2))
    return first, second


def _checkout(event_id: str, sub: str, customer: str, at: str) -> dict[str, Any]:
    return {"id": event_id, "type": "checkout", "at": at, "subscription": sub,
            "storefront": "web_eu", "plan": "premium_monthly",
            "customer": {"id": customer, "country": "DE"}}


@pytest.mark.parametrize("case", ["id", "subscription"])
def test_what_cannot_be_split_falls_back_to_sequential(case: str) -> None:
    rules = revrules.load(BUNDLED)
    a, b = _two_customers()
    if case == "id":  # one id for two customers' events: the second is an id_conflict
        items = [_checkout("e1", "s1", a, "2027-01-01"), _checkout("e1", "s2", b, "2027-01-02")]
    else:  # one subscription checked out by two customers
        items = [_checkout("e1", "s1", a, "2027-01-01"), _checkout("e2", "s1", b, "2027-01-02")]
    got = replay_partitioned(rules, items, 2, processes=0)
    want = reports.stream(rules, items)
    assert got.fallback is not None and "two partitions" in got.fallback
    assert got.summary == want.summary and got.summary.failed == 1
    assert _report(got, rules) == _report(want, rules)


def test_dask_local_cluster_is_byte_identical(limited: Any) -> None:
    pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    import dask.bag

    from revrules.dask import replay as dask_replay

    rules, _, log = limited
    want = _report(reports.stream(rules, _lines(log)), rules)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        by_path = dask_replay(log, rules, partitions=3)
        bag = dask.bag.from_sequence(_lines(log), npartitions=4)
        by_bag = dask_replay(bag, rules)  # partitions: the cluster's 2 workers
    assert by_path.fallback is None and by_path.partitions == 3
    assert _report(by_path, rules) == want
    assert by_bag.partitions == 2 and _report(by_bag, rules) == want


def test_dask_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from revrules import dask as adapter

    real = builtins.__import__

    def no_dask(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "dask" or name.startswith("dask."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'revrules\[dask\]'"):
        adapter.replay("log.jsonl", revrules.load(BUNDLED))


# -- streaming: what a replay keeps ---------------------------------------------------


def _ticks(base: list[dict[str, Any]], days: int) -> Iterator[dict[str, Any]]:
    """``base``, then a tick a day for ``days`` days from 2030 on."""
    yield from base
    start = dt.date(2030, 1, 1)
    for n in range(days):
        yield {"id": f"t{n}", "type": "tick", "at": (start + dt.timedelta(days=n)).isoformat()}


def _live_outcomes() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Outcome))


def _peak(run: Any) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def base_log() -> tuple[revrules.Ruleset, list[dict[str, Any]]]:
    rules = revrules.load(BUNDLED)
    return rules, generate(rules, 40, 6, 11, dt.date(2029, 1, 1))


def test_a_streamed_replay_keeps_no_outcome(base_log: Any) -> None:
    rules, base = base_log
    before = _live_outcomes()
    kept = reports.stream(rules, _ticks(base, 2000))
    assert _live_outcomes() == before
    assert kept.summary.events == len(base) + 2000
    full = reports.replay(rules, _ticks(base, 200))
    assert _live_outcomes() - before >= len(base) + 200  # replay() keeps them all
    del full


def test_streamed_memory_does_not_grow_with_the_log(base_log: Any) -> None:
    """The same subscriptions, 5,000 or 10,000 more events: the peak stays the same (the
    ids remembered are pruned to the replay window once past 4,096), where keeping the
    outcomes grows with the events."""
    rules, base = base_log
    engine = revrules.Engine(rules, replay_window=dt.timedelta(days=30))

    def streamed(days: int) -> Any:
        def run() -> None:
            fold = reports.Fold(rules, engine)
            for _ in fold.outcomes(_ticks(base, days)):
                pass
            assert len(fold.state.applied) <= 4096 + 2 * 31 + 1
        return run

    short, long = _peak(streamed(5000)), _peak(streamed(10000))
    assert long < 1.1 * short, (short, long)
    kept_short = _peak(lambda: reports.replay(rules, _ticks(base, 1000)))
    kept_long = _peak(lambda: reports.replay(rules, _ticks(base, 4000)))
    assert kept_long > 2 * kept_short, (kept_short, kept_long)
