"""Ledger and report speed on a generated log, beside the engine's own replay time.

    python benchmarks/bench_ledger.py [--customers N] [--months M] [--seed S]

Generates a log with ``revrules.generator`` (reproducible), replays it through the
engine, folds the ledger from the revenue events, derives the rows and renders each
report; prints the seconds each step takes. Never used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import revrules
from revrules import Engine, Ledger
from revrules.generator import generate
from revrules.growth import Growth, growth, render_growth
from revrules.reports import render_csv, render_html, render_json, render_table

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rules = revrules.load(ROOT / "rulesets" / "streaming.rr")

    def timed(label: str, work):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        result = work()
        print(f"{label:<22} {time.perf_counter() - start:8.3f} s")
        return result

    log = timed("generate", lambda: generate(rules, args.customers, args.months, args.seed))
    _, outcomes = timed("engine replay", lambda: Engine(rules).run(log))
    events = [e for o in outcomes if o.ok for e in o.events]
    print(f"{len(log)} input events, {len(events)} revenue events")
    ledger = timed("ledger fold", lambda: Ledger.fold(events, rules))
    timed("ledger rows", ledger.rows)
    timed("render table", lambda: render_table(ledger, rules, outcomes))
    timed("render json", lambda: render_json(ledger, rules, outcomes))
    timed("render csv", lambda: render_csv(ledger))
    timed("render html", lambda: render_html(ledger, rules, outcomes))
    g = timed("growth fold", lambda: growth(events, rules))
    timed("growth fold outcomes", lambda: Growth.fold(outcomes, rules))
    timed("growth render", lambda: render_growth(g))


if __name__ == "__main__":
    main()
