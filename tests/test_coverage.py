"""Coverage of a ruleset (issue 9, point 5): conditions seen true and false, table items
never exercised, the percentage, thresholds, merging, and that a coverage build decides
exactly as the plain engine. REVRULES_COVERAGE_EXAMPLES runs more generated rulesets
(default 40).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, State
from revrules.cli import main
from revrules.compiler import compile_model, generated_source
from revrules.coverage import Coverage
from revrules.testing import event_sequences, events, rulesets
from revrules.wire import outcome_to_json, state_to_json

ROOT = Path(__file__).resolve().parent.parent

SMALL = """ruleset small version "1"
customer { country: string  vip: bool = false }
storefront web { channel web currency EUR tax inclusive psp stripe, adyen }
product p { entitlements hd }
plan monthly {
  product p
  every 1 month
  price web EUR 10.00
  price web EUR 12.00 from 2027-06-01
}
promotion welcome {
  code "HELLO"
  percent 10 off once
  if customer.country == "DE"
}
promotion vip {
  automatic
  amount EUR 1.00 off forever
  if customer.vip
}
tax vat {
  rate 19% when customer.country == "DE" and not customer.vip
  rate 0%
}
route {
  adyen when total >= EUR 100.00 or customer.vip
  stripe otherwise
}
dunning basic {
  retry after 1 day, 3 days
  grace 5 days keep entitlements
  then cancel
}
lifecycle {
  cancel at period_end
  refund full within 14 days
}
"""


def ev(id_: str, type_: str, at: str, sub: str | None = None, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"id": id_, "type": type_, "at": at}
    if sub is not None:
        event["subscription"] = sub
    event.update(fields)
    return event


LOG = [
    ev("e1", "checkout", "2027-01-10T10:00:00Z", "s1", storefront="web", plan="monthly",
       customer={"id": "c1", "country": "DE"}, code="HELLO"),
    ev("e2", "payment_succeeded", "2027-01-10T10:00:05Z", "s1"),
    ev("e3", "checkout", "2027-01-11T10:00:00Z", "s2", storefront="web", plan="monthly",
       customer={"id": "c2", "country": "FR"}),
    ev("e4", "payment_failed", "2027-01-11T10:00:05Z", "s2", reason="card_declined"),
    ev("e5", "tick", "2027-01-12T12:00:00Z"),
]
# the second retry (01-14), grace to its end (01-16) and the `then cancel`; a refund in
# the window, and a cancel at period end
MORE = [
    ev("e6", "tick", "2027-01-14T12:00:00Z"),
    ev("e7", "refund_requested", "2027-01-15T09:00:00Z", "s1"),
    ev("e8", "checkout", "2027-01-15T10:00:00Z", "s3", storefront="web", plan="monthly",
       customer={"id": "c3", "country": "DE", "vip": True}),
    ev("e9", "payment_succeeded", "2027-01-15T10:00:05Z", "s3"),
    ev("e10", "cancel_requested", "2027-01-15T11:00:00Z", "s3"),
    ev("e11", "tick", "2027-01-16T12:00:00Z"),
]


def small() -> revrules.Ruleset:
    return revrules.load_text(SMALL, "small.rr")


def covered(log: list[dict[str, Any]], rules: revrules.Ruleset | None = None) -> Coverage:
    cov = Coverage(rules or small())
    outcomes = cov.run(log)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    return cov


def conditions(cov: Coverage) -> list[tuple[str, str, str, bool, int, int]]:
    return [(c.rule, c.text, c.location, c.whole, c.true, c.false)
            for c in cov.report().conditions]


def missing(cov: Coverage) -> list[tuple[str, str, str, str | None]]:
    return [(x.kind, x.name, x.location, x.outcome) for x in cov.report().missing]


def test_conditions_seen_true_and_false_per_sub_condition() -> None:
    cov = covered(LOG)
    assert conditions(cov) == [
        ("welcome", 'customer.country == "DE"', "small.rr:14:6", True, 1, 0),
        ("vip", "customer.vip", "small.rr:19:6", True, 0, 2),
        ("tax vat", 'customer.country == "DE" and not customer.vip', "small.rr:22:17",
         True, 1, 1),
        ("tax vat", 'customer.country == "DE"', "small.rr:22:17", False, 1, 1),
        # evaluated once: `and` stopped at the first operand for the FR customer
        ("tax vat", "not customer.vip", "small.rr:22:46", False, 1, 0),
        ("route adyen", "total >= EUR 100.00 or customer.vip", "small.rr:26:14", True, 0, 2),
        ("route adyen", "total >= EUR 100.00", "small.rr:26:14", False, 0, 2),
        ("route adyen", "customer.vip", "small.rr:26:37", False, 0, 2),
    ]


def test_items_never_exercised_and_the_percentage() -> None:
    cov = covered(LOG)
    assert missing(cov) == [
        ("price", "monthly web EUR 12.00 from 2027-06-01", "small.rr:9:3", None),
        ("condition", 'welcome: customer.country == "DE"', "small.rr:14:6", "false"),
        ("promotion", "vip", "small.rr:16:1", None),
        ("condition", "vip: customer.vip", "small.rr:19:6", "true"),
        ("condition", "tax vat: not customer.vip", "small.rr:22:46", "false"),
        ("route", "adyen", "small.rr:26:3", None),
        ("condition", "route adyen: total >= EUR 100.00", "small.rr:26:14", "true"),
        ("condition", "route adyen: total >= EUR 100.00 or customer.vip", "small.rr:26:14",
         "true"),
        ("condition", "route adyen: customer.vip", "small.rr:26:37", "true"),
        ("dunning retry", "basic retry 2 of 2", "small.rr:30:3", None),
        ("dunning grace", "basic grace 5 days", "small.rr:31:3", None),
        ("dunning then", "basic then cancel", "small.rr:32:3", None),
        ("lifecycle", "cancel at period_end", "small.rr:35:3", None),
        ("lifecycle", "refund full within 14 days", "small.rr:36:3", None),
        ("lifecycle", "refund none after 14 days", "small.rr:36:3", None),
    ]
    report = cov.report()
    # 8 conditions × (true, false) + 16 items; 10 condition outcomes and 7 items seen
    assert (report.covered, report.total, report.percent) == (17, 32, Decimal("53.12"))
    assert [(i.kind, i.name, i.hits) for i in report.items] == [
        ("price", "monthly web EUR 10.00", 2),
        ("price", "monthly web EUR 12.00 from 2027-06-01", 0),
        ("promotion", "welcome", 1),
        ("promotion", "vip", 0),
        ("tax", "vat 19%", 1),
        ("tax", "vat 0%", 1),
        ("route", "adyen", 0),
        ("route", "stripe otherwise", 2),
        ("dunning", "basic", 1),
        ("dunning retry", "basic retry 1 of 2", 1),
        ("dunning retry", "basic retry 2 of 2", 0),
        ("dunning grace", "basic grace 5 days", 0),
        ("dunning then", "basic then cancel", 0),
        ("lifecycle", "cancel at period_end", 0),
        ("lifecycle", "refund full within 14 days", 0),
        ("lifecycle", "refund none after 14 days", 0),
    ]


def test_later_events_exercise_the_dunning_steps_and_lifecycle_rules() -> None:
    cov = covered(LOG + MORE)
    assert [x for x in missing(cov) if x[0] != "condition"] == [
        ("price", "monthly web EUR 12.00 from 2027-06-01", "small.rr:9:3", None),
        ("lifecycle", "refund none after 14 days", "small.rr:36:3", None),
    ]
    hits = {(i.kind, i.name): i.hits for i in cov.report().items}
    assert hits["dunning retry", "basic retry 2 of 2"] == 1
    assert hits["dunning grace", "basic grace 5 days"] == 1
    assert hits["dunning then", "basic then cancel"] == 1
    assert hits["promotion", "vip"] == 1
    assert hits["route", "adyen"] == 1
    assert hits["lifecycle", "refund full within 14 days"] == 1
    assert hits["lifecycle", "cancel at period_end"] == 1


def test_then_unpaid_is_seen_through_the_policy_before() -> None:
    rules = revrules.load_text(SMALL.replace("then cancel", "then unpaid"), "small.rr")
    cov = covered(LOG + MORE[:1] + [ev("e11", "tick", "2027-01-16T12:00:00Z")], rules)
    hits = {(i.kind, i.name): i.hits for i in cov.report().items}
    assert hits["dunning then", "basic then unpaid"] == 1


def test_a_refund_outside_the_window_exercises_the_after_rule() -> None:
    cov = covered(LOG[:2] + [ev("e3", "refund_requested", "2027-01-30T09:00:00Z", "s1")])
    hits = {(i.kind, i.name): i.hits for i in cov.report().items}
    assert hits["lifecycle", "refund none after 14 days"] == 1
    assert hits["lifecycle", "refund full within 14 days"] == 0


def test_merge_adds_what_each_part_saw() -> None:
    whole = covered(LOG + MORE)
    first, second = Coverage(small()), Coverage(small())
    state = first.run(LOG)[-1].state
    second.run(MORE, state)
    first.merge(second)
    assert first.report().to_json() == whole.report().to_json()
    other = Coverage(revrules.load_text(SMALL.replace("EUR 10.00", "EUR 11.00"), "small.rr"))
    with pytest.raises(ValueError, match="different ruleset"):
        first.merge(other)


def test_a_report_does_not_change_with_later_observations() -> None:
    cov = Coverage(small())
    state = cov.run(LOG)[-1].state
    before = cov.report()
    text = before.to_json()
    cov.run(MORE, state)
    assert before.to_json() == text != cov.report().to_json()


def test_threshold_is_compared_exactly() -> None:
    report = covered(LOG).report()  # 17 of 32: 53.125%
    assert report.passes(Decimal("53.125")) and report.passes(53) and report.passes("0")
    assert not report.passes(Decimal("53.126")) and not report.passes(100)


def test_nothing_to_cover_is_full_coverage() -> None:
    rules = revrules.load_text('ruleset empty\nstorefront web { channel web currency EUR '
                               'tax inclusive psp stripe }\n', "e.rr")
    report = Coverage(rules).report()
    assert (report.covered, report.total, report.percent, report.missing) == (
        0, 0, Decimal("100.00"), [])
    assert report.passes(100)


def test_the_coverage_engine_keeps_the_state_as_the_plain_engine_does() -> None:
    rules = small()
    plain, cov = Engine(rules), Coverage(rules)
    engine = cov.engine()
    state = plain.apply(State(), LOG[0]).state
    out = engine.apply(state, LOG[1])  # a state of the plain engine, as it is
    assert out.state.ruleset is state.ruleset is rules.stamp
    assert outcome_to_json(out) == outcome_to_json(plain.apply(state, LOG[1]))


def test_refused_events_count_what_they_evaluated_and_nothing_else() -> None:
    cov = Coverage(small())
    outcomes = cov.run([LOG[0], ev("e2", "payment_succeeded", "2027-01-10T10:00:05Z", "nope")])
    assert [o.ok for o in outcomes] == [True, False]
    assert cov.report().covered == covered(LOG[:1]).report().covered


# -- generated code ------------------------------------------------------------------


def test_the_normal_build_is_untouched() -> None:
    rules = small()
    assert "cov_hit" not in rules.compiled.source
    assert rules.compiled.conditions == ()
    assert generated_source(rules.model) == rules.compiled.source
    source = generated_source(rules.model, coverage=True)
    assert source.count("cov_hit(") == 8
    assert compile_model(rules.model, coverage=lambda i, v: v).source == source


# -- reports -------------------------------------------------------------------------


def test_text_report() -> None:
    text = covered(LOG).report().to_text()
    lines = text.split("\n")
    assert lines[0] == "coverage of small (small.rr): 53.12% (17 of 32 outcomes)"
    assert "  conditions: 10 of 16 outcomes (true and false of 8 conditions)" in lines
    assert "  dunning retry: 1 of 2" in lines
    assert "  small.rr:22:46      1     0    tax vat: not customer.vip" in lines
    assert "never exercised (15):" in lines
    assert "  small.rr:19:6   condition: vip: customer.vip  never true" in lines
    assert "  small.rr:26:3   route: adyen" in lines


def test_json_report() -> None:
    data = json.loads(covered(LOG).report().to_json())
    assert list(data) == ["ruleset", "version", "file", "percent", "covered", "total",
                          "conditions", "items", "missing"]
    assert (data["percent"], data["covered"], data["total"]) == ("53.12", 17, 32)
    assert data["conditions"][4] == {"rule": "tax vat", "text": "not customer.vip",
                                     "location": "small.rr:22:46", "whole": False,
                                     "true": 1, "false": 0}
    assert data["missing"][0] == {"kind": "price", "name": "monthly web EUR 12.00 from "
                                  "2027-06-01", "location": "small.rr:9:3", "outcome": None}


def test_html_marks_lines() -> None:
    page = covered(LOG).report().to_html()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page and "http" not in page

    def line(number: int) -> str:
        start = page.index(f'<td class="n">{number}</td>')
        return page[page.rindex("<tr", 0, start):start]

    assert line(8).startswith('<tr class="covered"')  # price web EUR 10.00
    assert line(9).startswith('<tr class="not"')  # price web EUR 12.00 from 2027-06-01
    assert line(22).startswith('<tr class="partly"')  # the tax condition: 5 of 6, and a rate
    assert line(1).startswith('<tr class=""')  # nothing to cover
    assert "customer.country == &quot;DE&quot;" in line(14)
    # one line of the tooltip per condition and item, in column order
    assert line(22).split('title="')[1].split('"')[0].split("&#10;") == [
        "tax vat 19% (used 1)",  # the rate line, from column 3
        "tax vat: customer.country == &quot;DE&quot; and not customer.vip (true 1, false 1)",
        "tax vat: customer.country == &quot;DE&quot; (true 1, false 1)",
        "tax vat: not customer.vip (true 1, false 0)",
    ]


# -- the command line ----------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str]:
    rules = tmp_path / "small.rr"
    rules.write_text(SMALL, encoding="utf-8")
    log = tmp_path / "small.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in LOG), encoding="utf-8")
    return str(rules), str(log)


@pytest.mark.parametrize(("threshold", "status"), [
    (None, 0), ("0", 0), ("53", 0), ("53.125", 0), ("53.13", 1), ("100", 1)])
def test_threshold_exit_status(capsys: pytest.CaptureFixture[str], files: tuple[str, str],
                               threshold: str | None, status: int) -> None:
    argv = ["coverage", *files] + (["--threshold", threshold] if threshold else [])
    assert main(argv) == status
    out, err = capsys.readouterr()
    assert out.startswith("coverage of small (")
    if status:
        assert err == f"revrules: coverage 53.12% is below the threshold of {threshold}%\n"
    else:
        assert err == ""


@pytest.mark.parametrize("bad", ["101", "-1", "x", "nan", "inf"])
def test_a_bad_threshold_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                          files: tuple[str, str], bad: str) -> None:
    assert main(["coverage", *files, "--threshold", bad]) == 2
    assert "expected a percentage from 0 to 100" in capsys.readouterr().err


def test_cli_json_and_html(capsys: pytest.CaptureFixture[str], files: tuple[str, str],
                           tmp_path: Path) -> None:
    page = tmp_path / "cov.html"
    assert main(["coverage", *files, "--format", "json", "--html", str(page)]) == 0
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["file"] == files[0] and report["percent"] == "53.12"
    assert page.read_text("utf-8").startswith("<!DOCTYPE html>")


def test_cli_reports_refused_events(capsys: pytest.CaptureFixture[str], files: tuple[str, str],
                                    tmp_path: Path) -> None:
    log = Path(files[1])
    log.write_text(log.read_text("utf-8") + "not json\n", encoding="utf-8")
    assert main(["coverage", *files]) == 0
    err = capsys.readouterr().err
    assert err.startswith("revrules: 1 of 6 events did not apply")


def test_cli_a_ruleset_that_does_not_check(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, files: tuple[str, str]) -> None:
    bad = tmp_path / "bad.rr"
    bad.write_text("ruleset bad\nstorefront web { channel webb }\n", encoding="utf-8")
    assert main(["coverage", str(bad), files[1]]) == 2
    assert "does not check" in capsys.readouterr().err


def test_json_is_byte_identical_across_hash_seeds(files: tuple[str, str],
                                                  tmp_path: Path) -> None:
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONHASHSEED": seed}
        page = tmp_path / f"page{seed}.html"
        result = subprocess.run(
            [sys.executable, "-m", "revrules", "coverage", files[0],
             str(ROOT / "examples" / "events.jsonl"), "--format", "json", "--html", str(page)],
            env=env, capture_output=True, timeout=120, check=False)
        assert b"Traceback" not in result.stderr
        outputs.add((result.stdout, page.read_bytes()))
    assert len(outputs) == 1


def test_streaming_example_log() -> None:
    rules = revrules.load(ROOT / "rulesets" / "streaming.rr")
    cov = Coverage(rules)
    from revrules.wire import read_events

    with open(ROOT / "examples" / "events.jsonl", encoding="utf-8") as handle:
        cov.run([item for _, item in read_events(handle)])
    report = cov.report()
    assert (report.covered, report.total) == (41, 81)
    kinds = {(x.kind, x.name) for x in report.missing}
    assert ("dunning retry", "standard retry 2 of 3") in kinds
    assert ("dunning retry", "standard retry 1 of 3") not in kinds
    assert ("promotion", "loyalty") in kinds and ("promotion", "black_friday") not in kinds


# -- the coverage build decides exactly as the plain engine -------------------------

EXAMPLES = int(os.environ.get("REVRULES_COVERAGE_EXAMPLES", "40"))


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_coverage_build_gives_the_same_outcomes(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    log = data.draw(event_sequences(rules, max_size=10), label="events")
    cov = Coverage(rules)
    plain, instrumented = Engine(rules), cov.engine()
    a = b = State()
    for event in log:
        out_a, out_b = plain.apply(a, event), instrumented.apply(b, event)
        assert outcome_to_json(out_b) == outcome_to_json(out_a)
        cov.observe(out_b)
        a, b = out_a.state, out_b.state
        assert state_to_json(b) == state_to_json(a)
    report = cov.report()
    assert 0 <= report.covered <= report.total
    assert len(report.conditions) == generated_source(rules.model, coverage=True).count(
        "cov_hit(")
    assert report.to_json() == cov.report().to_json()


@settings(max_examples=max(1, EXAMPLES // 2), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_coverage_build_gives_the_same_outcomes_for_random_events(data: st.DataObject) -> None:
    rules = revrules.load_text(data.draw(rulesets(), label="ruleset"), "gen.rr")
    life = data.draw(event_sequences(rules, max_size=6), label="life")
    log = data.draw(st.lists(events(rules), max_size=8), label="events")
    cov = Coverage(rules)
    plain, instrumented = Engine(rules), cov.engine()
    a = b = State()
    for event in life + sorted(log, key=lambda e: e["at"]):
        out_a, out_b = plain.apply(a, event), instrumented.apply(b, event)
        assert outcome_to_json(out_b) == outcome_to_json(out_a)
        cov.observe(out_b)
        a, b = out_a.state, out_b.state


def test_hostile_names_stay_escaped_in_every_report() -> None:
    name = "x\x1b[31m\n\u202e.rr"
    # a bidi override in a string literal of a condition, and in a promotion code
    text = SMALL.replace('"HELLO"', '"HE\\u202eLLO"').replace(
        'customer.country == "DE"\n}', 'customer.country == "D\u202eE"\n}')
    cov = covered([{**e, "customer": {**e["customer"], "country": "D\u202eE"}}
                   if e["id"] == "e1" else e for e in LOG], revrules.load_text(text, name))
    report = cov.report()
    for output in (report.to_text(), report.to_html()):
        assert "\x1b" not in output and "\u202e" not in output
    assert report.to_text().startswith("coverage of small (x\\x1b[31m\\n\\u202e.rr)")
    assert json.loads(report.to_json())["file"] == name
    assert "\x1b" not in report.to_json() and "\u202e" not in report.to_json()


# -- the documentation -----------------------------------------------------------------


def test_the_documented_example_is_what_the_command_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    docs = (ROOT / "docs" / "coverage.md").read_text("utf-8")
    command = "$ revrules coverage small.rr small.jsonl --threshold 80\n"
    start = docs.index(command) + len(command)
    expected = docs[start:docs.index("```", start)]
    (tmp_path / "small.rr").write_text(SMALL, encoding="utf-8")
    (tmp_path / "small.jsonl").write_text("".join(json.dumps(e) + "\n" for e in LOG),
                                          encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["coverage", "small.rr", "small.jsonl", "--threshold", "80"]) == 1
    out, err = capsys.readouterr()
    assert out + err == expected


def test_the_documented_python_runs(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    docs = (ROOT / "docs" / "coverage.md").read_text("utf-8")
    start = docs.index("```python\n") + len("```python\n")
    monkeypatch.chdir(ROOT)
    exec(compile(docs[start:docs.index("```", start)], "coverage.md", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out.startswith("coverage of streaming (rulesets/streaming.rr)")
