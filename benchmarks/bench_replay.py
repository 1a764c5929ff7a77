"""Streaming and parallel replay: time per event and peak memory at 10k / 100k / 1M
events, and ``revrules replay --workers N``.

    python benchmarks/bench_replay.py [--sizes 10000,100000,1000000] [--workers 1,2,4]

Each figure is one ``revrules replay RULES LOG --format json`` run in a fresh process
(peak RSS from ``resource.getrusage(RUSAGE_CHILDREN)``, which counts the largest child,
so each run is its own child), on a log made by ``revrules generate`` of the bundled
ruleset (about 10.6 events per customer over 12 months, seed 7). Logs are cached in the
system's temporary folder. Never used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "rulesets" / "streaming.rr"
EVENTS_PER_CUSTOMER = 10.6  # what `revrules generate` makes over 12 months, measured


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    return env


def log_of(n_events: int) -> Path:
    """A generated log of about ``n_events`` events (cached)."""
    customers = max(1, round(n_events / EVENTS_PER_CUSTOMER))
    path = Path(tempfile.gettempdir()) / f"revrules-bench-{customers}c-12m-s7.jsonl"
    if not path.exists():
        part = path.with_suffix(".part")
        subprocess.run([sys.executable, "-m", "revrules", "generate", str(RULES),
                        "--customers", str(customers), "--months", "12", "--seed", "7",
                        "-o", str(part)], check=True, env=_env())
        part.replace(path)
    return path


def _lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def run_replay(log: Path, workers: int = 1) -> tuple[float, int]:
    """(seconds, peak RSS in bytes of the largest process) of one replay run, in a child
    that runs it and reports its own and its workers' peak."""
    code = ("import resource, sys, time\n"
            "from revrules.cli import main\n"
            "start = time.perf_counter()\n"
            "status = main(sys.argv[1:])\n"
            "took = time.perf_counter() - start\n"
            "own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            "print(took, max(own, kids) * 1024, file=sys.stderr)\n"
            "sys.exit(status)\n")
    args = [sys.executable, "-c", code, "replay", str(RULES), str(log), "--format", "json",
            "--workers", str(workers)]
    done = subprocess.run(args, env=_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    took, peak = done.stderr.strip().splitlines()[-1].split()
    return float(took), int(float(peak))


def case_replay_workers(n_workers: int, n_events: int) -> tuple[str, float]:
    """``revrules replay --workers N`` of a generated log of about ``n_events`` events:
    (label, seconds), the ruleset load and process start-up included."""
    log = log_of(n_events)
    seconds, _ = run_replay(log, n_workers)
    return f"replay --workers {n_workers}, {_lines(log):,} events", seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--workers-size", type=int, default=100_000)
    args = parser.parse_args(argv)
    empty = Path(tempfile.gettempdir()) / "revrules-bench-empty.jsonl"
    empty.write_text("", encoding="utf-8")
    startup, base_rss = run_replay(empty)  # the ruleset load, the report of nothing
    print(f"load and start-up: {startup:.2f} s, {base_rss / 2**20:.0f} MB")
    print(f"{'events':>10} {'seconds':>9} {'µs/event':>9} {'peak RSS MB':>12}")
    for size in (int(s) for s in args.sizes.split(",") if s):
        log = log_of(size)
        n = _lines(log)
        seconds, peak = run_replay(log)
        per_event = (seconds - startup) / n * 1e6
        print(f"{n:>10,} {seconds:>9.2f} {per_event:>9.1f} {peak / 2**20:>12.0f}")
    print()
    for workers in (int(w) for w in args.workers.split(",") if w):
        label, seconds = case_replay_workers(workers, args.workers_size)
        print(f"{label:<40} {seconds:8.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
