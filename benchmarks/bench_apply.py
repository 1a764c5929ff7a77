"""The stateful path against the hand-written checkout, and `revrules eval` throughput.

    python benchmarks/bench_apply.py [--quick] [--events N]

Three cases, each a function returning ``(label, value)`` for the all-benchmarks table:

* :func:`case_apply_checkout`: ``Engine.apply`` of a checkout (a wire dict, on an empty
  state), as a multiple of :func:`bench_engine.handwritten_checkout` timed in the same
  run;
* :func:`case_apply_renewal`: ``Engine.apply`` of a ``renewal_due`` (parsed) on a paid
  subscription, the same way;
* :func:`case_eval_throughput`: ``revrules eval`` of a generated log of ``n_events``
  events, in events per second of CPU time, JSON output included. It runs the command
  in a child process (its output to ``/dev/null``) and subtracts the CPU time of the
  same command on an empty log (interpreter start and ruleset load).

Times are CPU time (``time.process_time``, ``RUSAGE_CHILDREN``), the median of several
runs, so that other work on the machine disturbs them less. Never a timed assertion
in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import revrules  # noqa: E402
from bench_engine import handwritten_checkout  # noqa: E402
from revrules.events import parse_event  # noqa: E402

RULES = ROOT / "rulesets" / "streaming.rr"
CHECKOUT = {"id": "e1", "type": "checkout", "at": "2026-11-15", "subscription": "s1",
            "storefront": "web_eu", "plan": "premium_monthly",
            "customer": {"id": "c1", "country": "DE", "trials_used": 1}}
QUICK = {"number": 200, "repeat": 3}
FULL = {"number": 3000, "repeat": 7}


def _micros(fn: Callable[[], object], number: int, repeat: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat, timer=time.process_time)
    return statistics.median(times) / number * 1e6


def _baseline(number: int, repeat: int) -> float:
    day = dt.date(2026, 11, 15)
    return _micros(lambda: handwritten_checkout(
        "web_eu", "web", "premium_monthly", {"country": "DE", "trials_used": 1}, None, day),
        number, repeat)


def _engine() -> revrules.Engine:
    return revrules.Engine(revrules.load(RULES))


def apply_checkout_micros(number: int = FULL["number"],
                          repeat: int = FULL["repeat"]) -> tuple[float, float]:
    """(µs per checkout ``apply``, µs per hand-written checkout), timed interleaved."""
    engine, empty = _engine(), revrules.State()
    base = _baseline(number, repeat)
    micros = _micros(lambda: engine.apply(empty, CHECKOUT), number, repeat)
    return micros, (base + _baseline(number, repeat)) / 2


def apply_renewal_micros(number: int = FULL["number"],
                         repeat: int = FULL["repeat"]) -> tuple[float, float]:
    """(µs per ``renewal_due`` ``apply``, µs per hand-written checkout)."""
    engine = _engine()
    state = engine.apply(revrules.State(), CHECKOUT).state
    state = engine.apply(state, {"id": "e2", "type": "payment_succeeded",
                                 "at": "2026-11-15", "subscription": "s1"}).state
    renewal = parse_event({"id": "e3", "type": "renewal_due", "at": "2026-12-15",
                           "subscription": "s1"})
    assert engine.apply(state, renewal).ok
    base = _baseline(number, repeat)
    micros = _micros(lambda: engine.apply(state, renewal), number, repeat)
    return micros, (base + _baseline(number, repeat)) / 2


def case_apply_checkout(quick: bool = False) -> tuple[str, float]:
    """``Engine.apply`` checkout (wire dict) as a multiple of the hand-written function."""
    micros, base = apply_checkout_micros(**(QUICK if quick else FULL))
    return "Engine.apply checkout (wire dict), × hand-written", micros / base


def case_apply_renewal(quick: bool = False) -> tuple[str, float]:
    """``Engine.apply`` renewal_due as a multiple of the hand-written function."""
    micros, base = apply_renewal_micros(**(QUICK if quick else FULL))
    return "Engine.apply renewal_due, × hand-written", micros / base


def write_log(path: Path, n_events: int, seed: int = 1) -> int:
    """A generated log of (at most) ``n_events`` events of the bundled ruleset."""
    ruleset = revrules.load(RULES)
    customers = max(1, -(-n_events // 10))  # about 11 events per customer-year
    from revrules.generator import generate
    from revrules.wire import dumps

    events = generate(ruleset, customers, 12, seed)[:n_events]
    with path.open("w", encoding="utf-8") as handle:
        for event in events:
            handle.write(dumps(event) + "\n")
    return len(events)


def _child_cpu(args: list[str]) -> float:
    """CPU seconds (user + system) of running ``python -m revrules ARGS``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the revrules this process imported (its src/ folder), in the child too
    env = dict(os.environ, PYTHONPATH=str(Path(revrules.__file__).resolve().parent.parent))
    with open(os.devnull, "w") as sink:
        subprocess.run([sys.executable, "-m", "revrules", *args], stdout=sink, env=env,
                       check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def eval_throughput(n_events: int, repeat: int = 3) -> dict[str, Any]:
    """``revrules eval`` of a generated log: events/s of CPU time, startup subtracted."""
    with tempfile.TemporaryDirectory() as tmp:
        log, empty = Path(tmp) / "log.jsonl", Path(tmp) / "empty.jsonl"
        n = write_log(log, n_events)
        empty.write_text("")
        fixed = statistics.median(_child_cpu(["eval", str(RULES), str(empty)])
                                  for _ in range(repeat))
        total = statistics.median(_child_cpu(["eval", str(RULES), str(log)])
                                  for _ in range(repeat))
    work = max(total - fixed, 1e-9)
    return {"events": n, "startup_s": fixed, "total_s": total,
            "events_per_s": n / work, "us_per_event": work / n * 1e6}


def case_eval_throughput(n_events: int = 10_000) -> tuple[str, float]:
    """``revrules eval`` events per second (CPU time, JSON out included, startup not)."""
    figures = eval_throughput(n_events)
    return f"revrules eval, events/s ({figures['events']:,} events)", figures["events_per_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (CI smoke)")
    parser.add_argument("--events", type=int, default=10_000, help="eval log size")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    checkout, base_c = apply_checkout_micros(**sizes)
    renewal, base_r = apply_renewal_micros(**sizes)
    figures = eval_throughput(2_000 if args.quick else args.events)
    print(f"Python {sys.version.split()[0]}; CPU time, medians")
    print(f"{'case':44} {'µs':>8} {'× hand-written':>15}")
    print(f"{'hand-written checkout (baseline)':44} {base_c:8.2f} {1:15.1f}")
    print(f"{'Engine.apply checkout (wire dict)':44} {checkout:8.2f} {checkout / base_c:15.1f}")
    print(f"{'Engine.apply renewal_due':44} {renewal:8.2f} {renewal / base_r:15.1f}")
    print(f"revrules eval, {figures['events']:,} events: {figures['events_per_s']:,.0f} "
          f"events/s ({figures['us_per_event']:.1f} µs/event; startup and load "
          f"{figures['startup_s']:.2f} s of {figures['total_s']:.2f} s CPU)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
