"""The ledger (LANGUAGE.md §6): L1 and S15 exact, invariants as properties, and the
``replay`` / ``diff`` / ``generate`` reports (golden files, the HTML page parsed).

Golden files live in ``tests/golden``; after an intended change of a report, rewrite
them with ``REVRULES_UPDATE_GOLDEN=1 pytest tests/test_ledger.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from decimal import Decimal
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import revrules
from revrules import Engine, Ledger, State
from revrules.cli import main
from revrules.generator import generate
from revrules.ledger import FIELDS, MONEY_FIELDS, Figures
from revrules.reports import render_csv, render_html, render_json, replay
from revrules.results import RevenueEvent
from revrules.whatif import _text, diff

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"
GOLDEN = Path(__file__).resolve().parent / "golden"
D = Decimal


@cache
def rules() -> revrules.Ruleset:
    return revrules.load(STREAMING)


def checkout(eid: str, sub: str, at: str, storefront: str, plan: str, customer: str,
             **attrs: Any) -> dict[str, Any]:
    return {"id": eid, "type": "checkout", "at": at, "subscription": sub,
            "storefront": storefront, "plan": plan, "customer": {"id": customer, **attrs}}


def event(eid: str, kind: str, sub: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "at": at, "subscription": sub, **fields}


#: L1 = S1 (paid) + S9 (paid) + S12(a)
L1 = [
    checkout("s1.checkout", "s1", "2026-11-15", "web_eu", "premium_monthly", "c1",
             country="DE", trials_used=1),
    event("s1.paid", "payment_succeeded", "s1", "2026-11-15T00:05:00Z"),
    checkout("s9.checkout", "s9", "2026-12-01", "b2b", "business_annual", "c9", country="FR"),
    event("s9.paid", "payment_succeeded", "s9", "2026-12-20"),
    checkout("s12.checkout", "s12", "2027-03-01", "web_us", "premium_monthly", "c12",
             country="US", trials_used=1),
    event("s12.paid", "payment_succeeded", "s12", "2027-03-01T00:05:00Z"),
    event("s12.refund", "refund_requested", "s12", "2027-03-05"),
]

S15 = [
    checkout("s15.checkout", "s15", "2026-12-01", "ios", "premium_monthly", "c15",
             country="US", trials_used=1),
    event("s15.paid", "payment_succeeded", "s15", "2026-12-01T00:01:00Z"),
]


def apply_all(events: Iterable[dict[str, Any]]) -> list[revrules.Outcome]:
    _, outcomes = Engine(rules()).run(events)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    return outcomes


def revenue_events(events: Iterable[dict[str, Any]]) -> list[RevenueEvent]:
    return [e for o in apply_all(events) for e in o.events]


# -- L1 and S15, exact -----------------------------------------------------------------


def test_l1_exact() -> None:
    ledger = Ledger.from_outcomes(apply_all(L1), rules())
    totals = ledger.totals()
    assert set(totals) == {"EUR", "USD"}
    eur, usd = totals["EUR"], totals["USD"]
    assert (eur.gross, eur.tax, eur.discounts, eur.refunds, eur.net) == (
        D("109.92"), D("21.87"), D("0.00"), D("0.00"), D("109.92"))
    assert (usd.gross, usd.refunds, usd.net) == (D("13.99"), D("13.99"), D("0.00"))
    # exact decimals with the currency's minor units, never a float
    for figures in totals.values():
        for name in MONEY_FIELDS:
            assert isinstance(figures.get(name), Decimal)
    assert str(eur.gross) == "109.92" and str(usd.net) == "0.00"


def test_l1_cash_basis_by_month_and_group() -> None:
    ledger = Ledger.from_outcomes(apply_all(L1), rules())
    months = ledger.by_month()
    assert months[("EUR", "2026-11")].gross == D("10.92")
    assert months[("EUR", "2026-11")].tax == D("2.07")
    assert months[("EUR", "2026-12")].gross == D("99.00")
    assert months[("EUR", "2026-12")].tax == D("19.80")
    assert months[("USD", "2027-03")].refunds == D("13.99")
    assert months[("USD", "2027-03")].churned == 1
    groups = {(g.currency, g.storefront, g.plan, g.month): f for g, f in ledger.rows()}
    assert groups[("EUR", "b2b", "business_annual", "2026-12")].net == D("99.00")
    # the annual plan counts 1/12 in MRR; the canceled one counts no more
    assert groups[("EUR", "b2b", "business_annual", "2026-12")].mrr == D("8.25")
    assert ledger.totals()["EUR"].active == 2
    assert ledger.totals()["USD"].active == 0


def test_s15_commission_and_proceeds() -> None:
    ledger = Ledger.fold(revenue_events(S15), rules())
    usd = ledger.totals()["USD"]
    assert (usd.gross, usd.tax, usd.net) == (D("14.99"), D("0.00"), D("14.99"))
    assert usd.commission == D("2.25")
    assert usd.proceeds == D("12.74")
    (group,) = [g for g, f in ledger.rows() if f.payments]
    assert (group.storefront, group.channel, group.month) == ("ios", "app_store", "2026-12")


def test_add_is_fold_and_leaves_the_ledger_unchanged() -> None:
    events = revenue_events(L1)
    one_by_one = Ledger.fold((), rules())
    for e in events:
        before = one_by_one
        one_by_one = one_by_one.add(e)
        assert before is not one_by_one
    assert one_by_one == Ledger.fold(events, rules())
    assert Ledger.fold(events[:3], rules()).totals() != one_by_one.totals()


def test_mrr_period_inferred_without_a_ruleset() -> None:
    events = revenue_events(L1)
    # no ruleset: business_annual is guessed yearly from its name
    ledger = Ledger.fold(events)
    assert ledger.totals()["EUR"].mrr == D("19.17")  # 10.92 + 99.00 / 12


def test_trial_counts_as_trialing_and_dunning_as_active() -> None:
    log = [
        checkout("t.checkout", "t", "2026-12-03", "web_us", "premium_monthly", "ct",
                 country="US", trials_used=0),
        checkout("d.checkout", "d", "2026-12-10", "web_eu", "premium_monthly", "cd",
                 country="DE", trials_used=1),
        event("d.paid", "payment_succeeded", "d", "2026-12-10T00:01:00Z"),
        event("d.renew", "renewal_due", "d", "2027-01-10"),
        event("d.failed", "payment_failed", "d", "2027-01-10T00:01:00Z"),
    ]
    ledger = Ledger.from_outcomes(apply_all(log), rules())
    months = ledger.by_month()
    assert months[("USD", "2026-12")].trialing == 1
    assert months[("EUR", "2027-01")].active == 1  # past due: still subscribed
    assert months[("EUR", "2027-01")].payments == 0  # a failed charge is not a sale


# -- properties ------------------------------------------------------------------------


@cache
def generated(seed: int, customers: int, months: int) -> tuple[RevenueEvent, ...]:
    events = generate(rules(), customers=customers, months=months, seed=seed)
    return tuple(revenue_events(events))


logs = st.builds(generated, st.integers(0, 10_000), st.integers(1, 12), st.integers(1, 14))
PROPERTY = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def check_identities(ledger: Ledger) -> None:
    for _, f in ledger.rows():
        assert f.net == f.gross - f.discounts - f.refunds - f.credits
        assert f.proceeds == f.net - f.commission
    last = ledger.last_month
    sums: dict[str, Figures] = {}
    for g, f in ledger.rows():
        sums[g.currency] = sums.get(g.currency, Figures()) + f
    totals = ledger.totals()
    assert set(sums) == set(totals)
    for currency, total in totals.items():
        for name in FIELDS:
            if name in ("active", "trialing", "mrr", "outstanding"):
                at_end = [f for g, f in ledger.rows() if g.currency == currency
                          and g.month == last]
                assert total.get(name) == sum((f.get(name) for f in at_end), Figures().get(name))
            else:
                assert total.get(name) == sums[currency].get(name), name
    # per-month aggregates add up to the totals too
    for currency, total in totals.items():
        assert sum((f.net for (c, _), f in ledger.by_month().items() if c == currency),
                   D(0)) == total.net


@PROPERTY
@given(logs)
def test_net_identity_and_sums_equal_totals(events: tuple[RevenueEvent, ...]) -> None:
    check_identities(Ledger.fold(events, rules()))


@PROPERTY
@given(logs, st.data())
def test_ledger_of_a_log_is_the_sum_of_the_ledgers_of_a_split(
        events: tuple[RevenueEvent, ...], data: st.DataObject) -> None:
    subs = sorted({e.subscription for e in events})
    parts = data.draw(st.integers(1, 4))
    owner = {s: data.draw(st.integers(0, parts - 1)) for s in subs}
    pieces = [Ledger.fold([e for e in events if owner[e.subscription] == i], rules())
              for i in range(parts)]
    merged = pieces[0]
    for piece in pieces[1:]:
        merged = merged + piece
    whole = Ledger.fold(events, rules())
    assert merged.rows() == whole.rows()
    assert merged.totals() == whole.totals()
    assert merged.by_month() == whole.by_month()


amounts = st.decimals(min_value=0, max_value=500, places=2, allow_nan=False)


@st.composite
def synthetic_events(draw: st.DrawFn) -> list[RevenueEvent]:
    """Payments and refunds with arbitrary (consistent) figures, across currencies."""
    import datetime as dt

    events = []
    for i in range(draw(st.integers(0, 30))):
        currency = draw(st.sampled_from(["EUR", "USD"]))
        at = dt.datetime(2026, draw(st.integers(1, 12)), draw(st.integers(1, 28)),
                         tzinfo=dt.UTC)
        common: dict[str, Any] = {
            "id": f"x{i}", "at": at, "subscription": f"s{draw(st.integers(0, 5))}",
            "customer": "c", "storefront": draw(st.sampled_from(["a", "b"])),
            "channel": "web", "plan": draw(st.sampled_from(["p", "q"])), "currency": currency}
        if draw(st.booleans()):
            gross = draw(amounts)
            discount = min(draw(amounts), gross)
            credit = min(draw(amounts), gross - discount)
            events.append(RevenueEvent(type="payment.succeeded", gross=gross,
                                       discount=discount, credit=credit, tax=draw(amounts),
                                       net=gross - discount - credit,
                                       commission=draw(amounts), **common))
        else:
            net = draw(amounts)
            events.append(RevenueEvent(type="payment.refunded", net=net, tax=draw(amounts),
                                       amount=net, **common))
    return events


@PROPERTY
@given(synthetic_events())
def test_identities_on_synthetic_events(events: list[RevenueEvent]) -> None:
    ledger = Ledger.fold(events)
    check_identities(ledger)
    half = len(events) // 2
    assert (Ledger.fold(events[:half]) + Ledger.fold(events[half:])).totals() == \
        ledger.totals()


# -- reports ---------------------------------------------------------------------------


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("REVRULES_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs from its golden file"


@pytest.fixture
def l1_log(tmp_path: Path) -> str:
    path = tmp_path / "l1.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in L1), encoding="utf-8")
    return str(path)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


@pytest.mark.parametrize("fmt, suffix", [("json", "json"), ("csv", "csv"), ("table", "txt")])
def test_replay_reports_golden(capsys: pytest.CaptureFixture[str], l1_log: str, fmt: str,
                               suffix: str) -> None:
    status, out, err = cli(capsys, "replay", str(STREAMING), l1_log, "--format", fmt)
    assert status == 0, err
    golden(f"l1.replay.{suffix}", out)
    again = cli(capsys, "replay", str(STREAMING), l1_log, "--format", fmt)[1]
    assert again == out


def test_replay_json_figures(capsys: pytest.CaptureFixture[str], l1_log: str) -> None:
    out = cli(capsys, "replay", str(STREAMING), l1_log, "--format", "json")[1]
    report = json.loads(out, parse_float=lambda s: pytest.fail(f"a float: {s}"))
    assert report["totals"]["EUR"]["gross"] == "109.92"
    assert report["totals"]["EUR"]["tax"] == "21.87"
    assert report["totals"]["USD"]["refunds"] == "13.99"
    assert report["totals"]["USD"]["net"] == "0.00"
    assert report["events"] == 7 and report["failed"] == 0


def test_replay_failed_event_exits_1_and_still_reports(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    bad = checkout("bad", "sx", "2026-11-15", "web_xx", "premium_monthly", "cx", country="DE")
    path.write_text("".join(json.dumps(e) + "\n" for e in [*L1, bad]), encoding="utf-8")
    status, out, err = cli(capsys, "replay", str(STREAMING), str(path))
    assert status == 1
    assert "EUR: net revenue 109.92" in out
    assert "1 of 8 events did not apply" in err and "unknown_storefront" in err


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_replay_html_is_self_contained_with_a_chart_per_currency(
        capsys: pytest.CaptureFixture[str], l1_log: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    status, _, err = cli(capsys, "replay", str(STREAMING), l1_log, "--html", str(target))
    assert status == 0, err
    text = target.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    page.close()
    assert text.startswith("<!DOCTYPE html>")
    assert page.tags.count("svg") == 5  # EUR: sales, accrual, MRR movements; USD: no MRR
    assert "script" not in page.tags
    for tag, attributes in page.attrs:
        for key in ("src", "href"):
            value = attributes.get(key) or ""
            assert not value or value.startswith("#"), f"external reference in <{tag} {key}>"
    lines = [a.get("class") for t, a in page.attrs if t == "polyline"]
    assert lines.count("line gross") == 1 and lines.count("line net") == 1  # EUR: 5 months
    words = " ".join(page.text)
    assert "109.92" in words and "21.87" in words and "13.99" in words
    sections = [a.get("id") for t, a in page.attrs if t == "section"]
    assert sections == ["all-currencies", "EUR", "USD"]


def test_render_functions_are_deterministic() -> None:
    outcomes = apply_all(L1)
    ledger = Ledger.from_outcomes(outcomes, rules())
    again = Ledger.from_outcomes(apply_all(L1), rules())
    assert render_json(ledger, rules(), outcomes) == render_json(again, rules(), outcomes)
    assert render_csv(ledger) == render_csv(again)
    assert render_html(ledger, rules(), outcomes) == render_html(again, rules(), outcomes)


# -- what-if ---------------------------------------------------------------------------


@cache
def dearer() -> revrules.Ruleset:
    text = STREAMING.read_text(encoding="utf-8").replace(
        "price web_us USD 13.99", "price web_us USD 14.99").replace(
        'version "2026.11.2"', 'version "2027.1.0"')
    return revrules.load_text(text, "dearer.rr")


def test_whatif_diff_from_python() -> None:
    d = diff(rules(), dearer(), L1)
    old, new = d.totals["USD"]
    assert (old.gross, new.gross) == (D("13.99"), D("14.99"))
    assert d.totals["EUR"][0] == d.totals["EUR"][1]
    (sub,) = d.subscriptions
    assert sub.subscription == "s12"
    assert (sub.old_charged, sub.new_charged) == (D("13.99"), D("14.99"))
    first = sub.changes[0]
    assert first.event == "s12.checkout"
    assert first.rules[0].rule == "price premium_monthly web_us"
    assert first.rules[0].source.startswith("dearer.rr:")
    assert not d.outcomes


def test_whatif_same_rules_changes_nothing() -> None:
    d = diff(rules(), rules(), L1)
    assert not d.changed and not d.subscriptions


def test_diff_command(capsys: pytest.CaptureFixture[str], l1_log: str, tmp_path: Path) -> None:
    new = tmp_path / "dearer.rr"
    new.write_text(STREAMING.read_text(encoding="utf-8").replace(
        "price web_us USD 13.99", "price web_us USD 14.99"), encoding="utf-8")
    status, out, err = cli(capsys, "diff", str(STREAMING), str(new), l1_log)
    assert status == 0, err
    assert "2027-03  gross" in out and "+1.00 (+7.1%)" in out
    assert "s12 USD: charged 13.99 → 14.99 (+1.00)" in out
    assert "rule price premium_monthly web_us (dearer.rr:" in out
    status, out, _ = cli(capsys, "diff", str(STREAMING), str(new), l1_log, "--format", "json")
    report = json.loads(out)
    assert report["totals"]["USD"]["change"]["gross"] == "1.00"
    assert report["subscriptions"][0]["subscription"] == "s12"


# -- generate --------------------------------------------------------------------------


def test_generate_is_reproducible_and_applies_cleanly(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["generate", str(STREAMING), "--customers", "40", "--months", "8", "--seed", "3"]
    status, first, err = cli(capsys, *argv)
    assert status == 0, err
    assert cli(capsys, *argv)[1] == first
    assert cli(capsys, *argv[:-1], "4")[1] != first
    events = [json.loads(line) for line in first.splitlines()]
    kinds = {e["type"] for e in events}
    assert {"checkout", "renewal_due", "payment_succeeded", "payment_failed",
            "tick"} <= kinds
    outcomes = apply_all(events)
    assert len(outcomes) == len(events)
    path = tmp_path / "gen.jsonl"
    path.write_text(first, encoding="utf-8")
    status, out, err = cli(capsys, "replay", str(STREAMING), str(path), "--format", "json")
    assert status == 0, err
    assert json.loads(out)["failed"] == 0


def test_generate_renewals_fall_on_the_next_charge_dates() -> None:
    events = generate(rules(), customers=25, months=6, seed=11)
    state = State()
    engine = Engine(rules())
    for e in events:
        outcome = engine.apply(state, e)
        assert outcome.ok, (e, outcome.error)
        state = outcome.state


def test_replay_api_matches_engine_run() -> None:
    result = replay(rules(), L1)
    assert result.ledger == Ledger.from_outcomes(apply_all(L1), rules())
    assert not result.failed


# -- explain ---------------------------------------------------------------------------

EXPLAIN_LOG = [
    {**checkout("s2.checkout", "s2", "2026-11-28T12:00:00Z", "web_us", "premium_monthly",
                "c2", country="US", trials_used=0), "code": "BF2026"},
    event("s2.renewal", "renewal_due", "s2", "2026-12-12"),
    {**checkout("s3.checkout", "s3", "2026-12-02", "web_eu", "premium_monthly", "c3",
                country="DE", trials_used=1), "code": "BF2026"},
    checkout("bad", "s4", "2026-12-02", "web_xx", "premium_monthly", "c4", country="DE"),
]


@pytest.fixture
def explain_log(tmp_path: Path) -> str:
    path = tmp_path / "explain.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in EXPLAIN_LOG), encoding="utf-8")
    return str(path)


def test_explain_cites_the_rule_behind_each_figure(
        capsys: pytest.CaptureFixture[str], explain_log: str) -> None:
    status, out, err = cli(capsys, "explain", str(STREAMING), explain_log,
                           "--event", "s2.renewal")
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "event s2.renewal (renewal_due) at 2026-12-12, subscription s2"
    price = next(line for line in lines if line.strip().startswith("list price"))
    assert "13.99" in price and "price premium_monthly web_us (streaming.rr:39:3)" in price
    discount = next(line for line in lines if line.strip().startswith("discount"))
    assert "−7.00" in discount and "black_friday (streaming.rr:" in discount
    assert any(line.strip().startswith("total") and "6.99" in line for line in lines)
    assert "streaming 2026.11.2" in out  # revenue events name the ruleset and version


def test_explain_lists_rejected_candidates_with_their_source(
        capsys: pytest.CaptureFixture[str], explain_log: str) -> None:
    status, out, _ = cli(capsys, "explain", str(STREAMING), explain_log,
                         "--event", "s3.checkout")
    assert status == 0
    assert "trial_ok: trial already used   (streaming.rr:76:3)" in out
    assert "black_friday not valid on 2026-12-02   (streaming.rr:80:1)" in out


def test_explain_failed_and_unknown_events(
        capsys: pytest.CaptureFixture[str], explain_log: str) -> None:
    status, out, _ = cli(capsys, "explain", str(STREAMING), explain_log, "--event", "bad")
    assert status == 1
    assert "not applied: unknown_storefront" in out
    status, _, err = cli(capsys, "explain", str(STREAMING), explain_log,
                         "--event", "s3.checkot")
    assert status == 2
    assert "no event 's3.checkot' in the log (did you mean 's3.checkout'?)" in err


# -- reconciliation --------------------------------------------------------------------

DATA = Path(__file__).resolve().parent / "data"
ALL_GAPS = {"amount_differs", "currency_differs", "never_settled", "payment_without_charge",
            "double_payment", "refund_above_paid", "settlement_without_payment",
            "payment_not_in_settlement", "settlement_amount_differs",
            "settlement_currency_differs", "double_settlement"}


def test_reconcile_flags_one_of_each_kind() -> None:
    from revrules.reconcile import read_settlements, reconcile
    from revrules.wire import read_events

    with (DATA / "reconcile.jsonl").open(encoding="utf-8") as lines:
        log = [item for _, item in read_events(lines)]
    with (DATA / "settlements.csv").open(encoding="utf-8") as lines:
        settlements = read_settlements(lines)
    result = reconcile(rules(), log, settlements)
    kinds = [g.kind for g in result.gaps]
    assert set(kinds) == ALL_GAPS
    by = {(g.kind, g.subscription or g.reference): g for g in result.gaps}
    amount = by[("amount_differs", "s2")]
    assert (amount.expected, amount.actual, amount.rule) == (
        D("13.99"), D("12.99"), "price premium_monthly web_us")
    assert amount.source == "streaming.rr:39:3"
    assert by[("currency_differs", "s3")].paid_currency == "EUR"
    assert by[("double_payment", "s1")].event == "a3"
    assert by[("payment_without_charge", "s9")].actual == D("5.00")
    assert by[("refund_above_paid", "s5")].expected == D("13.99")
    # a payment that does not match its charge is refused, so the charge stays open
    assert {g.subscription for g in result.gaps if g.kind == "never_settled"} == {
        "s2", "s3", "s4", "s6"}
    assert by[("settlement_amount_differs", "s5")].actual == D("13.49")
    assert by[("settlement_currency_differs", "s6")].paid_currency == "EUR"
    assert by[("settlement_without_payment", "pi_77")].actual == D("9.99")
    assert by[("payment_not_in_settlement", "s7")].reference == "pi_7"
    assert result.fees == {("stripe", "EUR"): D("1.25"), ("stripe", "USD"): D("1.65")}


def test_reconcile_command(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, err = cli(capsys, "reconcile", str(STREAMING), str(DATA / "reconcile.jsonl"),
                           "--settlements", str(DATA / "settlements.csv"))
    assert status == 1, err
    assert "14 gaps:" in out
    assert "amount_differs  subscription s2  event b2  2026-11-20" in out
    assert "  rule price premium_monthly web_us (streaming.rr:39:3)" in out
    status, out, _ = cli(capsys, "reconcile", str(STREAMING), str(DATA / "reconcile.jsonl"),
                         "--format", "json")
    report = json.loads(out)
    assert report["settlements"] == 0
    assert {g["kind"] for g in report["gaps"]} == ALL_GAPS - {
        "settlement_without_payment", "payment_not_in_settlement",
        "settlement_amount_differs", "settlement_currency_differs", "double_settlement"}
    bad = tmp_path / "bad.csv"
    bad.write_text("psp,reference,date,amount,currency\nstripe,pi_1,2026-11-17,abc,EUR\n",
                   encoding="utf-8")
    status, _, err = cli(capsys, "reconcile", str(STREAMING), str(DATA / "reconcile.jsonl"),
                         "--settlements", str(bad))
    assert status == 2
    assert "line 2: amount and fee must be decimal numbers" in err


def test_reconcile_generated_log_pays_every_charge_as_decided() -> None:
    from revrules.reconcile import reconcile

    result = reconcile(rules(), generate(rules(), customers=30, months=6, seed=5))
    assert {g.kind for g in result.gaps} <= {"never_settled"}


def test_whatif_cites_the_changed_declaration_not_every_rule() -> None:
    new = revrules.load(ROOT / "examples" / "streaming-price-rise.rr")
    d = diff(rules(), new, EXPLAIN_LOG[:2])
    (sub,) = d.subscriptions
    renewal = next(c for c in sub.changes if c.event == "s2.renewal")
    assert [t.rule for t in renewal.rules] == ["price premium_monthly web_us", "black_friday"]
    assert (renewal.old.total, renewal.new.total) == (D("6.99"), D("8.99"))  # type: ignore[union-attr]


UNPAID = """ruleset tiny version "1"
customer { country: string }
storefront web { channel web region EU currency EUR tax exclusive psp stripe }
product p { entitlements a }
plan m {
  product p
  every 1 month
  price web EUR 10.00
}
dunning d {
  retry after 1 day
  grace 30 days
  then unpaid
}
"""


def test_dunning_then_unpaid_churns_once() -> None:
    tiny = revrules.load_text(UNPAID, "tiny.rr")
    log = [
        checkout("c", "s", "2027-01-05", "web", "m", "c1", country="DE"),
        event("p", "payment_succeeded", "s", "2027-01-05T00:01:00Z"),
        event("r", "renewal_due", "s", "2027-02-05"),
        event("f", "payment_failed", "s", "2027-02-05T00:01:00Z"),
        {"id": "t1", "type": "tick", "at": "2027-02-06T12:00:00Z"},
        event("f2", "payment_failed", "s", "2027-02-06T13:00:00Z"),
        {"id": "t2", "type": "tick", "at": "2027-03-10"},
    ]
    _, outcomes = Engine(tiny).run(log)
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    ledger = Ledger.from_outcomes(outcomes, tiny)
    months = ledger.by_month()
    # past due through grace (to 2027-03-07): still subscribed; `then unpaid` ends it (the
    # engine marks it by revoking entitlements, timestamped at the day grace ran out)
    assert months[("EUR", "2027-02")].active == 1
    assert months[("EUR", "2027-02")].churned == 0
    assert months[("EUR", "2027-03")].active == 0
    assert months[("EUR", "2027-03")].churned == 1
    assert ledger.totals()["EUR"].churned == 1
    assert months[("EUR", "2027-01")].mrr == D("10.00")


def test_replay_empty_log(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("", encoding="utf-8")
    status, out, _ = cli(capsys, "replay", str(STREAMING), str(path), "--format", "json")
    assert status == 0
    assert json.loads(out) == {"ruleset": "streaming", "version": "2026.11.2", "events": 0,
                               "failed": 0, "totals": {}, "months": [], "groups": []}
    status, out, _ = cli(capsys, "replay", str(STREAMING), str(path))
    assert status == 0 and "no revenue in this log" in out


# -- growth ----------------------------------------------------------------------------


def test_growth_conversion_retention_and_promotions(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from revrules.growth import growth_of_outcomes

    log = [
        *EXPLAIN_LOG[:2],
        event("s2.paid", "payment_succeeded", "s2", "2026-12-12T00:05:00Z"),
        event("s2.renewal2", "renewal_due", "s2", "2027-01-12"),
        event("s2.paid2", "payment_succeeded", "s2", "2027-01-12T00:05:00Z"),
        *L1[:2],  # s1: no trial, paid at checkout, never renewed
        checkout("s5.checkout", "s5", "2026-11-20", "web_us", "premium_monthly", "c5",
                 country="US", trials_used=0),  # a trial never converted
    ]
    g = growth_of_outcomes(apply_all(log), rules())
    conv = {(c.dimension, c.value): c for c in g.conversions}
    plan = conv[("plan", "premium_monthly")]
    assert (plan.started, plan.trials, plan.trials_converted, plan.first_charges) == (3, 2, 1, 2)
    assert plan.trial_conversion == D("0.5")
    bf = conv[("promotion", "black_friday")]
    assert (bf.started, bf.trials_converted) == (1, 1)
    assert conv[("promotion", "(none)")].started == 2
    (promo,) = g.promotions
    assert (promo.promotion, promo.currency, promo.redemptions, promo.payments) == (
        "black_friday", "USD", 1, 2)
    assert (promo.gross, promo.discounts, promo.net) == (D("27.98"), D("14.00"), D("13.98"))
    cohorts = {(c.plan, c.month): c for c in g.cohorts}
    nov = cohorts[("premium_monthly", "2026-11")]
    assert nov.size == 3
    assert nov.retained == (2, 1, 0)  # paid ≥1: s1, s2; ≥2: s2; by 2027-01 at most 3
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in log), encoding="utf-8")
    status, out, err = cli(capsys, "growth", str(STREAMING), str(path))
    assert status == 0, err
    assert "black_friday  USD" in out and "50.0%" in out


def test_whatif_does_not_count_a_comment_as_a_change() -> None:
    commented = STREAMING.read_text(encoding="utf-8").replace(
        "  rate 0%  # everyone else: no tax charged here", "  rate 0%  # a new note").replace(
        'deny "trial already used" when', 'deny "trial #1 already used" when')
    assert "a new note" in commented and "trial #1" in commented
    new = revrules.load_text(commented, "commented.rr")
    texts = {line: (_text(rules(), f"s.rr:{line}:3"), _text(new, f"c.rr:{line}:3"))
             for line in (76, 102)}
    assert texts[102] == ("rate 0%", "rate 0%")
    assert texts[76] == ('deny "trial already used" when customer.trials_used > 0',
                         'deny "trial #1 already used" when customer.trials_used > 0')
    assert _text(rules(), "s.rr:98:1") == _text(new, "c.rr:98:1")  # the block, comments aside
