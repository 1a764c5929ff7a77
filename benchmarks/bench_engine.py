"""Engine speed against a hand-written Python baseline, measured in the same run.

    python benchmarks/bench_engine.py [--quick]

Reports microseconds per call and the ratio to the baseline. The baseline is what a
billing engineer would write by hand for the same checkout decision on
streaming.rr (price lookup, trial eligibility, code promotion, inclusive VAT split,
PSP routing) with Decimal money: it prices and routes but keeps no state and emits
no revenue events, so the ratio for ``Engine.apply`` includes all of that work.
Never used as a timed assertion in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import timeit
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import revrules
from revrules.events import parse_event

ROOT = Path(__file__).resolve().parent.parent

PRICES = {("premium_monthly", "web_eu"): Decimal("12.99"),
          ("premium_monthly", "web_us"): Decimal("13.99")}
VAT = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "JP": Decimal("0.10")}
CENT = Decimal("0.01")


def handwritten_checkout(storefront: str, channel: str, plan: str, customer: dict[str, object],
                         code: str | None, day: dt.date) -> dict[str, object]:
    """The baseline: one checkout decision in plain Python."""
    price = PRICES[(plan, storefront)]
    reasons = []
    if customer.get("trials_used", 0) > 0:  # type: ignore[operator]
        reasons.append("trial_ok: trial already used")
    if channel == "telecom":
        reasons.append("trial_ok: no trials via carrier")
    discount = Decimal(0)
    if code == "BF2026" and dt.date(2026, 11, 27) <= day <= dt.date(2026, 12, 1):
        discount = (price * Decimal("0.5")).quantize(CENT, ROUND_HALF_EVEN)
    amount = price - discount
    rate = VAT.get(customer.get("country"), Decimal(0))  # type: ignore[arg-type]
    tax = (amount * rate / (1 + rate)).quantize(CENT, ROUND_HALF_EVEN)
    if storefront == "web_eu" and amount >= Decimal("50.00"):
        psp = "adyen"
    elif channel == "web":
        psp = "stripe"
    else:
        psp = "carrier"
    return {"list": price, "discount": discount, "tax": tax, "net": amount - tax,
            "total": amount, "psp": psp, "reasons": reasons}


def measure(fn: object, number: int, repeat: int) -> float:
    times = timeit.repeat(fn, number=number, repeat=repeat)  # type: ignore[arg-type]
    return statistics.median(times) / number * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (CI smoke)")
    args = parser.parse_args(argv)
    number, repeat = (200, 3) if args.quick else (5000, 7)

    rules = revrules.load(ROOT / "rulesets" / "streaming.rr")
    engine = revrules.Engine(rules)
    empty = revrules.State()
    checkout = parse_event({
        "id": "e1", "type": "checkout", "at": "2026-11-15", "subscription": "s1",
        "storefront": "web_eu", "plan": "premium_monthly",
        "customer": {"id": "c1", "country": "DE", "trials_used": 1}})
    raw_checkout = {"id": "e1", "type": "checkout", "at": "2026-11-15", "subscription": "s1",
                    "storefront": "web_eu", "plan": "premium_monthly",
                    "customer": {"id": "c1", "country": "DE", "trials_used": 1}}
    paid = engine.apply(engine.apply(empty, checkout).state,
                        {"id": "e2", "type": "payment_succeeded", "at": "2026-11-15",
                         "subscription": "s1"}).state
    renewal = parse_event({"id": "e3", "type": "renewal_due", "at": "2026-12-15",
                           "subscription": "s1"})
    rule = next(t for r, t in rules.taxes[0] if t is not None)
    ctx = engine_ctx(engine, paid)

    base = measure(lambda: handwritten_checkout("web_eu", "web", "premium_monthly",
                                                {"country": "DE", "trials_used": 1}, None,
                                                dt.date(2026, 11, 15)), number, repeat)
    rows = [
        ("hand-written checkout decision (baseline)", base),
        ("compiled rule condition (tax vat, one call)", measure(lambda: rule(ctx), number * 4,
                                                                repeat)),
        ("Engine.apply checkout (parsed event)", measure(lambda: engine.apply(empty, checkout),
                                                         number, repeat)),
        ("Engine.apply checkout (wire dict)", measure(lambda: engine.apply(empty, raw_checkout),
                                                      number, repeat)),
        ("Engine.apply renewal_due", measure(lambda: engine.apply(paid, renewal), number,
                                             repeat)),
    ]
    print(f"Python {sys.version.split()[0]}; median of {repeat} runs × {number}")
    print(f"{'case':48} {'µs/call':>9} {'× baseline':>11}")
    for name, micros in rows:
        print(f"{name:48} {micros:9.2f} {micros / base:11.1f}")
    return 0


def engine_ctx(engine: revrules.Engine, state: revrules.State) -> object:
    from revrules.engine import _Tx

    event = parse_event({"id": "x", "type": "tick", "at": "2026-12-01"})
    return _Tx(engine, state, event).ctx(state.subscriptions["s1"])


if __name__ == "__main__":
    raise SystemExit(main())
