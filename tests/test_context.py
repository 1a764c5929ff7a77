"""One decimal context everywhere: the caller's decimal context never changes a result.

Every Decimal operation of revrules runs under ``runtime.CONTEXT``. A caller (or a
process) with a hostile context — 3 digits, rounding toward -inf, every signal
trapped, a tiny exponent range, lower-case exponents — gets byte-identical output
from every command and every API function, and gets its own context back unchanged.
"""

from __future__ import annotations

import base64
import decimal
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import formatter, growth, reconcile, reports, whatif, wire
from revrules.explain import explain, render_explanation
from revrules.generator import generate
from revrules.ledger import Figures, Ledger
from revrules.runtime import CONTEXT, in_context

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
PRICE_RISE = ROOT / "examples" / "streaming-price-rise.rr"
DATA = ROOT / "tests" / "data"

SIGNALS = [decimal.Clamped, decimal.DivisionByZero, decimal.Inexact, decimal.InvalidOperation,
           decimal.Overflow, decimal.Rounded, decimal.Subnormal, decimal.Underflow,
           decimal.FloatOperation]


def hostile(kind: str = "prec3") -> decimal.Context:
    """A context under which almost any Decimal operation rounds wrongly or raises."""
    if kind == "prec3":  # the attack's context: prec=3, ROUND_FLOOR, every trap on
        return decimal.Context(prec=3, rounding=decimal.ROUND_FLOOR, Emin=-5, Emax=5,
                               capitals=0, clamp=1, traps=SIGNALS)
    # any operation whose result is not a single digit raises
    return decimal.Context(prec=1, rounding=decimal.ROUND_UP, Emin=0, Emax=0, capitals=0,
                           clamp=1, traps=SIGNALS)


# Fractional percentages everywhere a percentage is divided by 100.
FRACTIONAL = STREAMING.read_text("utf-8").replace("commission 15%", "commission 17.65%") \
    .replace("percent 50 off", "percent 33.33 off").replace("rate 19%", "rate  19.25%")  # not canonical: fmt has work


# -- every command, in a process whose context is hostile before revrules is imported -----

DRIVER = r'''
import base64, decimal, io, json, os, sys
mode, root, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
SIGNALS = [decimal.Clamped, decimal.DivisionByZero, decimal.Inexact, decimal.InvalidOperation,
           decimal.Overflow, decimal.Rounded, decimal.Subnormal, decimal.Underflow,
           decimal.FloatOperation]
if mode == "prec3":
    ctx = dict(prec=3, rounding=decimal.ROUND_FLOOR, Emin=-5, Emax=5)
elif mode == "tiny":
    ctx = dict(prec=1, rounding=decimal.ROUND_UP, Emin=0, Emax=0)
if mode != "normal":
    decimal.setcontext(decimal.Context(capitals=0, clamp=1, traps=SIGNALS, **ctx))
    for key, value in ctx.items():  # the template of every new thread's context too
        setattr(decimal.DefaultContext, key, value)
    decimal.DefaultContext.traps.update({s: True for s in SIGNALS})
    assert "revrules" not in sys.modules
out_dir = os.path.join(root, mode)
os.makedirs(out_dir)
from revrules.cli import main
results = []
real = sys.stdout
for argv in spec["commands"]:
    argv = [a.replace("{out}", out_dir) for a in argv]
    out, err = io.BytesIO(), io.BytesIO()
    sys.stdout = io.TextIOWrapper(out, encoding="utf-8", newline="\n")
    sys.stderr = io.TextIOWrapper(err, encoding="utf-8", newline="\n")
    status = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    results.append([status, base64.b64encode(out.getvalue()).decode(),
                    base64.b64encode(err.getvalue()).decode()])
sys.stdout = real
files = {}
for name in sorted(os.listdir(out_dir)):
    with open(os.path.join(out_dir, name), "rb") as handle:
        files[name] = base64.b64encode(handle.read()).decode()
real.write(json.dumps({"results": results, "files": files}))
'''


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("context-inputs")
    rules = revrules.load(STREAMING)
    log = generate(rules, 25, 8, seed=3)
    events = folder / "events.jsonl"
    events.write_text("".join(wire.dumps(e) + "\n" for e in log), "utf-8")
    fractional = folder / "fractional.rr"
    fractional.write_text(FRACTIONAL, "utf-8")
    explained = next(e["id"] for e in log if e["type"] == "checkout")
    return {"events": str(events), "fractional": str(fractional), "explained": explained}


def commands(i: dict[str, str]) -> list[list[str]]:
    rr, frac, log = str(STREAMING), i["fractional"], i["events"]
    recon = str(DATA / "reconcile.jsonl")
    return [
        ["check", rr, frac],
        ["eval", rr, log, "--state-out", "{out}/state.json"],
        ["eval", frac, log, "--state-out", "{out}/state-fractional.json"],
        ["eval", rr, str(ROOT / "examples" / "events.jsonl"), "--state-in", "{out}/state.json"],
        ["fmt", frac],
        ["fmt", "--check", rr, frac],
        ["replay", rr, log],
        ["replay", rr, log, "--format", "json"],
        ["replay", frac, log, "--format", "json"],
        ["replay", rr, log, "--format", "csv", "--html", "{out}/report.html"],
        ["diff", rr, str(PRICE_RISE), log],
        ["diff", rr, frac, log, "--format", "json"],
        ["explain", rr, log, "--event", i["explained"]],
        ["explain", frac, log, "--event", i["explained"]],
        ["reconcile", rr, recon, "--settlements", str(DATA / "settlements.csv")],
        ["reconcile", rr, recon, "--format", "json"],
        ["growth", rr, log],
        ["growth", frac, log, "--format", "json"],
        ["generate", rr, "--customers", "8", "--months", "5", "--seed", "11"],
        ["generate", frac, "--customers", "8", "--months", "5", "-o", "{out}/generated.jsonl"],
    ]


def drive(mode: str, root: Path, argvs: list[list[str]]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(revrules.__file__).parent.parent)  # the tested source
    done = subprocess.run([sys.executable, "-c", DRIVER, mode, str(root),
                           json.dumps({"commands": argvs})],
                          capture_output=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    out_dir = str(root / mode)
    for entry in result["results"]:  # the only difference allowed: the output folder
        for k in (1, 2):
            entry[k] = base64.b64decode(entry[k]).decode("utf-8").replace(out_dir, "{out}")
    result["files"] = {k: base64.b64decode(v) for k, v in result["files"].items()}
    return result


@pytest.fixture(scope="module")
def normal_run(inputs: dict[str, str], tmp_path_factory: pytest.TempPathFactory
               ) -> dict[str, Any]:
    return drive("normal", tmp_path_factory.mktemp("normal"), commands(inputs))


@pytest.mark.parametrize("mode", ["prec3", "tiny"])
def test_every_command_is_byte_identical_under_a_hostile_context(
        mode: str, inputs: dict[str, str], normal_run: dict[str, Any],
        tmp_path: Path) -> None:
    argvs = commands(inputs)
    got = drive(mode, tmp_path, argvs)
    for argv, want, have in zip(argvs, normal_run["results"], got["results"], strict=True):
        assert have == want, f"revrules {' '.join(argv)} differs under the {mode} context"
    assert got["files"] == normal_run["files"]
    assert sorted(got["files"]) == ["generated.jsonl", "report.html", "state-fractional.json",
                                    "state.json"]


def test_the_normal_run_is_meaningful(normal_run: dict[str, Any]) -> None:
    """The compared runs do real work: every command succeeds and prints something."""
    statuses = [status for status, _, _ in normal_run["results"]]
    # fmt --check finds changes;
    # reconcile finds the gaps planted in its log
    assert statuses == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    assert all(out for _, out, _ in normal_run["results"][:-1])
    fractional = json.loads(normal_run["results"][8][1])
    assert fractional["totals"] != json.loads(normal_run["results"][7][1])["totals"]


# -- the API, in this process ----------------------------------------------------------


@pytest.fixture(scope="module")
def log(inputs: dict[str, str]) -> list[dict[str, Any]]:
    text = Path(inputs["events"]).read_text("utf-8")
    return [json.loads(line) for line in text.splitlines()]


def api_results(log: list[dict[str, Any]]) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Each public entry point with a deterministic text of its result."""
    rules = revrules.load(STREAMING)
    frac = revrules.load_text(FRACTIONAL, "fractional.rr")
    price_rise = revrules.load(PRICE_RISE)
    settlements_text = (DATA / "settlements.csv").read_text("utf-8").splitlines()
    recon_log = [json.loads(x) for x in (DATA / "reconcile.jsonl").read_text().splitlines()]
    done = reports.replay(frac, log)

    yield "load_text", lambda: wire.dumps([
        str(s.commission) for s in revrules.load_text(FRACTIONAL, "f.rr").model.storefronts])
    yield "check", lambda: repr(revrules.check(revrules.parse(FRACTIONAL)).model)
    yield "parse_event", lambda: repr(revrules.parse_event(
        {"id": "r", "type": "refund_requested", "at": "2027-01-01", "subscription": "s",
         "amount": "12.345"}))
    yield "Engine.run", lambda: [wire.outcome_to_json(o)
                                 for o in revrules.Engine(frac).run(log)[1]]
    yield "state_to_json", lambda: wire.state_to_json(revrules.Engine(frac).run(log)[0])
    yield "state_from_json", lambda: repr(wire.state_from_json(wire.state_to_json(done.state)))
    yield "to_json", lambda: [wire.to_json(o) for o in done.outcomes[:50]]
    yield "Ledger.fold", lambda: repr(Ledger.from_outcomes(done.outcomes, frac).totals())
    yield "Ledger.merge", lambda: repr((done.ledger + done.ledger).rows())
    yield "Ledger.by_month", lambda: repr(done.ledger.by_month())
    yield "Figures", lambda: repr([(f + f - f).proceeds for f in done.ledger.totals().values()])
    yield "replay", lambda: reports.render_json(reports.replay(frac, log).ledger)
    yield "render_table", lambda: reports.render_table(done.ledger, frac, done.outcomes)
    yield "render_csv", lambda: reports.render_csv(done.ledger)
    yield "render_html", lambda: reports.render_html(done.ledger, frac, done.outcomes)
    yield "ledger_to_wire", lambda: wire.dumps(reports.ledger_to_wire(done.ledger, frac))
    yield "diff", lambda: whatif.render_diff(whatif.diff(rules, price_rise, log))
    yield "diff_to_wire", lambda: wire.dumps(whatif.diff_to_wire(whatif.diff(rules, frac, log)))
    yield "ChargeChange.delta", lambda: repr([
        c.delta for s in whatif.diff(rules, frac, log).subscriptions for c in s.changes])
    yield "explain", lambda: render_explanation(explain(frac, log, log[0]["id"]))
    yield "reconcile", lambda: reconcile.render_reconciliation(reconcile.reconcile(
        frac, recon_log, reconcile.read_settlements(settlements_text)))
    yield "reconciliation_to_wire", lambda: wire.dumps(reconcile.reconciliation_to_wire(
        reconcile.reconcile(rules, recon_log)))
    yield "growth", lambda: growth.render_growth(growth.growth_of_outcomes(done.outcomes, frac))
    yield "growth_to_wire", lambda: wire.dumps(growth.growth_to_wire(
        growth.growth_of_outcomes(done.outcomes, frac)))
    yield "Conversion", lambda: repr([
        (c.trial_conversion, c.first_charge_conversion)
        for c in growth.growth_of_outcomes(done.outcomes, frac).conversions])
    yield "Cohort.share", lambda: repr([
        c.share(1) for c in growth.growth_of_outcomes(done.outcomes, frac).cohorts])
    yield "generate", lambda: wire.dumps(generate(frac, 6, 4, seed=2))
    yield "format_module", lambda: formatter.format_module(revrules.parse(FRACTIONAL))


@pytest.fixture(scope="module")
def api_normal(log: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: call() for name, call in api_results(log)}


@pytest.mark.parametrize("kind", ["prec3", "tiny"])
def test_api_results_do_not_depend_on_the_callers_context(
        kind: str, log: list[dict[str, Any]], api_normal: dict[str, Any]) -> None:
    context = hostile(kind)
    with decimal.localcontext(context) as mine:
        settings_before = repr(mine)
        for name, call in api_results(log):
            assert call() == api_normal[name], name
            # the caller's context object is back, with its settings and no flag raised
            assert decimal.getcontext() is mine, name
            assert repr(mine) == settings_before, name
            assert not any(mine.flags.values()), name


def test_fractional_percentages_are_exact(api_normal: dict[str, Any]) -> None:
    assert json.loads(api_normal["load_text"]) == ["0", "0", "0", "0.1765", "0", "0"]


def test_in_context_restores_the_callers_context_on_error() -> None:
    @in_context
    def fails() -> None:
        assert decimal.getcontext().prec == CONTEXT.prec
        raise KeyError("x")

    with decimal.localcontext(hostile()) as mine:
        with pytest.raises(KeyError):
            fails()
        assert decimal.getcontext() is mine and mine.prec == 3


def test_in_context_refuses_generator_functions() -> None:
    def lines() -> Iterator[int]:
        yield 1

    with pytest.raises(TypeError, match="generator"):
        in_context(lines)


def test_figures_arithmetic_is_exact_under_any_context() -> None:
    a = Figures(payments=1, gross=decimal.Decimal("12345.67"), commission=decimal.Decimal("0.01"))
    with decimal.localcontext(hostile("tiny")):
        total = a + a
        assert total.gross == decimal.Decimal("24691.34") and total.payments == 2
        assert (total - a) == a
        assert a.proceeds == decimal.Decimal("-0.01")


@settings(max_examples=12, deadline=None)
@given(prec=st.integers(1, 40),
       rounding=st.sampled_from([decimal.ROUND_FLOOR, decimal.ROUND_CEILING, decimal.ROUND_DOWN,
                                 decimal.ROUND_UP, decimal.ROUND_HALF_UP, decimal.ROUND_05UP]),
       traps=st.lists(st.sampled_from(SIGNALS), unique=True),
       emax=st.integers(0, 40))
def test_replay_under_random_contexts(prec: int, rounding: str, traps: list[type],
                                      emax: int) -> None:
    rules = revrules.load_text(FRACTIONAL, "fractional.rr")
    events = [json.loads(x) for x in (ROOT / "examples" / "events.jsonl").read_text().splitlines()
              if x.strip()]
    want = reports.render_json(reports.replay(rules, events).ledger, rules)
    context = decimal.Context(prec=prec, rounding=rounding, Emax=emax, Emin=-emax, traps=traps)
    with decimal.localcontext(context):
        rules = revrules.load_text(FRACTIONAL, "fractional.rr")
        assert reports.render_json(reports.replay(rules, events).ledger, rules) == want


def test_nested_entry_points_share_one_context() -> None:
    seen: list[decimal.Context] = []

    @in_context
    def inner() -> None:
        seen.append(decimal.getcontext())

    @in_context
    def outer() -> None:
        inner()
        inner()
        decimal.setcontext(hostile())  # something inside changes the context: not ours
        inner()

    with decimal.localcontext(hostile()) as mine:
        outer()
        assert decimal.getcontext() is mine and mine.prec == 3
    assert seen[0] is seen[1] and seen[0].prec == CONTEXT.prec
    assert seen[2] is not seen[0] and seen[2].prec == CONTEXT.prec
