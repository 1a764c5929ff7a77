"""The exact wording of messages a user reads: denials and event errors.

They say what is wrong and what to do, in the words of the language and of the wire
format (``true``, ``null``, ``"text"``), never in Python's (``True``, ``None``, ``'text'``).
"""

from __future__ import annotations

from typing import Any

import pytest

import revrules
from revrules import Engine, State

RULES = """\
ruleset msg version "1"
customer { trials_used: int = 0  vip: bool = false }
storefront web { channel web currency EUR tax inclusive psp stripe }
product a { entitlements x }
plan monthly { product a every 1 month price web EUR 12.99 }
dunning soft for customer.vip { retry after 2 days  grace 5 days  then unpaid }
dunning strict { retry after 2 days  grace 5 days  then pause }
lifecycle { pause max 1 month }
"""
ENGINE = Engine(revrules.load_text(RULES, "msg.rr"))


def apply(events: list[dict[str, Any]]) -> list[revrules.Outcome]:
    state, outcomes = State(), []
    for n, event in enumerate(events, 1):
        outcome = ENGINE.apply(state, {"id": f"e{n}", **event})
        state = outcome.state
        outcomes.append(outcome)
    return outcomes


def dunning_log(vip: bool) -> list[dict[str, Any]]:
    return [
        {"type": "checkout", "at": "2027-01-01", "subscription": "s", "storefront": "web",
         "plan": "monthly", "customer": {"id": "c", "vip": vip}},
        {"type": "payment_failed", "at": "2027-01-01T00:01:00Z", "subscription": "s"},
        {"type": "tick", "at": "2027-01-03"},
        {"type": "payment_failed", "at": "2027-01-03T00:01:00Z", "subscription": "s"},
        {"type": "tick", "at": "2027-01-06"},
        {"type": "resume_requested", "at": "2027-01-07", "subscription": "s"},
    ]


def test_resuming_a_subscription_dunning_paused_says_why_and_how_to_resume() -> None:
    *_, tick, resume = apply(dunning_log(vip=False))
    assert [e.type for e in tick.events] == ["subscription.paused", "entitlement.revoked"]
    (denied,) = resume.decisions
    assert denied.kind == "deny"
    assert denied.reasons == ("subscription is paused by dunning because a charge went "
                              "unpaid; pay the open charge of EUR 12.99 to resume it",)


def test_resuming_an_unpaid_subscription_says_how_to_reactivate_it() -> None:
    *_, resume = apply(dunning_log(vip=True))
    assert resume.decisions[0].reasons == (
        "subscription is unpaid, not paused; pay the open charge of EUR 12.99 to "
        "reactivate it",)


def test_resuming_an_active_subscription() -> None:
    (*_, resume) = apply([*dunning_log(vip=False)[:1],
                          {"type": "payment_succeeded", "at": "2027-01-01T00:01:00Z",
                           "subscription": "s"},
                          {"type": "resume_requested", "at": "2027-01-02", "subscription": "s"}])
    assert resume.decisions[0].reasons == ("subscription is active, not paused",)


def checkout_with(**customer: Any) -> revrules.Error:
    (outcome,) = apply([{"type": "checkout", "at": "2027-01-01", "subscription": "s",
                         "storefront": "web", "plan": "monthly",
                         "customer": {"id": "c", **customer}}])
    assert not outcome.ok and outcome.error is not None
    return outcome.error


@pytest.mark.parametrize(("value", "shown"), [
    (True, "true"), (False, "false"), ("3", '"3"'), ("l’été", '"l’été"'),
])
def test_a_customer_attribute_of_the_wrong_type_is_shown_as_json(value: Any,
                                                                 shown: str) -> None:
    error = checkout_with(trials_used=value)
    assert (error.code, error.message) == (
        "bad_field", f"customer attribute 'trials_used' must be a whole number, found {shown}")


@pytest.mark.parametrize(("value", "found"), [
    (1.5, "a number with a fraction (write decimals as strings)"), ([1], "an array"),
    ({"n": None}, "an object"),
])
def test_a_customer_attribute_that_no_attribute_can_hold(value: Any, found: str) -> None:
    error = checkout_with(trials_used=value)
    assert (error.code, error.message) == (
        "bad_field", "customer attribute 'trials_used' must be a string, a whole number, "
        f"true, false or null, found {found}")


def test_a_bool_attribute_given_a_string() -> None:
    assert checkout_with(vip="yes").message == (
        "customer attribute 'vip' must be true or false, found \"yes\"")


def test_a_long_value_is_cut_short() -> None:
    message = checkout_with(trials_used="x" * 200).message
    assert message == ("customer attribute 'trials_used' must be a whole number, found \""
                       + "x" * 59 + "…")


def error_of(event: dict[str, Any]) -> tuple[str, str]:
    (outcome,) = apply([event])
    assert outcome.error is not None
    return outcome.error.code, outcome.error.message


@pytest.mark.parametrize(("at", "message"), [
    (None, "'at' must be an ISO 8601 string, found null"),
    (True, "'at' must be an ISO 8601 string, found true"),
    (20270101, "'at' must be an ISO 8601 string, found 20270101"),
    (["2027-01-01"], "'at' must be an ISO 8601 string, found [\"2027-01-01\"]"),
    ("soon", "'at' is not an ISO 8601 date or datetime: \"soon\""),
])
def test_a_bad_time_is_shown_as_json(at: Any, message: str) -> None:
    assert error_of({"type": "tick", "at": at}) == ("bad_field", message)


def test_a_time_without_an_offset_is_shown_as_json() -> None:
    assert error_of({"type": "tick", "at": "2027-01-01T10:00:00"}) == (
        "naive_datetime", "'at' has no UTC offset: \"2027-01-01T10:00:00\" (write 'Z' or "
        "'+01:00')")


@pytest.mark.parametrize(("amount", "message"), [
    ("ten", "'amount' is not a number: \"ten\""),
    ("-1", "'amount' must be a non-negative number: \"-1\""),
    (-1, "'amount' must be a non-negative number: -1"),
    ("NaN", "'amount' must be a non-negative number: \"NaN\""),
])
def test_a_bad_amount_is_shown_as_json(amount: Any, message: str) -> None:
    event = {"type": "refund_requested", "at": "2027-01-01", "subscription": "s",
             "amount": amount}
    assert error_of(event) == ("bad_field", message)


# -- state files ----------------------------------------------------------------------

STATE = {"format": "revrules-state/2", "subscriptions": {}, "applied": {}}


@pytest.mark.parametrize(("change", "message"), [
    ({"format": None}, 'not a revrules state file (format null, expected "revrules-state/2")'),
    ({"applied": {"e1": 1}}, 'expected an object {"digest", "at", …}, found 1 @ $.applied'),
    ({"clock": True}, "expected a datetime like 2026-11-15T10:00:00Z, found true @ $.clock"),
    ({"clock": "noon"}, 'expected a datetime like 2026-11-15T10:00:00Z, found "noon" @ $.clock'),
    ({"redemptions": {"bf": None}}, "expected a whole number, found null @ $.redemptions"),
    ({"subscriptions": []}, "expected an object, found [] @ $.subscriptions"),
])
def test_a_bad_state_file_says_what_it_found_as_json(change: dict[str, Any],
                                                     message: str) -> None:
    import json

    from revrules.wire import WireError, state_from_json
    with pytest.raises(WireError) as info:
        state_from_json(json.dumps({**STATE, **change}))
    assert str(info.value) == f"not a valid State: {message}"


# -- settlement reports ---------------------------------------------------------------


@pytest.mark.parametrize(("row", "message"), [
    ("stripe,r1,2027-01-01,ten,EUR", 'line 2: amount and fee must be decimal numbers, found '
     '"ten" and ""'),
    ("stripe,r1,2027-01-01,1.00,EUR,x", 'line 2: amount and fee must be decimal numbers, '
     'found "1.00" and "x"'),
    ("stripe,r1,soon,1.00,EUR,0", 'line 2: date must be YYYY-MM-DD, found "soon"'),
])
def test_a_bad_settlement_row_quotes_what_it_found(row: str, message: str) -> None:
    from revrules.reconcile import SettlementError, read_settlements
    header = "psp,reference,date,amount,currency" + (",fee" if row.count(",") == 5 else "")
    with pytest.raises(SettlementError) as info:
        read_settlements([header + "\n", row + "\n"])
    assert str(info.value) == message
