"""The ledger identities of LANGUAGE.md §5.1: outstanding, written off and MRR defined
once (``revrules.accounting``) for the ledger and ``reconcile``; no phantom discounts on
tax-inclusive storefronts; revenue events that keep their own contract."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

import revrules
from revrules import Engine, Ledger, Outcome, accounting
from revrules.reconcile import reconcile
from revrules.runtime import quantize

ROOT = Path(__file__).resolve().parent.parent
STREAMING = revrules.load(ROOT / "rulesets" / "streaming.rr")
D = Decimal

TINY = """ruleset tiny version "1"
customer { country: string }
storefront web { channel web region EU currency EUR tax exclusive psp stripe }
product p { entitlements a }
product q { entitlements b }
plan m {
  product p
  every 1 month
  price web EUR 10.00
  upgrade to plus immediate prorate
}
plan plus {
  product q
  every 1 month
  price web EUR 20.00
}
plan yearly {
  product p
  every 1 year
  price web EUR 120.00
}
promotion first {
  code "FIRST"
  percent 50 off once
}
promotion always {
  code "ALWAYS"
  percent 10 off forever
}
dunning d {
  retry after 1 day
  grace 5 days
  then THEN
}
"""


def tiny(then: str = "cancel") -> revrules.Ruleset:
    return revrules.load_text(TINY.replace("THEN", then), "tiny.rr")


def checkout(eid: str, sub: str, at: str, plan: str = "m", storefront: str = "web",
             **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": "checkout", "at": at, "subscription": sub, "plan": plan,
            "storefront": storefront, "customer": {"id": f"c-{sub}"}, **fields}


def ev(eid: str, kind: str, sub: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"id": eid, "type": kind, "at": at, "subscription": sub, **fields}


def run(rules: revrules.Ruleset, log: list[dict[str, Any]]) -> list[Outcome]:
    _, outcomes = Engine(rules).run(log)
    assert all(o.ok for o in outcomes), [(o.event, o.error) for o in outcomes if not o.ok]
    return outcomes


def dunning_log() -> list[dict[str, Any]]:
    """s1 fails its February renewal and dunning ends on 02-11; s2 keeps the log going."""
    return [
        checkout("c1", "s1", "2027-01-05"),
        ev("p1", "payment_succeeded", "s1", "2027-01-05T00:01:00Z"),
        ev("r1", "renewal_due", "s1", "2027-02-05"),
        ev("f1", "payment_failed", "s1", "2027-02-05T00:01:00Z"),
        {"id": "t1", "type": "tick", "at": "2027-02-11"},
        checkout("c2", "s2", "2027-04-02"),
        ev("p2", "payment_succeeded", "s2", "2027-04-02T00:01:00Z"),
    ]


# -- outstanding and written off ------------------------------------------------------


def test_a_dunning_pause_keeps_the_charge_outstanding_in_later_months() -> None:
    rules = tiny("pause")
    outcomes = run(rules, dunning_log())
    months = Ledger.from_outcomes(outcomes, rules).by_month()
    assert months[("EUR", "2027-02")].outstanding == D("10.00")
    assert months[("EUR", "2027-03")].outstanding == D("10.00")  # was 0.00: dropped
    assert months[("EUR", "2027-04")].outstanding == D("10.00")
    assert months[("EUR", "2027-04")].written_off == D("0.00")
    gaps = [g for g in reconcile(rules, dunning_log()).gaps if g.kind == "never_settled"]
    assert [(g.subscription, g.expected) for g in gaps] == [("s1", D("10.00"))]


def test_unpaid_keeps_the_charge_outstanding() -> None:
    rules = tiny("unpaid")
    months = Ledger.from_outcomes(run(rules, dunning_log()), rules).by_month()
    assert months[("EUR", "2027-03")].outstanding == D("10.00")
    assert months[("EUR", "2027-03")].mrr == D("0.00")  # unpaid counts no MRR


def test_a_dunning_cancellation_writes_the_charge_off() -> None:
    rules = tiny("cancel")
    ledger = Ledger.from_outcomes(run(rules, dunning_log()), rules)
    months = ledger.by_month()
    assert months[("EUR", "2027-02")].outstanding == D("0.00")
    assert months[("EUR", "2027-02")].written_off == D("10.00")
    assert months[("EUR", "2027-03")].written_off == D("0.00")
    assert ledger.totals()["EUR"].written_off == D("10.00")
    gaps = [g for g in reconcile(rules, dunning_log()).gaps if g.kind == "never_settled"]
    assert [(g.subscription, g.expected) for g in gaps] == [("s1", D("10.00"))]
    assert "written off" in gaps[0].detail


def test_ledger_and_reconcile_agree_on_a_generated_log() -> None:
    from revrules.generator import generate

    log = generate(STREAMING, customers=40, months=8, seed=5)
    _, outcomes = Engine(STREAMING).run(log)
    ledger = Ledger.from_outcomes(outcomes, STREAMING)
    gaps = [g for g in reconcile(STREAMING, log).gaps if g.kind == "never_settled"]
    open_at_end = {g.subscription: g for g in gaps if "still open" in g.detail}
    written = {g.subscription: g for g in gaps if "written off" in g.detail}
    assert len(open_at_end) + len(written) == len(gaps) > 0
    owing = {sub for sub, track in ledger.tracks.items() if track.account.outstanding}
    assert owing == set(open_at_end)
    for sub in owing:  # the same charge: the ledger's net, reconcile's amount owed
        charge = ledger.tracks[sub].account.charge
        assert charge is not None and charge.amount == open_at_end[sub].expected
    off = sum((f.written_off for f in ledger.totals().values()), D(0))
    assert (off > 0) == bool(written)


# -- MRR --------------------------------------------------------------------------------


def test_mrr_counts_an_unpaid_first_charge_at_checkout() -> None:
    rules = tiny()
    log = [checkout("c1", "s1", "2027-01-05"), checkout("c2", "s2", "2027-02-03")]
    months = Ledger.from_outcomes(run(rules, log), rules).by_month()
    assert months[("EUR", "2027-01")].active == 1
    assert months[("EUR", "2027-01")].mrr == D("10.00")  # was 0.00
    assert months[("EUR", "2027-01")].outstanding == D("10.00")


def test_mrr_follows_an_immediate_upgrade_at_once() -> None:
    rules = tiny()
    log = [
        checkout("c1", "s1", "2027-01-01"),
        ev("p1", "payment_succeeded", "s1", "2027-01-01T00:01:00Z"),
        ev("u1", "plan_change_requested", "s1", "2027-01-16", plan="plus"),
        ev("p2", "payment_succeeded", "s1", "2027-01-16T00:01:00Z"),
    ]
    months = Ledger.from_outcomes(run(rules, log), rules).by_month()
    assert months[("EUR", "2027-01")].mrr == D("20.00")  # was 10.00 until the renewal


def test_mrr_keeps_recurring_discounts_and_drops_one_off_ones() -> None:
    rules = tiny()
    log = [
        checkout("c1", "s1", "2027-01-05", code="FIRST"),
        checkout("c2", "s2", "2027-01-05", code="ALWAYS"),
        checkout("c3", "s3", "2027-01-05", plan="yearly"),
    ]
    months = Ledger.from_outcomes(run(rules, log), rules).by_month()
    # 10.00 (a `once` discount is not recurring) + 9.00 + 120.00 / 12
    assert months[("EUR", "2027-01")].mrr == D("29.00")


# -- phantom discounts -----------------------------------------------------------------


def test_a_proration_credit_leaves_no_phantom_discount_on_an_inclusive_storefront() -> None:
    customer = {"id": "c", "country": "JP", "trials_used": 1}
    log = [
        {"id": "c1", "type": "checkout", "at": "2027-01-01", "subscription": "s",
         "storefront": "ios", "plan": "premium_monthly", "customer": customer},
        ev("p1", "payment_succeeded", "s", "2027-01-01T00:01:00Z"),
        ev("u1", "plan_change_requested", "s", "2027-01-05", plan="premium_plus_monthly"),
        ev("p2", "payment_succeeded", "s", "2027-01-05T00:01:00Z"),
    ]
    outcomes = run(STREAMING, log)
    (decision,) = outcomes[2].decisions
    assert (decision.list, decision.credit, decision.total) == (D("17.41"), D("13.06"),
                                                                D("4.35"))
    paid = next(e for e in outcomes[3].events if e.type == "payment.succeeded")
    # tax once on 4.35 (0.40); the credit split at the same 10%: 13.06 - 1.19
    assert (paid.gross, paid.discount, paid.credit, paid.tax, paid.net) == (
        D("15.82"), D("0.00"), D("11.87"), D("0.40"), D("3.95"))
    ledger = Ledger.from_outcomes(outcomes, STREAMING)
    assert ledger.totals()["USD"].discounts == D("0.00")


RULESET = """ruleset r version "1"
customer {{ country: string }}
storefront s {{ channel web region EU currency {currency} tax {mode} psp stripe }}
product p {{ entitlements a }}
product q {{ entitlements b }}
plan small {{
  product p
  every 1 month
  price s {currency} {small}
  upgrade to big immediate prorate
}}
plan big {{
  product q
  every 1 month
  price s {currency} {big}
}}
{promotion}
{taxes}
"""


@st.composite
def rulesets(draw: st.DrawFn) -> tuple[str, bool]:
    currency = draw(st.sampled_from(["EUR", "JPY", "KWD"]))
    places = {"EUR": 2, "JPY": 0, "KWD": 3}[currency]

    def money(low: int, high: int) -> str:
        cents = draw(st.integers(low * 10 ** places, high * 10 ** places))
        return str(D(cents).scaleb(-places))

    small = money(1, 60)
    big = str(D(small) + D(money(0, 60)))
    mode = draw(st.sampled_from(["inclusive", "exclusive"]))
    rates = draw(st.lists(st.integers(0, 2500).map(lambda n: D(n).scaleb(-2)),
                          min_size=0, max_size=2))
    taxes = "\n".join(f"tax t{i} {{ rate {r}% }}" for i, r in enumerate(rates))
    promoted = draw(st.booleans())
    promotion = ""
    if promoted:
        off = draw(st.sampled_from(["percent 15 off forever", "percent 33 off once",
                                    f"amount {currency} {money(0, 5)} off for 2 cycles"]))
        promotion = f'promotion pr {{ code "PR" {off} }}'
    text = RULESET.format(currency=currency, mode=mode, small=small, big=big,
                          promotion=promotion, taxes=taxes)
    return text, promoted


@settings(max_examples=int(os.environ.get("REVRULES_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rulesets(), st.booleans(), st.integers(0, 40), st.integers(1, 2))
def test_charges_have_a_discount_exactly_when_a_promotion_applied(
        ruleset: tuple[str, bool], code: bool, later: int, renewals: int) -> None:
    text, promoted = ruleset
    rules = revrules.load_text(text, "r.rr")
    start = dt.date(2027, 1, 1)
    log: list[dict[str, Any]] = [checkout("c", "x", start.isoformat(), plan="small",
                                          storefront="s", **({"code": "PR"} if code else {}))]
    log.append(ev("p", "payment_succeeded", "x", f"{start}T00:01:00Z"))
    day = start + dt.timedelta(days=later % 31)
    log.append(ev("u", "plan_change_requested", "x", f"{day}T00:01:30Z", plan="big"))
    log.append(ev("pu", "payment_succeeded", "x", f"{day}T00:02:00Z"))
    for n in range(renewals):
        due = dt.date(2027, 2 + n, 1)
        log.append(ev(f"r{n}", "renewal_due", "x", due.isoformat()))
        log.append(ev(f"q{n}", "payment_succeeded", "x", f"{due}T00:01:00Z"))
    _, outcomes = Engine(rules).run(log)
    sf = rules.storefronts["s"]
    for outcome in outcomes:
        if not outcome.ok:
            assert outcome.error is not None and outcome.error.code == "no_open_charge"
            continue  # a credit that covered the whole proration settled it at once
        discounted = any(x.amount for d in outcome.decisions for x in d.discounts)
        for e in outcome.events:
            if e.type not in ("payment.succeeded", "subscription.started",
                              "subscription.renewed", "subscription.upgraded"):
                continue
            assert e.gross == e.net + e.discount + e.credit, e
            if e.type != "payment.succeeded":
                assert (e.discount != 0) == discounted or (
                    discounted and e.discount == 0 and sf.tax_inclusive), e
            if not discounted and e.type != "payment.succeeded":
                assert e.discount == quantize(D(0), sf.currency), e
            assert e.discount >= 0 and e.credit >= 0 and e.net >= 0, e
            if not sf.tax_inclusive:
                assert e.tax == e.amount - e.net, e
    ledger = Ledger.from_outcomes(outcomes, rules)
    for figures in ledger.totals().values():
        if not (promoted and code):
            assert figures.discounts == 0  # no promotion applied: exactly no discount
        assert figures.net == figures.gross - figures.discounts - figures.credits \
            - figures.refunds


# -- revenue events keep their contract -------------------------------------------------


def store_log(*notifications: tuple[str, str]) -> list[dict[str, Any]]:
    log = [{"id": "c", "type": "checkout", "at": "2026-12-01", "subscription": "s",
            "storefront": "ios", "plan": "premium_monthly",
            "customer": {"id": "c", "country": "US", "trials_used": 1}}]
    for i, (at, name) in enumerate(notifications):
        log.append({"id": f"n{i}", "type": "store_notification", "at": at, "subscription": "s",
                    "notification": name})
    return log


def test_a_store_expiry_cites_its_rule_and_source() -> None:
    outcomes = run(STREAMING, store_log(("2026-12-01", "SUBSCRIBED"), ("2027-01-02", "EXPIRED")))
    canceled = next(e for e in outcomes[-1].events if e.type == "subscription.canceled")
    assert (canceled.rule, canceled.source) == ("storefront ios", "streaming.rr:12:1")
    assert all(e.source is not None for e in outcomes[-1].events)


def consent_log() -> list[dict[str, Any]]:
    customer = {"id": "c", "country": "DE", "trials_used": 1}
    return [
        {"id": "c", "type": "checkout", "at": "2027-01-10", "subscription": "s",
         "storefront": "web_eu", "plan": "premium_monthly", "customer": customer},
        ev("p", "payment_succeeded", "s", "2027-01-10"),
        ev("r", "renewal_due", "s", "2027-02-10"),
        ev("p2", "payment_succeeded", "s", "2027-02-10"),
        ev("g", "consent_given", "s", "2027-02-11"),
        ev("r2", "renewal_due", "s", "2027-03-10"),
    ]


def test_consent_events_cite_the_price_line_and_carry_tax_exclusive_amounts() -> None:
    outcomes = run(STREAMING, consent_log())
    requested = next(e for e in outcomes[2].events if e.type == "consent.requested")
    collected = next(e for e in outcomes[4].events if e.type == "consent.collected")
    changed = next(e for e in outcomes[5].events if e.type == "price.changed")
    renewed = next(e for e in outcomes[5].events if e.type == "subscription.renewed")
    for e in (requested, collected, changed):
        assert e.rule == "price premium_monthly web_eu", e
        assert e.source == "streaming.rr:43:3", e  # the EUR 13.99 line, not null
        # 13.99 with 19% VAT inside: 2.23 tax, 11.76 before tax, as the renewal says
        assert (e.gross, e.list) == (D("11.76"), D("13.99")), e
    assert renewed.gross == D("11.76")


DOWNGRADE = """ruleset tiny version "1"
customer { country: string }
storefront web { channel web region EU currency EUR tax inclusive psp stripe }
product p { entitlements a }
plan premium {
  product p
  every 1 month
  price web EUR 12.99
  downgrade to basic at period_end
}
plan basic {
  product p
  every 1 month
  price web EUR 9.99
  price web EUR 10.99 from 2027-01-01 existing from 2027-06-01
}
tax vat { rate 19% }
"""


def test_a_period_end_downgrade_into_a_pending_price_reports_no_price_change() -> None:
    rules = revrules.load_text(DOWNGRADE, "tiny.rr")
    log = [
        checkout("c", "s", "2027-01-05", plan="premium"),
        ev("p", "payment_succeeded", "s", "2027-01-05"),
        ev("x", "plan_change_requested", "s", "2027-01-10", plan="basic"),
        ev("r", "renewal_due", "s", "2027-02-05"),
        ev("p2", "payment_succeeded", "s", "2027-02-05"),
        ev("r2", "renewal_due", "s", "2027-03-05"),
    ]
    outcomes = run(rules, log)
    for outcome in outcomes[3:]:
        assert "price.changed" not in [e.type for e in outcome.events], outcome.events
    assert outcomes[3].decisions[0].total == outcomes[5].decisions[0].total


# -- every revenue event cites its rule and source (stateful) --------------------------


def _lifecycle() -> Any:
    import test_state_machine

    class Cited(test_state_machine.Lifecycle):  # type: ignore[misc, name-defined]
        @rule(sub=st.sampled_from(test_state_machine.SUBS),
              name=st.sampled_from(test_state_machine.NOTIFICATIONS), days=st.integers(0, 40))
        def store_subscription(self, sub: str, name: str, days: int) -> None:
            """An app-store subscription and one of its store's notifications."""
            self.send({"type": "checkout", "subscription": sub, "plan": "premium_monthly",
                       "storefront": "ios", "customer": {"id": f"c-{sub}", "trials_used": 1}})
            self.send({"type": "store_notification", "subscription": sub,
                       "notification": "SUBSCRIBED"})
            self.advance(days)
            self.send({"type": "store_notification", "subscription": sub,
                       "notification": name})

        @invariant()
        def every_revenue_event_cites_a_rule_and_its_source(self) -> None:
            owed: dict[str, Decimal] = {}
            for sub in self.state.subscriptions.values():
                if sub.charge is not None and sub.status != "canceled":
                    owed[sub.charge.currency] = owed.get(sub.charge.currency, D(0)) + \
                        sub.charge.net
            totals = Ledger.fold(self.revenue, test_state_machine.RULES).totals()
            opened: dict[str, Decimal] = {}
            for e in self.revenue:
                if e.type in accounting.OPENING and e.amount:
                    opened[e.currency] = opened.get(e.currency, D(0)) + e.net
                elif e.type == "payment.succeeded":
                    opened[e.currency] = opened.get(e.currency, D(0)) - e.net
            for currency, figures in totals.items():  # outstanding = the open charges
                assert figures.outstanding == owed.get(currency, D(0)), (currency, owed)
                # every charge opened is paid, written off or still outstanding
                assert opened.get(currency, D(0)) == figures.written_off + figures.outstanding
            for e in self.revenue:
                assert e.rule, e
                assert e.source is not None and e.source.count(":") == 2, e
                assert e.gross == quantize(e.gross, e.currency), e

    Cited.TestCase.settings = settings(
        max_examples=int(os.environ.get("REVRULES_EXAMPLES", "60")), stateful_step_count=30, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    return Cited.TestCase


TestEveryRevenueEventIsCited = _lifecycle()
