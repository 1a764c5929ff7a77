"""Store ingest throughput against the in-memory engine, measured in the same run.

    python benchmarks/bench_store.py [--events N] [--batch N] [--postgres URL] [--quick]

The baseline is ``revrules eval`` in memory: ``Engine.apply`` on the in-memory state and
the outcome line of every event of the same generated log. Then:

* SQLite, one event per transaction (``synchronous=FULL``: every commit is durable);
* SQLite, ``--batch`` events per transaction (exactly-once kept: the batch and the
  position in the log commit together);
* PostgreSQL (``--postgres URL`` or ``REVRULES_TEST_POSTGRES``), one event per
  transaction, with 1 writer and with 4 writer processes (the log split by subscription,
  every worker waiting at each ``tick``, which one of them applies alone);

each as events per second and as a ratio to the baseline, and the size of the state
(subscription rows and their bytes) after half of the log and after all of it. Never
used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import revrules
from revrules import wire
from revrules.generator import generate
from revrules.store import Store

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rulesets" / "streaming.rr"


def log_of(events: int, months: int = 3) -> list[dict[str, Any]]:
    """A generated log of about ``events`` events over ``months`` months (one tick a
    day: the fewer the months, the more events between two ticks)."""
    rules = revrules.load(RULES)
    customers = max(20, int(events / (1.5 + 0.65 * months)))
    return [dict(e) for e in generate(rules, customers, months, 11, None)][:events]


def in_memory(items: list[dict[str, Any]]) -> float:
    engine = revrules.Engine(revrules.load(RULES))
    state = revrules.State()
    start = time.perf_counter()
    for item in items:
        outcome = engine.apply(state, item)
        state = outcome.state
        wire.outcome_to_json(outcome)
    return time.perf_counter() - start


def ingest(url: str, items: list[dict[str, Any]], batch: int) -> float:
    return ingest_cpu(url, items, batch)[0]


def ingest_cpu(url: str, items: list[dict[str, Any]],
               batch: int) -> tuple[float, float, float | None]:
    """(elapsed seconds, this process's CPU seconds, the PostgreSQL server process's CPU
    seconds, or None when it cannot be read: not PostgreSQL, or not on this machine)."""
    engine = revrules.Engine(revrules.load(RULES))
    with Store.open(url) as store:
        store.use(engine)
        server = _server_pid(store)
        server_before = _process_cpu(server)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(items), batch):
            store.apply_many(engine, [(n, e) for n, e in enumerate(items[i:i + batch], i + 1)],
                             source="bench")
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        server_after = _process_cpu(server)
        served = None if server_before is None or server_after is None \
            else server_after - server_before
        return elapsed, cpu, served


def _server_pid(store: Store) -> int | None:
    if store.db.dialect != "postgresql":
        return None
    return int(store.db.execute("SELECT pg_backend_pid()")[0][0])


def _process_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux /proc), None if unreadable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def state_size(url: str) -> tuple[int, int, int]:
    with Store.open(url) as store:
        rows = store.db.execute("SELECT COUNT(*), SUM(LENGTH(body)) FROM subscriptions")
        live = store.db.execute("SELECT COUNT(*) FROM subscriptions WHERE status NOT IN "
                                "('canceled')")
        return int(rows[0][0]), int(rows[0][1] or 0), int(live[0][0])


def _segments(items: list[dict[str, Any]], workers: int) -> list[Any]:
    """The log cut at each tick: per segment, each worker's events (by subscription)."""
    out: list[Any] = []
    current: list[list[dict[str, Any]]] = [[] for _ in range(workers)]
    for item in items:
        if item["type"] == "tick":
            out.append((current, item))
            current = [[] for _ in range(workers)]
        else:
            key = zlib.crc32(str(item.get("subscription")).encode()) % workers
            current[key].append(item)
    out.append((current, None))
    return out


def _writer(url: str, me: int, segments: list[Any], barrier: Any, times: Any) -> None:
    engine = revrules.Engine(revrules.load(RULES))
    with Store.open(url) as store:
        store.use(engine)
        barrier.wait()
        start = time.monotonic()
        for mine, tick in segments:
            for event in mine[me]:
                store.apply(engine, event)
            barrier.wait()
            if tick is not None and me == 0:
                store.apply(engine, tick)
            barrier.wait()
        times[me] = (start, time.monotonic())


def parallel(url: str, items: list[dict[str, Any]], workers: int) -> float:
    with Store.open(url) as store:
        store.use(revrules.Engine(revrules.load(RULES)))
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    times = context.Manager().dict()
    segments = _segments(items, workers)
    procs = [context.Process(target=_writer, args=(url, w, segments, barrier, times))
             for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"writer failed with {proc.exitcode}")
    spans = list(times.values())
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _pg_schema(base: str, name: str) -> str:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')  # a fixed name
    return base + ("&" if "?" in base else "?") + f"schema={name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--postgres", default=os.environ.get("REVRULES_TEST_POSTGRES"))
    parser.add_argument("--months", type=int, default=3,
                        help="how many months the log covers (default 3)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="in-memory and SQLite runs, interleaved (medians; default 3)")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count = args.events or (1000 if args.quick else 5000)
    items = log_of(count, args.months)
    count = len(items)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # interleaved, medians: the in-memory run and the SQLite ingests vary by ±20%
        # from run to run on a shared machine (the commits' fsync most of all)
        runs = [(in_memory(items),
                 ingest(f"sqlite:///{tmp}/single{r}.db", items, 1),
                 ingest(f"sqlite:///{tmp}/batched{r}.db", items, args.batch))
                for r in range(args.repeat)]
    memory, single_s, batched_s = (statistics.median(column) for column in zip(*runs, strict=True))

    def report(label: str, seconds: float) -> None:
        rows.append((label, seconds))
        print(f"{label:<38} {count / seconds:>9.0f} events/s  {seconds / memory:>6.2f}x "
              "in-memory", flush=True)

    ticks = sum(1 for e in items if e["type"] == "tick")
    print(f"{count} events of a generated streaming.rr log over {args.months} months "
          f"({ticks} ticks), Python {sys.version.split()[0]}")
    report("in-memory eval (baseline)", memory)
    report("SQLite, 1 event per transaction", single_s)
    report(f"SQLite, {args.batch} events per transaction", batched_s)
    # each run's ratio compares an in-memory run with the ingest right after it, so a
    # machine that slows down or speeds up between runs moves both
    ratios = [b / m for m, _, b in runs]
    print(f"(medians of {args.repeat} interleaved runs; batched SQLite per run: "
          + ", ".join(f"{r:.2f}x" for r in ratios)
          + f"; median of the runs' ratios {statistics.median(ratios):.2f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        single = f"sqlite:///{tmp}/single.db"
        ingest(single, items, 1)
        half = f"sqlite:///{tmp}/half.db"
        ingest(half, items[:count // 2], args.batch)
        for label, url in (("half the log", half), ("the whole log", single)):
            subs, size, live = state_size(url)
            print(f"state after {label}: {subs} subscription rows ({live} not canceled), "
                  f"{size / max(subs, 1):.0f} bytes each")
    if args.postgres:
        pg_items = items[:count if not args.quick else 600]
        one, client, server = ingest_cpu(_pg_schema(args.postgres, "bench_one"), pg_items, 1)
        four = parallel(_pg_schema(args.postgres, "bench_four"), pg_items, 4)
        scale = len(pg_items) / count
        report("PostgreSQL, 1 writer", one / scale)
        report("PostgreSQL, 4 writers", four / scale)
        print(f"PostgreSQL: 4 writers at {one / four:.2f}x the throughput of 1")
        if server is not None:
            # one writer alternates with its server process: when the two are busy all
            # the time, no number of writers can go past the machine's cores over one
            n = len(pg_items)
            busy = (client + server) / one
            print(f"PostgreSQL, 1 writer, per event: {one / n * 1e3:.2f} ms elapsed, "
                  f"{client / n * 1e3:.2f} ms writer CPU, {server / n * 1e3:.2f} ms server "
                  f"CPU: busy {busy:.0%} of the time, so {os.cpu_count()} cores give at "
                  f"most {(os.cpu_count() or 1) / busy:.2f}x with any number of writers")
        for name in ("bench_one", "bench_four"):
            _pg_schema(args.postgres, name)
    else:
        print("PostgreSQL: skipped (no --postgres URL, no REVRULES_TEST_POSTGRES)")


if __name__ == "__main__":
    main()
