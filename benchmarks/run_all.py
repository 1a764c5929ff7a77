"""Every benchmark in one run, as one table of ratios to a hand-written baseline.

    python benchmarks/run_all.py            # the full run (eval up to 1M events, load 1-8x)
    python benchmarks/run_all.py --quick    # small sizes, a few seconds: what CI runs
    python benchmarks/run_all.py --quick --json out.json
    python benchmarks/run_all.py --quick --write-baseline   # rewrite benchmarks/baseline.json

Each row is a case, its value and unit, and its ratio to the baseline timed in the
same run: ``bench_engine.handwritten_checkout``, one checkout decision written by
hand in Decimal Python. A ratio is the case's time per operation (per call, per
event, per load) divided by the baseline's time per call, so a slower or faster
machine moves both alike. Times are the best of several repeats, which is what a
loaded machine disturbs least.

The cases:

- ``quote``, ``quote (parsed event)``, ``apply checkout``, ``apply renewal``:
  ``Engine.quote`` and ``Engine.apply`` on ``rulesets/streaming.rr``, the checkout
  from a wire dict (validation included) unless marked. The other benchmark modules
  (``bench_engine.py --quote``, ``bench_apply.py``, ``bench_replay.py``,
  ``bench_store.py``) time more variants on their own.
- ``eval N events``: ``revrules eval`` in a child process on a generated log of N
  events of the bundled ruleset (10k, 100k, and 1M in the full run), its JSON output
  included; the value is events per second, net of the child's start-up (timed on a
  one-event log), with the child's peak RSS (``os.wait4``) beside it.
- ``load K×``: ``revrules.load_text`` of ``big_ruleset.big_ruleset(K)`` (about
  10,000·K rules), parse, check (with lint) and compile.
- ``replay, N workers``: ``revrules replay --workers N`` on a generated log; "not
  available" while the command has no ``--workers``.

The guard (``tests/test_benchmarks_guard.py``) runs ``--quick`` and compares each
ratio with ``benchmarks/baseline.json`` (ratios only, never times): a ratio more than
three times its committed value fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
RULES = ROOT / "rulesets" / "streaming.rr"
BASELINE_FILE = HERE / "baseline.json"
#: a case fails the guard when its ratio is more than this times the committed one
TOLERANCE = 3.0

sys.path.insert(0, str(HERE))
if (ROOT / "src").is_dir():
    sys.path.insert(0, str(ROOT / "src"))

import revrules  # noqa: E402
from revrules.events import parse_event  # noqa: E402
from big_ruleset import big_ruleset, count_rules  # noqa: E402
from bench_engine import handwritten_checkout  # noqa: E402

Row = dict[str, Any]


# -- plumbing ------------------------------------------------------------------------
def best_micros(fn: Callable[[], object], repeat: int, slice_seconds: float = 0.002) -> float:
    """The best of ``repeat`` runs, in µs per call. Each run makes as many calls as fit
    in about ``slice_seconds``: a short run often goes by without another process
    taking the core, so the best run shows the uncontended time, for a 2 µs baseline
    and a 100 µs apply alike."""
    once = min(timeit.repeat(fn, number=1, repeat=3))
    number = max(1, int(slice_seconds / max(once, 1e-7)))
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def row(case: str, value: float | None, unit: str, micros: float | None, base: float,
        note: str = "", guard: bool = True) -> Row:
    ratio = None if micros is None else micros / base
    return {"case": case, "value": value, "unit": unit, "ratio": ratio, "note": note,
            "guard": guard and ratio is not None}


def unavailable(case: str, why: str) -> Row:
    return {"case": case, "value": None, "unit": "", "ratio": None,
            "note": f"not available: {why}", "guard": False}


# -- the engine cases ----------------------------------------------------------------
CHECKOUT = {"id": "e1", "type": "checkout", "at": "2026-11-15", "subscription": "s1",
            "storefront": "web_eu", "plan": "premium_monthly",
            "customer": {"id": "c1", "country": "DE", "trials_used": 1}}


def engine_cases(repeat: int, base: float) -> list[Row]:
    rules = revrules.load(RULES)
    engine = revrules.Engine(rules)
    empty = revrules.State()
    paid = engine.apply(engine.apply(empty, CHECKOUT).state, {
        "id": "e2", "type": "payment_succeeded", "at": "2026-11-15",
        "subscription": "s1"}).state
    renewal = {"id": "e3", "type": "renewal_due", "at": "2026-12-15", "subscription": "s1"}
    parsed = parse_event(CHECKOUT)
    cases: dict[str, Callable[[], object]] = {
        "quote": lambda: engine.quote(CHECKOUT),
        "quote (parsed event)": lambda: engine.quote(parsed),
        "apply checkout": lambda: engine.apply(empty, CHECKOUT),
        "apply renewal": lambda: engine.apply(paid, renewal),
    }
    rows = []
    for case, fn in cases.items():
        micros = best_micros(fn, repeat)
        rows.append(row(case, micros, "µs/call", micros, base))
    return rows


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "revrules", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    if (ROOT / "src").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_child(command: list[str], wall: bool = False) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, exit status) of a child process whose output is
    discarded, both its own (``os.wait4``). The seconds are CPU time, user and system,
    which a machine busy with other work disturbs least; with ``wall``, elapsed time
    (for parallel workers, whose CPU time the child's includes)."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env=_env(), cwd=ROOT)
    assert child.stderr is not None
    child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start if wall else usage.ru_utime + usage.ru_stime
    child.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in kilobytes on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return seconds, usage.ru_maxrss * scale / 2**20, child.returncode


def event_log(folder: Path, events: int) -> Path:
    """A generated log of exactly ``events`` events of the bundled ruleset (the first
    ones of a longer generated log: a prefix of a log is a log)."""
    path = folder / f"events-{events}.jsonl"
    if path.exists():
        return path
    customers = max(1, math.ceil(events / 15 * 1.15))  # about 15 events per customer
    full = folder / f"generated-{customers}.jsonl"
    subprocess.run(_cli("generate", str(RULES), "--customers", str(customers), "--months",
                        "24", "--seed", "1", "-o", str(full)), check=True, env=_env(),
                   cwd=ROOT, stdout=subprocess.DEVNULL)
    with full.open("rb") as source, path.open("wb") as target:
        for number, line in enumerate(source):
            if number >= events:
                break
            target.write(line)
    full.unlink()
    return path


def eval_cases(sizes: list[int], repeat: int, base: float, folder: Path) -> list[Row]:
    start_up = min(run_child(_cli("eval", str(RULES), str(event_log(folder, 1))))[0]
                   for _ in range(repeat))
    rows = []
    for size in sizes:
        log = event_log(folder, size)
        runs = [run_child(_cli("eval", str(RULES), str(log))) for _ in range(repeat)]
        seconds = min(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        if any(r[2] not in (0, 1) for r in runs):
            rows.append(unavailable(f"eval {size:,} events", "revrules eval failed"))
            continue
        net = max(seconds - start_up, 1e-9)
        rate, note = size / net, f"peak RSS {rss:,.0f} MB"
        rows.append(row(f"eval {size:,} events", rate, "events/s", 1e6 / rate, base, note))
        rows.append(row(f"eval {size:,} events, peak RSS", rss, "MB", None, base,
                        guard=False))
    return rows


def replay_cases(size: int, workers: list[int], repeat: int, base: float,
                 folder: Path) -> list[Row]:
    help_text = subprocess.run(_cli("replay", "--help"), capture_output=True, text=True,
                               env=_env(), cwd=ROOT).stdout
    if "--workers" not in help_text:
        return [unavailable(f"replay {size:,} events, {n} worker{'s' if n > 1 else ''}",
                            "revrules replay has no --workers") for n in workers]
    log = event_log(folder, size)
    rows = []
    for n in workers:
        case = f"replay {size:,} events, {n} worker{'s' if n > 1 else ''}"
        runs = [run_child(_cli("replay", str(RULES), str(log), "--workers", str(n),
                               "--format", "json"), wall=True) for _ in range(repeat)]
        if any(r[2] not in (0, 1) for r in runs):
            rows.append(unavailable(case, "revrules replay --workers failed"))
            continue
        seconds = min(r[0] for r in runs)
        rows.append(row(case, size / seconds, "events/s", seconds / size * 1e6, base,
                        f"elapsed time; peak RSS {max(r[1] for r in runs):,.0f} MB",
                        guard=False))  # process start-up and the machine's other work
    return rows


# -- load ----------------------------------------------------------------------------
def load_cases(scales: list[float], repeat: int, base: float) -> list[Row]:
    rows = []
    for scale in scales:
        text = big_ruleset(scale, 1)
        rules = sum(count_rules(text).values())
        seconds = math.inf
        for _ in range(repeat):
            start = time.process_time()  # CPU time: what other processes disturb least
            revrules.load_text(text, "big.rr")
            seconds = min(seconds, time.process_time() - start)
        rows.append(row(f"load {scale:g}×", seconds, "s", seconds * 1e6, base,
                        f"{rules:,} rules, {len(text.splitlines()):,} lines, "
                        f"{seconds / rules * 1e6:,.0f} µs/rule"))
    return rows


# -- the run -------------------------------------------------------------------------
def run(quick: bool, max_events: int = 1_000_000, max_scale: float = 8) -> dict[str, Any]:
    repeat = 40 if quick else 100
    base = best_micros(lambda: handwritten_checkout(
        "web_eu", "web", "premium_monthly", {"country": "DE", "trials_used": 1}, None,
        __import__("datetime").date(2026, 11, 15)), repeat)
    rows = [row("hand-written checkout (baseline)", base, "µs/call", base, base,
                guard=False)]
    rows += engine_cases(repeat, base)
    with tempfile.TemporaryDirectory(prefix="revrules-bench-") as tmp:
        folder = Path(tmp)
        if quick:
            rows += eval_cases([3_000], 2, base, folder)
            rows += load_cases([0.02, 0.05], 2, base)
            rows += replay_cases(2_000, [1, 2, 4], 1, base, folder)
        else:
            rows += eval_cases([n for n in (10_000, 100_000, 1_000_000) if n <= max_events],
                               1, base, folder)
            rows += load_cases([k for k in (1, 2, 4, 8) if k <= max_scale], 2, base)
            rows += replay_cases(min(100_000, max_events), [1, 2, 4], 1, base, folder)
    return {"python": sys.version.split()[0], "quick": quick, "rows": rows}


def render(result: dict[str, Any]) -> str:
    lines = [f"Python {result['python']}; {'quick' if result['quick'] else 'full'} run; "
             "best of repeats; ratio = time per operation / baseline time per call",
             f"{'case':40} {'value':>14} {'unit':9} {'× baseline':>12}  note"]
    for r in result["rows"]:
        value = "—" if r["value"] is None else (
            f"{r['value']:,.0f}" if r["value"] >= 1000 else f"{r['value']:.3g}")
        ratio = "—" if r["ratio"] is None else (
            f"{r['ratio']:,.0f}" if r["ratio"] >= 100 else f"{r['ratio']:.1f}")
        lines.append(f"{r['case']:40} {value:>14} {r['unit']:9} {ratio:>12}  {r['note']}")
    return "\n".join(lines)


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The ratios the guard compares, by case."""
    return {r["case"]: r["ratio"] for r in result["rows"] if r["guard"]}


def regressions(found: dict[str, float], committed: dict[str, float],
                tolerance: float = TOLERANCE) -> list[str]:
    """The cases whose ratio is more than ``tolerance`` times the committed one."""
    return [f"{case}: {found[case]:.3g}× baseline, committed {committed[case]:.3g}× "
            f"(limit {committed[case] * tolerance:.3g}×)"
            for case in sorted(found) if case in committed
            and found[case] > committed[case] * tolerance]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("--max-events", type=int, default=1_000_000, metavar="N",
                        help="full run: the largest eval log (default 1,000,000)")
    parser.add_argument("--max-scale", type=float, default=8, metavar="K",
                        help="full run: the largest ruleset, K×10,000 rules (default 8)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows here")
    parser.add_argument("--write-baseline", action="store_true",
                        help=f"write the ratios to {BASELINE_FILE.name} (use with --quick)")
    args = parser.parse_args(argv)
    result = run(args.quick, args.max_events, args.max_scale)
    print(render(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", "utf-8")
    if args.write_baseline:
        committed = {"about": "ratios to the in-run hand-written baseline of "
                              "`python benchmarks/run_all.py --quick`; the guard fails a "
                              f"ratio more than {TOLERANCE:g}x its value here",
                     "ratios": {k: round(v, 3) for k, v in sorted(ratios(result).items())}}
        BASELINE_FILE.write_text(json.dumps(committed, indent=1, ensure_ascii=False) + "\n",
                                 "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
