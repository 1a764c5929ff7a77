"""Engine speed against a hand-written Python baseline, measured in the same run.

    python benchmarks/bench_engine.py [--quick]
    python benchmarks/bench_engine.py --quote [--quick]   # only the quote cases

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


# -- Engine.quote: the pure decision path ----------------------------------------------
# Each case_quote_* function returns (label, µs per call); a runner imports them and
# divides by the baseline it timed in the same run (case_quote_baseline). They take the
# best of ``repeat`` runs (timeit's advice: on a shared machine the slower runs measure
# the other work, not this).


def best(fn: object, number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]

CUSTOMER = {"id": "c1", "country": "DE", "trials_used": 1}
CHECKOUT = {"id": "e1", "type": "checkout", "at": "2026-11-15", "subscription": "s1",
            "storefront": "web_eu", "plan": "premium_monthly", "customer": CUSTOMER}
_LOADED: dict[int, revrules.Engine] = {}


def streaming_with_rules(count: int) -> str:
    """streaming.rr with ``count`` more tax rates and ``count`` more route lines, each
    testing the customer's country, before the ones the benchmark customer matches."""
    text = (ROOT / "rulesets" / "streaming.rr").read_text("utf-8")
    rates = "".join(f'  rate {i % 20}% when customer.country == "X{i}"\n' for i in range(count))
    routes = "".join(f'  stripe when customer.country == "Y{i}"\n' for i in range(count))
    text = text.replace("tax vat {  # the first rate whose condition holds wins\n",
                        "tax vat {\n" + rates)
    return text.replace("route {  # first match wins: which PSP takes the charge\n",
                        "route {\n" + routes)


def engine_with_rules(count: int) -> revrules.Engine:
    if count not in _LOADED:
        text = streaming_with_rules(count) if count else (
            ROOT / "rulesets" / "streaming.rr").read_text("utf-8")
        _LOADED[count] = revrules.Engine(revrules.load_text(text, "streaming.rr"))
    return _LOADED[count]


def _baseline_call() -> dict[str, object]:
    return handwritten_checkout("web_eu", "web", "premium_monthly",
                                {"country": "DE", "trials_used": 1}, None,
                                dt.date(2026, 11, 15))


def case_quote_baseline(number: int = 5000, repeat: int = 7) -> tuple[str, float]:
    return "hand-written checkout decision (baseline)", best(_baseline_call, number, repeat)


def case_quote_checkout_event(number: int = 5000, repeat: int = 7) -> tuple[str, float]:
    engine = engine_with_rules(0)
    event = parse_event(CHECKOUT)
    engine.quote(event)  # the decision of (plan, storefront) is generated on first use
    return "Engine.quote checkout (parsed event)", best(lambda: engine.quote(event),
                                                           number, repeat)


def case_quote_checkout_wire(number: int = 5000, repeat: int = 7) -> tuple[str, float]:
    engine = engine_with_rules(0)
    engine.quote(CHECKOUT)
    return "Engine.quote checkout (wire dict)", best(lambda: engine.quote(CHECKOUT),
                                                        number, repeat)


def case_quote_reference(number: int = 2000, repeat: int = 7) -> tuple[str, float]:
    from revrules.quoting import reference_quote

    engine = engine_with_rules(0)
    event = parse_event(CHECKOUT)
    return "reference quote (the checkout transition)", best(
        lambda: reference_quote(engine, event), number, repeat)


def _rules_case(count: int, number: int, repeat: int) -> tuple[str, float]:
    engine = engine_with_rules(count)
    event = parse_event(CHECKOUT)
    engine.quote(event)
    return (f"Engine.quote, {count + 4} tax rates + {count + 5} route lines",
            best(lambda: engine.quote(event), number, repeat))


def case_quote_rules_8(number: int = 5000, repeat: int = 7) -> tuple[str, float]:
    return _rules_case(8, number, repeat)


def case_quote_rules_800(number: int = 5000, repeat: int = 7) -> tuple[str, float]:
    return _rules_case(800, number, repeat)


def _apply_rules_case(count: int, number: int, repeat: int) -> tuple[str, float]:
    engine = engine_with_rules(count)
    event = parse_event(CHECKOUT)
    empty = revrules.State()
    return (f"Engine.apply checkout, {count + 4} tax rates + {count + 5} route lines",
            best(lambda: engine.apply(empty, event), number, repeat))


def case_quote_apply_rules_8(number: int = 2000, repeat: int = 7) -> tuple[str, float]:
    return _apply_rules_case(8, number, repeat)


def case_quote_apply_rules_800(number: int = 2000, repeat: int = 7) -> tuple[str, float]:
    return _apply_rules_case(800, number, repeat)


QUOTE_CASES = (case_quote_baseline, case_quote_checkout_event, case_quote_checkout_wire,
               case_quote_reference, case_quote_rules_8, case_quote_rules_800,
               case_quote_apply_rules_8, case_quote_apply_rules_800)


def quote_table(quick: bool = False) -> list[tuple[str, float]]:
    """Every quote case, the baseline timed before and after the others (the lower of
    the two is the one divided by: a busy machine inflates the ratios, never hides them)."""
    scale = 25 if quick else 1
    rows = []
    for case in QUOTE_CASES:
        number = 5000 if case.__name__ != "case_quote_reference" and \
            "apply" not in case.__name__ else 2000
        rows.append(case(max(50, number // scale), 3 if quick else 7))
    rows.append(case_quote_baseline(max(50, 5000 // scale), 3 if quick else 7))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations (CI smoke)")
    parser.add_argument("--quote", action="store_true", help="only the Engine.quote cases")
    args = parser.parse_args(argv)
    if args.quote:
        rows = quote_table(args.quick)
        base = min(micros for name, micros in rows if "baseline" in name)
        print(f"Python {sys.version.split()[0]}; best of runs per case, baseline {base:.2f} µs")
        print(f"{'case':58} {'µs/call':>9} {'× baseline':>11}")
        for name, micros in rows:
            print(f"{name:58} {micros:9.2f} {micros / base:11.1f}")
        return 0
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
