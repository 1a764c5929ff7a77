"""Conditions that check must not crash at run time (issue 7, point 2).

Each case is either refused by the checker with a located diagnostic, or evaluated
to a stable error code for the event (the state unchanged). Attribute values that
are not finite, bounded decimals are refused at the edge.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

import revrules
from revrules import Engine, RulesetError, State

from conftest import same_but_remembered

HEAD = """ruleset g version "1"
customer {
  age: int
  signup: date
  score: decimal
  n: int = 0
}
storefront web { channel web currency EUR tax exclusive psp stripe }
product p { entitlements e }
"""
PLAN = "plan m { product p every 1 month price web EUR 10.00 }\n"


def diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(RulesetError) as info:
        revrules.load_text(text, "g.rr")
    return [(d.code, d.span.line, d.span.column, d.message) for d in info.value.diagnostics]


def checkout(customer: dict[str, object], at: str = "2027-01-01T00:00:00Z") -> dict[str, object]:
    return {"id": "e1", "type": "checkout", "at": at, "subscription": "s1", "storefront": "web",
            "plan": "m", "customer": {"id": "c1", **customer}}


@pytest.mark.parametrize("condition, column", [
    ("customer.age + 1 > 18", 22),
    ("min(customer.age, 5) > 1", 26),
    ("days_between(customer.signup, event.at) > 3", 35),
    ("-customer.score < 1", 23),
    ("round(customer.score) > 1", 28),
])
def test_optional_attribute_in_arithmetic_is_a_check_error(condition: str,
                                                            column: int) -> None:
    found = diagnostics(HEAD + PLAN + f"tax t {{ rate 5% when {condition} }}\n")
    assert [(code, line) for code, line, _, _ in found] == [("optional", 11)]
    code, line, col, message = found[0]
    assert col == column
    assert "no default" in message and "customer." in message


def test_optional_attribute_with_default_may_reach_arithmetic() -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when customer.n + 1 > 18 }\n")
    assert rules.name == "g"


def test_comparisons_with_optional_attributes_still_check() -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when customer.age > 18 or "
                               "customer.signup < event.at }\n")
    out = Engine(rules).apply(State(), checkout({}))
    assert out.ok


@pytest.mark.parametrize("places", ["40", "-2", "subscription.cycle"])
def test_rounding_places_are_bounded(places: str) -> None:
    text = (HEAD + PLAN + "route { stripe when round(total, " + places + ") > EUR 1.00 "
            "stripe otherwise }\n")
    found = diagnostics(text)
    assert [c for c, *_ in found] == ["range"]
    assert found[0][1:3] == (11, 21)
    assert "0 to 12" in found[0][3]


def test_round_beyond_precision_is_a_stable_error() -> None:
    rules = revrules.load_text(HEAD.replace("score: decimal", "score: decimal = 0") + PLAN +
                               "tax t { rate 5% when round(customer.score * customer.score"
                               " * customer.score, 12) > 1 }\n")
    out = Engine(rules).apply(State(), checkout({"score": "999999999999999"}))
    assert not out.ok and out.error is not None
    assert out.error.code == "out_of_range"
    assert same_but_remembered(State(), out.state)


@pytest.mark.parametrize(("value", "code"), [
    ("NaN", "bad_field"), ("sNaN", "bad_field"), ("-NaN", "bad_field"),
    ("Infinity", "bad_field"), ("-inf", "bad_field"), ("1e999999999", "out_of_range"),
    ("1e15", "out_of_range"), ("1e-7", "out_of_range"), ("1234567890123456", "out_of_range"),
    ("0.0000001", "out_of_range")])
def test_decimal_attributes_are_finite_and_bounded(value: str, code: str) -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when customer.score > 1 }\n")
    out = Engine(rules).apply(State(), checkout({"score": value}))
    assert not out.ok and out.error is not None
    assert out.error.code == code
    assert "customer attribute 'score'" in out.error.message


@pytest.mark.parametrize("value", [10**15, -(10**15)])
def test_int_attributes_are_bounded(value: int) -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when customer.age > 1 }\n")
    out = Engine(rules).apply(State(), checkout({"age": value}))
    assert not out.ok and out.error is not None
    assert out.error.code == "out_of_range"


@pytest.mark.parametrize("value", ["12.50", "999999999999999", "-0.000001", 7])
def test_decimal_attributes_in_range_are_accepted(value: object) -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when customer.score > 1 }\n")
    assert Engine(rules).apply(State(), checkout({"score": value})).ok


@pytest.mark.parametrize("text, line, column", [
    ("plan m { product p every 1000000000000 months price web EUR 10.00 }\n", 10, 20),
    ("plan m { product p every 0 months price web EUR 10.00 }\n", 10, 20),
    ("plan m { product p every 1 month trial 10000000 days price web EUR 10.00 }\n", 10, 34),
    (PLAN + "lifecycle { pause max 100000 years }\n", 11, 13),
    (PLAN + "lifecycle { refund full within 100000 years }\n", 11, 13),
    (PLAN + "dunning d { retry after 1 day, 1000000000 days }\n", 11, 13),
    (PLAN + "dunning d { grace 1000000 days }\n", 11, 13),
    (PLAN + "tax t { rate 5% when event.at + 1000000 years > event.at }\n", 11, 33),
])
def test_durations_are_bounded(text: str, line: int, column: int) -> None:
    found = diagnostics(HEAD + text)
    assert [(c, ln, col) for c, ln, col, _ in found] == [("range", line, column)]
    assert "100 years" in found[0][3]


def test_payment_terms_are_bounded() -> None:
    text = HEAD.replace("psp stripe }", "psp stripe terms net 10000000 days }") + PLAN
    found = diagnostics(text)
    assert [(c, ln) for c, ln, _, _ in found] == [("range", 8)]


def test_date_arithmetic_past_the_calendar_is_a_stable_error() -> None:
    rules = revrules.load_text(HEAD + PLAN + "tax t { rate 5% when 9999-01-01 + 100 years "
                               "> event.at }\n")
    out = Engine(rules).apply(State(), checkout({}))
    assert not out.ok and out.error is not None
    assert out.error.code == "out_of_range"


def test_min_does_not_mix_dates_and_datetimes() -> None:
    found = diagnostics(HEAD + PLAN + "tax t { rate 5% when min(event.at, 2027-01-01) > "
                        "event.at }\n")
    assert [c for c, *_ in found] == ["type"]


def test_days_between_counts_calendar_days_in_the_ruleset_timezone() -> None:
    # 2027-01-01T20:00Z is 2027-01-02 05:00 in Tokyo: one calendar day after Jan 1
    text = (HEAD.replace('ruleset g version "1"', 'ruleset g version "1"\ntimezone "Asia/Tokyo"')
            + PLAN + "tax t { rate 10% when days_between(2027-01-01, event.at) == 1 }\n")
    out = Engine(revrules.load_text(text)).apply(State(), checkout({}, "2027-01-01T20:00:00Z"))
    assert out.ok and out.decisions[0].tax == Decimal("1.00")


@pytest.mark.parametrize("value", ["0001-01-01", "1899-12-31", "3000-01-01", "9999-12-31"])
def test_date_attributes_are_within_the_window(value: str) -> None:
    text = (HEAD.replace('ruleset g version "1"', 'ruleset g version "1"\ntimezone "Asia/Tokyo"')
            + PLAN + "tax t { rate 10% when customer.signup < event.at }\n")
    out = Engine(revrules.load_text(text)).apply(State(), checkout({"signup": value}))
    assert not out.ok and out.error is not None
    assert out.error.code == "out_of_range"
    assert "between 1900-01-01 and 2999-12-31" in out.error.message


@pytest.mark.parametrize("value", ["1900-01-01", "2999-12-31"])
def test_date_attributes_at_the_window_edges_are_accepted(value: str) -> None:
    text = (HEAD.replace('ruleset g version "1"', 'ruleset g version "1"\ntimezone "Asia/Tokyo"')
            + PLAN + "tax t { rate 10% when customer.signup < event.at }\n")
    assert Engine(revrules.load_text(text)).apply(State(), checkout({"signup": value})).ok
