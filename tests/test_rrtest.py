"""The .rrtest language and ``revrules test`` (docs/testing.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules.cli import main
from revrules.diagnostics import RulesetError
from revrules.events import EVENT_TYPES, parse_event
from revrules.rrtest import VERBS, event_text, parse_test
from revrules.rrtest_run import Suite, check_property, load_suite
from revrules.testing import event_sequences

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data" / "_seeded"
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")

HEAD = 'ruleset "streaming.rr"\n'


def diagnostics(text: str) -> list[str]:
    with pytest.raises(RulesetError) as info:
        parse_test(text, "t.rrtest")
    return [d.render(text) for d in info.value.diagnostics]


def suite(text: str) -> Suite:
    return Suite("t.rrtest", parse_test(text, str(ROOT / "rulesets" / "t.rrtest")), STREAMING)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["test", *args])
    out, err = capsys.readouterr()
    return code, out + err


# -- the language ------------------------------------------------------------------------


def test_every_event_type_has_a_verb() -> None:
    assert sorted(VERBS.values()) == sorted(EVENT_TYPES)


def test_event_lines_become_wire_events() -> None:
    test = parse_test(HEAD + '''scenario "all" {
  2027-01-01 checkout s1 plan premium_monthly at web_eu customer c1 { country "DE" trials_used 1 } code BF2026
  2027-01-02 pay s1 amount EUR 12.99 psp stripe reference r1 attempt 1
  2027-01-03T10:00:00+01:00 fail s1 reason card_declined
  2027-01-04 renew s1
  2027-01-05 notify s1 notification DID_RENEW subtype x
  2027-01-06 change s1 to basic_monthly
  2027-01-07 pause s1
  2027-01-08 resume s1
  2027-01-09 cancel s1
  2027-01-10 consent s1
  2027-01-11 decline s1
  2027-01-12 refund s1 amount 1.00 charge "s1:1" and cancel
  2027-01-13 credit s1 amount 5.00 reason goodwill
  tick 2027-01-14
  2027-01-15 tick id last
}''', "t.rrtest")
    events = [s.event for s in test.scenarios[0].steps]
    assert events[0] == {"id": "e1", "type": "checkout", "at": "2027-01-01", "subscription": "s1",
                         "plan": "premium_monthly", "storefront": "web_eu", "code": "BF2026",
                         "customer": {"id": "c1", "country": "DE", "trials_used": 1}}
    assert events[1] == {"id": "e2", "type": "payment_succeeded", "at": "2027-01-02",
                         "subscription": "s1", "amount": "12.99", "currency": "EUR",
                         "psp": "stripe", "reference": "r1", "attempt": 1}
    assert events[11] == {"id": "e12", "type": "refund_requested", "at": "2027-01-12",
                          "subscription": "s1", "amount": "1.00", "charge": "s1:1",
                          "cancel": True}
    assert events[-1] == {"id": "last", "type": "tick", "at": "2027-01-15"}
    assert {e["type"] for e in events if e} == set(EVENT_TYPES)
    for event in events:
        assert event is not None
        parse_event(event)  # every line is a valid wire event


@settings(max_examples=15, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(event_sequences(STREAMING, max_size=8))
def test_event_text_reads_back(events: list[dict[str, Any]]) -> None:
    body = "\n".join(f"  {event_text(e)}" for e in events)
    test = parse_test(HEAD + f'scenario "x" {{\n{body}\n}}\n', "t.rrtest")
    back = [s.event for s in test.scenarios[0].steps]
    assert [{k: v for k, v in e.items() if k != "id"} for e in back if e] == \
        [{k: v for k, v in e.items() if k != "id"} for e in events]


def test_syntax_error_has_place_caret_and_expected_words() -> None:
    [message] = diagnostics(HEAD + 'scenario "x" {\n  2027-01-01 checkout s1 plam p\n}\n')
    assert message == (
        "t.rrtest:3:26: error[syntax]: unexpected 'plam'; expected a date like 2027-02-01, an event "
        "field (plan, at, customer, code, amount, …), 'expect', 'tick' or '}'\n"
        "   |\n"
        " 3 |   2027-01-01 checkout s1 plam p\n"
        "   |                          ^^^^")


def test_unknown_figure_and_field_are_errors_with_a_suggestion() -> None:
    messages = diagnostics(HEAD + 'scenario "x" {\n  2027-01-01 pay s1\n'
                           '  expect event payment.succeeded { trial_days 3 }\n}\n'
                           'invariant decision.totl >= 0\n')
    assert messages[0].startswith("t.rrtest:4:36: error[rrtest]: a revenue event has no field "
                                  "'trial_days'")
    assert messages[1].startswith("t.rrtest:6:20: error[rrtest]: decision has no field 'totl' "
                                  "(did you mean 'total'?)")


def test_rows_must_fit_the_header() -> None:
    [message] = diagnostics(HEAD + 'examples "t" on 2027-01-01 {\n'
                            '  storefront | plan => total\n  web_eu => 1\n}\n')
    assert message.startswith("t.rrtest:4:3: error[rrtest]: the row has 1 + 1 cells; the header has "
                              "2 + 1")


def test_a_file_names_its_ruleset() -> None:
    [message] = diagnostics('invariant decision.total >= 0\n')
    assert message.startswith("t.rrtest:1:1: error[rrtest]: the file does not name the ruleset")


def test_missing_ruleset_file(tmp_path: Path) -> None:
    path = tmp_path / "x.rrtest"
    path.write_text('ruleset "nowhere.rr"\n', encoding="utf-8")
    with pytest.raises(RulesetError) as info:
        load_suite(path)
    assert "no ruleset 'nowhere.rr' next to x.rrtest" in str(info.value)


# -- scenarios and examples --------------------------------------------------------------


def test_a_wrong_figure_shows_expected_and_actual() -> None:
    [case] = suite(HEAD + 'scenario "x" {\n  2026-11-15 checkout s1 plan premium_monthly '
                   'at web_eu customer c1 { country "DE" trials_used 1 }\n'
                   '  expect total EUR 12.99 tax EUR 2.08\n}\n').cases()
    result = case.run()
    assert not result.ok
    assert result.message.endswith("\n  tax: expected EUR 2.08, actual EUR 2.07")
    assert result.message.startswith(f"{ROOT / 'rulesets' / 't.rrtest'}:4:26: after line 3 ")


def test_a_refused_event_fails_unless_expected() -> None:
    text = (HEAD + 'scenario "x" {\n  2026-11-15 checkout s1 plan premium_monthly at web_xx '
            'customer c1 { country "DE" }\n}\n')
    [case] = suite(text).cases()
    result = case.run()
    assert not result.ok and "was refused: unknown_storefront" in result.message
    [case] = suite(text.replace("}\n}", "}\n  expect error unknown_storefront\n}")).cases()
    assert case.run().ok
    [case] = suite(text.replace("}\n}", "}\n  expect error out_of_order\n}")).cases()
    assert "error: expected out_of_order, actual unknown_storefront" in case.run().message


def test_examples_rows_are_one_case_each() -> None:
    cases = suite(HEAD + 'examples "t" on 2026-12-01 {\n'
                  '  storefront | plan | country | trials_used => total | psp\n'
                  '  web_eu | premium_monthly | "DE" | 1 => EUR 12.99 | stripe\n'
                  '  web_us | premium_monthly | "US" | 1 => USD 13.98 | adyen\n}\n').cases()
    assert [c.title for c in cases] == ["examples t [1]", "examples t [2]"]
    assert cases[0].run().ok
    message = cases[1].run().message
    assert "\n  total: expected USD 13.98, actual USD 13.99\n  psp: expected adyen, actual " \
        "stripe" in message


def test_invariants_are_checked_in_scenarios_too() -> None:
    cases = suite(HEAD + 'scenario "x" {\n  2026-11-15 checkout s1 plan premium_monthly at '
                  'web_eu customer c1 { country "DE" trials_used 1 }\n}\n'
                  'invariant "cheap" decision.total < 10\n').cases()
    message = cases[0].run().message
    assert "invariant 'cheap'" in message and "decision.total = 12.99" in message


# -- property runs and shrinking ---------------------------------------------------------


def test_bundled_streaming_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(ROOT / "rulesets"))
    assert code == 0, out
    assert out.startswith("revrules test: seed 0, 25 sequences per invariant")
    assert re.search(r"^\d+ passed, 0 failed$", out, re.MULTILINE)
    assert "PASS scenario S1 web, inclusive VAT, trial blocked" in out
    assert "PASS invariant tax within the total" in out


def test_seeded_tax_bug_is_found_and_shrunk(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(DATA / "tax_stack.rrtest"))
    assert code == 1
    assert "PASS scenario German VAT" in out
    assert "FAIL invariant tax never above the net" in out
    assert ("invariant 'tax never above the net' fails after 1 event (seed 0): "
            "decision.tax = 11.00, decision.net = 10.00") in out
    assert ('scenario "counterexample: tax never above the net" {\n'
            '         2026-12-01T00:00:00Z checkout s1 plan monthly at shop customer c1 '
            '{ country "FR" }\n       }') in out
    assert out.rstrip().endswith("2 passed, 1 failed")


def test_seeded_promotion_bug_is_shrunk_to_a_few_events(
        capsys: pytest.CaptureFixture[str]) -> None:
    # the bug needs a second charge: the default 25 sequences rarely reach one, 60 with
    # seed 2 do (the seed is fixed: the run is reproducible)
    code, out = run(capsys, str(DATA / "free_promo.rrtest"), "--seed", "2", "--examples", "60",
                    "-k", "never free")
    assert code == 1
    scenario = out[out.index("scenario \"counterexample"):]
    lines = [line.strip() for line in scenario.splitlines()[1:]]
    lines = lines[:lines.index("}")]
    assert lines == ["2026-12-01T00:00:00Z checkout s1 plan basic_monthly at web customer c1",
                     "2026-12-01T00:00:00Z pay s1", "2027-01-01T12:00:00Z renew s1"]


def test_a_pasted_counterexample_reproduces_the_failure(tmp_path: Path) -> None:
    text = (DATA / "tax_stack.rrtest").read_text(encoding="utf-8")
    test = load_suite(DATA / "tax_stack.rrtest")
    result = check_property(test, test.test.invariants[0], seed=0, examples=25)
    assert result.counterexample is not None
    (tmp_path / "tax_stack.rr").write_text((DATA / "tax_stack.rr").read_text("utf-8"), "utf-8")
    path = tmp_path / "tax_stack.rrtest"
    path.write_text(text + "\n" + result.counterexample + "\n", encoding="utf-8")
    pasted = load_suite(path)
    case = [c for c in pasted.cases() if c.name.startswith("counterexample")][0]
    outcome = case.run()
    assert not outcome.ok and "invariant 'tax never above the net'" in outcome.message


def test_runs_are_reproducible(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, str(DATA / "tax_stack.rrtest"), "--seed", "7", "--examples", "10")
    second = run(capsys, str(DATA / "tax_stack.rrtest"), "--seed", "7", "--examples", "10")
    assert first == second
    assert first[1].startswith("revrules test: seed 7, 10 sequences per invariant "
                               "(rerun with --seed 7)")


def test_hash_seed_does_not_change_the_output() -> None:
    outs = set()
    for hash_seed in ("0", "1"):
        proc = subprocess.run(
            [sys.executable, "-m", "revrules", "test", str(DATA / "tax_stack.rrtest"),
             "--examples", "5"],
            capture_output=True, text=True, env={"PYTHONPATH": str(ROOT / "src"),
                                                 "PYTHONHASHSEED": hash_seed}, check=False)
        assert proc.returncode == 1, proc.stderr
        outs.add(proc.stdout)
    assert len(outs) == 1


def test_bad_files_and_options(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.rrtest"
    bad.write_text('ruleset "x.rr"\nscenario {\n', encoding="utf-8")
    code, out = run(capsys, str(bad))
    assert code == 2
    assert f"{bad}:2:10: error[syntax]: unexpected '{{'; expected a string in \"quotes\"" in out
    assert run(capsys, str(tmp_path / "empty_dir_does_not_exist"))[0] == 2
    code, out = run(capsys, str(DATA), "--threshold", "50")
    assert code == 2 and "--threshold and --coverage-json need --coverage" in out


def test_coverage_of_the_bundled_tests_is_a_report_of_lines(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(ROOT / "rulesets"), "--coverage", "--examples", "3")
    assert code == 0, out
    assert "\\n" not in out  # the report's own lines, not one escaped line
    lines = out.splitlines()
    assert any(line.startswith("coverage of streaming (") for line in lines)
    assert any(line.startswith("never exercised (") for line in lines)


def test_directories_starting_with_underscore_are_skipped(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, str(ROOT / "tests"))
    assert (code, out) == (2, "revrules: no .rrtest files found\n")
    code, out = run(capsys, str(DATA), "-k", "German")  # named: run
    assert code == 0 and "PASS scenario German VAT" in out


class _FakeReport:
    def __init__(self, seen: int):
        self.percent = 50.0
        self.seen = seen

    def to_text(self) -> str:
        return f"coverage: 50.0% ({self.seen} outcomes)\n"

    def to_json(self) -> str:
        return '{"percent": 50.0}'


class _FakeCoverage:
    """What revrules.coverage.Coverage offers the command: engine, observe, report."""

    made: list[_FakeCoverage] = []

    def __init__(self, ruleset: revrules.Ruleset):
        self.ruleset, self.outcomes, self.engines = ruleset, 0, 0
        _FakeCoverage.made.append(self)

    def engine(self) -> revrules.Engine:
        self.engines += 1
        return revrules.Engine(self.ruleset)

    def observe(self, outcome: revrules.Outcome) -> None:
        self.outcomes += 1

    def report(self) -> _FakeReport:
        return _FakeReport(self.outcomes)


def test_coverage_is_wired_to_the_coverage_module(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    import types
    fake = types.ModuleType("revrules.coverage")
    fake.Coverage = _FakeCoverage  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "revrules.coverage", fake)
    _FakeCoverage.made.clear()
    report = tmp_path / "cov.json"
    args = [str(DATA / "tax_stack.rrtest"), "--examples", "3", "-k", "within", "--coverage"]
    code, out = run(capsys, *args, "--threshold", "60", "--coverage-json", str(report))
    [cov] = _FakeCoverage.made
    assert cov.engines >= 3 and cov.outcomes >= 3  # the property run records
    assert "1 passed, 0 failed\n" in out
    assert f"coverage: 50.0% ({cov.outcomes} outcomes)\n" in out
    assert "coverage 50.0% is below the threshold 60.0%" in out
    assert code == 1
    assert report.read_text(encoding="utf-8") == '{\n  "percent": 50.0\n}\n'
    assert run(capsys, *args, "--threshold", "40")[0] == 0


_PIECES = ('ruleset "streaming.rr"', "scenario", '"x"', "{", "}", "examples", "invariant",
           "expect", "2027-01-01", "2027-02-30", "2027-01-01T00:00:00Z", "checkout", "pay",
           "tick", "s1", "plan", "at", "customer", "amount", "EUR", "12.99", "-", "=>", "|",
           "total", "events", "a.b", ",", "decision.total", ">=", "0", "or", "not", "(",
           ")", "error", "attempt", "1.5", "none", "and", "cancel", "entitlements", "\n")


@settings(max_examples=150, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(_PIECES), max_size=30).map(" ".join))
def test_any_text_gives_diagnostics_never_a_crash(text: str) -> None:
    try:
        test = parse_test(text, "f.rrtest")
    except RulesetError as exc:
        assert exc.diagnostics and all(d.span.line >= 1 for d in exc.diagnostics)
        return
    runnable = Suite("f.rrtest", test, STREAMING)
    for case in runnable.cases():
        result = case.run(examples=2)
        assert isinstance(result.ok, bool)
