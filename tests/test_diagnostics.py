"""Parser and checker diagnostics: message text, position and the underlined source.

Every test asserts what a user sees: the message, the line and column, and the text
the span underlines (``source.splitlines()[line - 1][column - 1:end_column - 1]``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import revrules
from revrules import Diagnostic, RulesetError
from revrules.nodes import Span

from conftest import SMALL_RULESET

ROOT = Path(__file__).resolve().parent.parent

BASE = SMALL_RULESET  # tests append a snippet after it (line 17 on)
NEXT = len(BASE.splitlines()) + 1  # the line an appended snippet starts on


# -- helpers -----------------------------------------------------------------------------


def underlined(source: str, span: Span) -> str:
    """The source text a span covers (single-line spans)."""
    assert span.line == span.end_line, span
    return source.splitlines()[span.line - 1][span.column - 1:span.end_column - 1]


def where(source: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """(line, column), 1-based, of the nth occurrence of ``needle`` in ``source``.

    In a text made of BASE plus a snippet, only the snippet is searched.
    """
    offset = len(BASE) - 1 if source.startswith(BASE) and source != BASE else -1
    for _ in range(nth + 1):
        offset = source.index(needle, offset + 1)
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


def check(text: str) -> revrules.CheckResult:
    return revrules.check(revrules.parse(text, "t.rr"))


def syntax_error(text: str) -> Diagnostic:
    """The single diagnostic of a text that does not parse."""
    with pytest.raises(RulesetError) as info:
        revrules.parse(text, "t.rr")
    assert len(info.value.diagnostics) == 1, info.value
    return info.value.diagnostics[0]


def only_error(text: str) -> Diagnostic:
    """The one error a text that parses produces (warnings ignored)."""
    result = check(text)
    errors = result.errors
    assert len(errors) == 1, "\n\n".join(d.render(text) for d in result.diagnostics)
    assert not result.ok and result.model is None
    return errors[0]


def assert_diag(d: Diagnostic, text: str, message: str, at: str, nth: int = 0,
                *, covers: str | None = None, severity: str = "error") -> None:
    """``d`` says ``message``, starts at the nth ``at`` and underlines ``covers`` (or ``at``)."""
    assert d.message == message
    assert d.severity == severity
    assert d.span.file == "t.rr"
    assert (d.span.line, d.span.column) == where(text, at, nth)
    assert underlined(text, d.span) == (covers if covers is not None else at)


# -- syntax errors -----------------------------------------------------------------------


def expected_words(message: str) -> set[str]:
    """The words after "; expected " (quotes, commas, 'or' and articles dropped)."""
    assert "; expected " in message, message
    part = message.split("; expected ", 1)[1]
    return set(re.findall(r"[A-Za-z_]+", part)) - {"or", "a", "an", "unit", "like"}


def test_syntax_error_names_the_alternatives_in_words() -> None:
    text = BASE + "storefront x { channel web currency EUR tax both psp s }\n"
    d = syntax_error(text)
    assert d.code == "syntax"
    assert d.message.startswith("unexpected 'both'; expected ")
    assert expected_words(d.message) == {"inclusive", "exclusive"}
    assert (d.span.line, d.span.column) == (NEXT, 45)
    assert underlined(text, d.span) == "both"


def test_syntax_error_expects_an_expression() -> None:
    text = BASE + "tax v { rate 5% when }\n"
    d = syntax_error(text)
    assert_diag(d, text, "unexpected '}'; expected an expression", "}")
    assert (d.span.line, d.span.column, d.span.end_column) == (NEXT, 22, 23)


def test_syntax_error_after_an_operator_expects_an_expression() -> None:
    text = BASE + 'tax v { rate 5% when customer.country == }\n'
    d = syntax_error(text)
    assert_diag(d, text, "unexpected '}'; expected an expression", "}")


def test_syntax_error_in_a_money_literal() -> None:
    text = BASE + "plan q { price web_eu EUR }\n"
    d = syntax_error(text)
    assert_diag(d, text, "unexpected 'EUR'; expected an amount like EUR 12.99", "EUR")


def test_syntax_error_in_a_duration_unit() -> None:
    text = BASE + "plan q { every 1 fortnight }\n"
    d = syntax_error(text)
    assert d.message.startswith("unexpected 'fortnight'; expected ")
    units = {"day", "days", "week", "weeks", "month", "months", "year", "years"}
    assert {"days", "weeks", "months", "years"} <= expected_words(d.message) <= units
    assert (d.span.line, d.span.column) == where(text, "fortnight")
    assert underlined(text, d.span) == "fortnight"


def test_syntax_error_after_then_lists_the_dunning_actions() -> None:
    text = BASE + "dunning d { then stop }\n"
    d = syntax_error(text)
    assert d.message.startswith("unexpected 'stop'; expected ")
    assert expected_words(d.message) == {"cancel", "pause", "unpaid"}
    assert underlined(text, d.span) == "stop"


def test_syntax_error_on_a_bad_character() -> None:
    text = BASE + "tax v { rate 5% when customer.country == 'DE' }\n"
    d = syntax_error(text)
    assert d.message == "unexpected character \"'\"; expected an expression"
    assert (d.span.line, d.span.column) == where(text, "'DE'")
    assert underlined(text, d.span) == "'"


def test_syntax_error_at_end_of_file_points_after_the_last_character() -> None:
    text = BASE + "storefront x { channel web"
    d = syntax_error(text)
    assert d.message.startswith("unexpected end of file; expected ")
    assert "'}'" in d.message and "'currency'" in d.message
    last = text.splitlines()[-1]
    assert (d.span.line, d.span.column) == (NEXT, len(last) + 1)


def test_syntax_error_expected_list_is_only_what_can_follow() -> None:
    # After a complete condition in a tax table the parser can take an operator,
    # another 'rate' or the closing '}'; it cannot take ')' or ']' (nothing is open),
    # nor a bare name. Lark's LALR `expected` merges lookaheads from other contexts;
    # `UnexpectedToken.accepts` is exact.
    text = BASE + 'tax v { rate 5% when customer.country == "DE" "x" }\n'
    d = syntax_error(text)
    assert (d.span.line, d.span.column) == where(text, '"x"')
    assert underlined(text, d.span) == '"x"'
    assert d.message.startswith("unexpected '\"x\"'; expected ")
    assert "'rate'" in d.message and "'}'" in d.message
    assert "')'" not in d.message and "']'" not in d.message
    assert "a name" not in d.message


SYNTAX_MISTAKES = [
    "storefront x { channel web currency EUR tax both psp s }",
    "storefront x { channel }",
    "storefront x { channel web currency EUR tax inclusive psp a, }",
    "storefront x @ ",
    "storefront x { channel web",
    "tax v { rate 5% when }",
    "tax v { rate 5 when true }",
    'tax v { rate 5% when customer.country == "DE" "x" }',
    "tax v { rate 5% when (customer.country == \"DE\" }",
    "tax v { rate 5% when f(1,) }",
    "tax v { rate 5% when customer.country not \"x\" }",
    "route { stripe }",
    "route r r2 { }",
    "plan q { price web_eu EUR }",
    "plan q { price web_eu EUR 5 from 2027 }",
    "plan q { every 1 fortnight }",
    "plan q { not sold web_eu }",
    "plan q { upgrade to monthly later }",
    "promotion p { percent 5 off }",
    "promotion p { limit 5 }",
    "promotion p { valid 2026-01-01 }",
    "dunning d { then stop }",
    "dunning d for { }",
    "lifecycle { refund full within 14 days, partial after }",
    "lifecycle { cancel later }",
    "customer { a: }",
    "ruleset",
    "}",
]


def _terminal_names() -> set[str]:
    from revrules.parser import _parser
    return {t.name for t in _parser().terminals} | {"$END"}


@pytest.mark.parametrize("snippet", SYNTAX_MISTAKES)
def test_syntax_errors_never_show_token_names(snippet: str) -> None:
    text = BASE + snippet + "\n"
    d = syntax_error(text)
    assert d.code == "syntax"
    assert d.span.line == NEXT
    assert "expected" in d.message
    # quoted text is the user's or a keyword; outside quotes no grammar terminal name
    # (RBRACE, __ANON_3, NAME, $END, ...) may appear
    bare = re.sub(r"'[^']*'|\"[^\"]*\"", "''", d.message)
    for name in _terminal_names():
        assert not re.search(rf"(?<![\w$]){re.escape(name)}(?!\w)", bare), (name, d.message)


@pytest.mark.parametrize("before", [
    "product premium", "every 1 month", "trial 7 days", "price web_eu EUR 9.99",
    "price web_eu EUR 9.99 from 2027-01-01", "not sold in web_us",
])
@pytest.mark.parametrize("change", ["upgrade to other immediate prorate",
                                    "downgrade to other at period_end"])
def test_plan_change_may_follow_any_plan_item(before: str, change: str) -> None:
    # 'upgrade'/'downgrade' are keywords wherever a plan item can start, whatever
    # the item before them ends with (a name, a duration, an amount, a date)
    items = ["not sold in web_us", "product premium", "every 1 month", "price web_eu EUR 9.99"]
    if before in items:
        items.remove(before)
    items += [before, change]
    text = (
        "ruleset t\n"
        "storefront web_eu { channel web currency EUR tax inclusive psp stripe }\n"
        "storefront web_us { channel web currency USD tax exclusive psp stripe }\n"
        "product premium { entitlements hd }\n"
        "plan other { product premium every 1 month price web_eu EUR 1.00 "
        "not sold in web_us }\n"
        "plan monthly {\n" + "".join(f"  {item}\n" for item in items) + "}\n"
    )
    result = check(text)
    assert result.errors == (), "\n\n".join(d.render(text) for d in result.diagnostics)
    assert result.model is not None
    (plan,) = [p for p in result.model.plans if p.name == "monthly"]
    assert [(c.kind, c.target) for c in plan.changes] == [(change.split()[0], "other")]


# -- impossible literals -----------------------------------------------------------------


def test_invalid_date_literal() -> None:
    text = BASE + 'promotion p { code "A" valid 2026-02-30 to 2026-03-01 percent 5 off once }\n'
    d = syntax_error(text)
    assert d.code == "literal"
    assert_diag(d, text, "'2026-02-30' is not a valid date", "2026-02-30")
    assert (d.span.line, d.span.column, d.span.end_column) == (NEXT, 30, 40)


def test_invalid_date_in_a_scheduled_price() -> None:
    text = BASE.replace("price web_us USD 9.99", "price web_us USD 9.99 from 2027-13-01")
    d = syntax_error(text)
    assert_diag(d, text, "'2027-13-01' is not a valid date", "2027-13-01")


def test_invalid_datetime_literal() -> None:
    text = BASE + "tax v { rate 5% when event.at > 2027-02-30T00:00:00Z }\n"
    d = syntax_error(text)
    assert_diag(d, text, "'2027-02-30T00:00:00Z' is not a valid datetime",
                "2027-02-30T00:00:00Z")


def test_fractional_duration() -> None:
    text = BASE + "plan p2 { product premium every 1.5 months }\n"
    d = syntax_error(text)
    assert d.code == "literal"
    assert_diag(d, text, "expected a whole number, found 1.5", "1.5")


def test_fractional_payment_terms() -> None:
    text = BASE + "storefront y { channel web currency EUR tax inclusive psp s terms net 2.5 days }\n"
    d = syntax_error(text)
    assert_diag(d, text, "expected a whole number, found 2.5", "2.5")


def test_load_text_reports_a_literal_error_with_a_caret() -> None:
    text = BASE + 'promotion p { code "A" valid 2026-02-30 to 2026-03-01 percent 5 off once }\n'
    with pytest.raises(RulesetError) as info:
        revrules.load_text(text, "t.rr")
    rendered = str(info.value)
    assert rendered.startswith(f"t.rr:{NEXT}:30: error[literal]: '2026-02-30' is not a valid date\n")
    assert "^^^^^^^^^^" in rendered and "^^^^^^^^^^^" not in rendered


# -- duplicates --------------------------------------------------------------------------


def test_duplicate_storefront() -> None:
    text = BASE + "storefront web_eu { channel web currency EUR tax inclusive psp stripe }\n"
    d = only_error(text)
    assert d.code == "duplicate"
    assert_diag(d, text, "duplicate storefront 'web_eu' (first declared at t.rr:6:12)",
                "web_eu")
    assert (d.span.line, d.span.column) == (NEXT, 12)


def test_duplicate_plan() -> None:
    text = BASE + ("plan monthly { product premium every 1 month price web_eu EUR 1.00 "
                   "price web_us USD 1.00 }\n")
    d = only_error(text)
    assert_diag(d, text, "duplicate plan 'monthly' (first declared at t.rr:10:6)",
                "monthly")


def test_duplicate_product() -> None:
    text = BASE + "product premium { entitlements x }\n"
    d = only_error(text)
    assert_diag(d, text, "duplicate product or bundle 'premium' (first declared at t.rr:8:9)",
                "premium")


def test_duplicate_product_or_bundle_name_points_back_to_the_earlier_one() -> None:
    # the bundle 'duo' is on line 9; the product 'duo' after it is the duplicate
    text = BASE + "product duo { entitlements x }\n"
    d = only_error(text)
    assert_diag(d, text, "duplicate product or bundle 'duo' (first declared at t.rr:9:8)",
                "duo")


def test_duplicate_promotion_code_is_case_insensitive() -> None:
    text = BASE + ('promotion a { code "Spring" percent 5 off once }\n'
                   'promotion b { code "SPRING" percent 5 off once }\n')
    d = only_error(text)
    assert d.code == "duplicate"
    assert_diag(d, text, f'code "SPRING" is used twice (first at t.rr:{NEXT}:15)',
                'code "SPRING"')
    assert d.span.line == NEXT + 1


def test_duplicate_promotion_name() -> None:
    text = BASE + ('promotion a { code "A" percent 5 off once }\n'
                   'promotion a { code "B" percent 5 off once }\n')
    d = only_error(text)
    assert_diag(d, text, f"duplicate promotion 'a' (first declared at t.rr:{NEXT}:11)", "a {",
                1, covers="a")


# -- unknown references, with suggestions ------------------------------------------------


def test_unknown_storefront_suggests_the_first_declared_of_equally_close_names() -> None:
    # 'web_xx' is as close to 'web_eu' as to 'web_us': the tie goes to declaration order
    text = BASE + ("plan p2 { product premium every 1 month price web_xx EUR 1.00 "
                   "not sold in web_eu, web_us }\n")
    d = only_error(text)
    assert d.code == "unknown_storefront"
    assert_diag(d, text, "unknown storefront 'web_xx' (did you mean 'web_eu'?)", "web_xx")
    assert (d.span.line, d.span.column, d.span.end_column) == (NEXT, 47, 53)


def test_suggestion_ties_follow_declaration_order_not_sorting() -> None:
    swapped = BASE.replace(
        "storefront web_eu { channel web currency EUR tax inclusive psp adyen, stripe }\n"
        "storefront web_us { channel web currency USD tax exclusive psp stripe }\n",
        "storefront web_us { channel web currency USD tax exclusive psp stripe }\n"
        "storefront web_eu { channel web currency EUR tax inclusive psp adyen, stripe }\n")
    assert swapped != BASE
    text = swapped + ("plan p2 { product premium every 1 month price web_xx EUR 1.00 "
                      "not sold in web_eu, web_us }\n")
    d = only_error(text)
    assert_diag(d, text, "unknown storefront 'web_xx' (did you mean 'web_us'?)", "web_xx")


def test_unknown_storefront_in_a_promotion() -> None:
    text = BASE + 'promotion p { code "A" storefronts web_eu, web_uss percent 5 off once }\n'
    d = only_error(text)
    assert_diag(d, text, "unknown storefront 'web_uss' (did you mean 'web_us'?)", "web_uss")


def test_unknown_plan() -> None:
    text = BASE.replace("  product premium\n", "  product premium\n  upgrade to monthy immediate\n")
    d = only_error(text)
    assert d.code == "unknown_plan"
    assert_diag(d, text, "unknown plan 'monthy' (did you mean 'monthly'?)", "monthy")


def test_unknown_plan_in_a_contract() -> None:
    text = BASE + ('contract c { customer "c1" plan montly price EUR 5.00 '
                   "valid 2027-01-01 to 2027-12-31 }\n")
    d = only_error(text)
    assert_diag(d, text, "unknown plan 'montly' (did you mean 'monthly'?)", "montly")


def test_product_named_where_a_bundle_is_expected() -> None:
    text = BASE + ("plan p2 { bundle premium every 1 month price web_eu EUR 1.00 "
                   "not sold in web_us }\n")
    d = only_error(text)
    assert d.code == "kind"
    assert_diag(d, text, "'premium' is a product; write 'product premium'", "premium")


def test_bundle_named_where_a_product_is_expected() -> None:
    text = BASE + ("plan p2 { product duo every 1 month price web_eu EUR 1.00 "
                   "not sold in web_us }\n")
    d = only_error(text)
    assert_diag(d, text, "'duo' is a bundle; write 'bundle duo'", "duo")


def test_unknown_product() -> None:
    text = BASE + ("plan p2 { product premum every 1 month price web_eu EUR 1.00 "
                   "not sold in web_us }\n")
    d = only_error(text)
    assert_diag(d, text, "unknown product 'premum' (did you mean 'premium'?)", "premum")


def test_unknown_eligibility_rule() -> None:
    text = BASE.replace("  every 1 month\n", "  every 1 month\n  trial 7 days if trial_okk\n")
    d = only_error(text)
    assert d.code == "unknown_eligibility_rule"
    assert_diag(d, text, "unknown eligibility rule 'trial_okk' (did you mean 'trial_ok'?)",
                "trial_okk")


def test_unknown_psp() -> None:
    text = BASE + "route { stripee otherwise }\n"
    d = only_error(text)
    assert d.code == "unknown_psp"
    assert_diag(d, text, "unknown psp 'stripee' (did you mean 'stripe'?)", "stripee")


# -- PSPs a storefront does not list (LANGUAGE.md §5.1 "PSPs") --------------------------

# BASE plus an app store storefront: web_eu lists adyen, stripe; web_us stripe; ios apple
PSPS = BASE.replace(
    "storefront web_us { channel web currency USD tax exclusive psp stripe }\n",
    "storefront web_us { channel web currency USD tax exclusive psp stripe }\n"
    "storefront ios { channel app_store currency USD tax inclusive psp apple }\n").replace(
    "  price web_us USD 9.99\n", "  price web_us USD 9.99\n  price ios USD 9.99\n")
WEB_PSPS = "web_eu lists adyen, stripe; web_us lists stripe"


def test_psp_base_checks_clean() -> None:
    assert check(PSPS).diagnostics == ()


def test_retry_via_a_psp_no_web_storefront_lists() -> None:
    # the policy applies everywhere, but on ios the store retries: apple is never usable
    text = PSPS + "dunning d { retry after 1 day retry via apple }\n"
    d = only_error(text)
    assert d.code == "unlisted_psp"
    assert_diag(d, text, "psp 'apple' is not listed by any storefront dunning 'd' can apply to",
                "apple }", 1, covers="apple")
    assert d.hint == f"{WEB_PSPS} (on ios the store retries)"


def test_retry_via_a_psp_the_policys_storefront_does_not_list() -> None:
    text = PSPS + ("dunning d for storefront == web_us { retry after 1 day retry via adyen }\n"
                   "dunning other { retry after 2 days }\n")
    d = only_error(text)
    assert_diag(d, text, "psp 'adyen' is not listed by any storefront dunning 'd' can apply to",
                "adyen }", covers="adyen")
    assert d.hint == "web_us lists stripe"


def test_retry_via_a_psp_one_of_the_policys_storefronts_lists_is_fine() -> None:
    # web_us does not list adyen: there its retries go to the charge's PSP (run time)
    text = PSPS + "dunning d for storefront.channel == web { retry after 1 day retry via adyen }\n"
    assert check(text).diagnostics == ()


def test_the_fallback_policy_applies_where_no_conditional_one_surely_does() -> None:
    # web_eu and web_us always take 'web'; the fallback is left with ios, where the store
    # retries, so its 'retry via' can never be used ... and that is moot, not an error
    text = PSPS + ("dunning plain { retry after 1 day retry via adyen }\n"
                   "dunning web for storefront.channel == web { retry after 1 day }\n")
    assert check(text).errors == ()
    # a fallback left with web_us alone must name a PSP web_us lists
    text = PSPS + ("dunning plain { retry after 1 day retry via adyen }\n"
                   "dunning eu for storefront == web_eu { retry after 1 day }\n")
    d = only_error(text)
    assert_diag(d, text, "psp 'adyen' is not listed by any storefront dunning 'plain' can "
                "apply to", "adyen }", covers="adyen")
    assert d.hint == "web_us lists stripe (on ios the store retries)"


def test_a_condition_the_checker_cannot_decide_may_apply_anywhere() -> None:
    text = PSPS + ('dunning d for customer.country == "DE" { retry after 1 day retry via '
                   'adyen }\n')
    assert check(text).diagnostics == ()


def test_route_line_for_a_psp_no_storefront_it_can_apply_to_lists() -> None:
    text = PSPS + "route {\n  apple when storefront.channel == web\n  stripe otherwise\n}\n"
    d = only_error(text)
    assert d.code == "unlisted_psp"
    assert_diag(d, text, "psp 'apple' is not listed by any storefront this route line can "
                "apply to", "apple when", covers="apple")
    assert d.hint == WEB_PSPS


@pytest.mark.parametrize("condition", [
    "storefront == web_us", "storefront in {web_us}", "subscription.storefront == web_us",
    'storefront.name == "web_us"', 'storefront.currency == "USD" and storefront != ios',
    "not (storefront.channel != web or storefront == web_eu)",
    "storefront.channel == web and storefront.region != EU and total > USD 9.00",
])
def test_route_line_conditions_that_single_out_one_storefront(condition: str) -> None:
    # web_eu and web_us have regions EU and ALL
    text = (PSPS.replace("channel web currency EUR", "channel web region EU currency EUR")
            + f"route {{\n  adyen when {condition}\n  stripe otherwise\n}}\n")
    d = only_error(text)
    assert_diag(d, text, "psp 'adyen' is not listed by any storefront this route line can "
                "apply to", "adyen when", covers="adyen")
    assert d.hint == "web_us lists stripe"


def test_route_line_after_lines_that_take_every_storefront_it_names() -> None:
    # 'adyen otherwise' is only reached on ios: web storefronts all take stripe first
    text = PSPS + "route {\n  stripe when storefront.channel == web\n  adyen otherwise\n}\n"
    d = only_error(text)
    assert_diag(d, text, "psp 'adyen' is not listed by any storefront this route line can "
                "apply to", "adyen otherwise", covers="adyen")
    assert d.hint == "ios lists apple"


def test_route_lines_that_some_storefront_can_take() -> None:
    text = PSPS + ("route {\n  adyen when storefront == web_eu and total >= EUR 50.00\n"
                   "  adyen when customer.country == \"DE\"\n"
                   "  stripe when storefront.channel == web\n  apple otherwise\n}\n")
    assert check(text).diagnostics == ()


def test_unlisted_psp_suggests_one_the_storefronts_list() -> None:
    text = PSPS.replace("psp stripe }", "psp adyen_us }").replace(
        "adyen, stripe }", "adyen, stripe, adyen_us }") + (
        "route {\n  adyen when storefront == web_us\n  apple otherwise\n}\n")
    d = only_error(text)
    assert_diag(d, text, "psp 'adyen' is not listed by any storefront this route line can "
                "apply to (did you mean 'adyen_us'?)", "adyen when", covers="adyen")
    assert d.hint == "web_us lists adyen_us"


def test_a_psp_no_storefront_lists_is_still_unknown() -> None:
    text = PSPS + "dunning d { retry after 1 day retry via paypal }\n"
    d = only_error(text)
    assert d.code == "unknown_psp"
    assert_diag(d, text, "unknown psp 'paypal'", "paypal")


def test_unknown_name_in_an_expression_takes_its_namespace_from_the_other_side() -> None:
    text = BASE + "tax v { rate 5% when storefront.channel == telcom }\n"
    d = only_error(text)
    assert_diag(d, text, "unknown name 'telcom' (did you mean 'telecom'?)", "telcom")


# -- prices and coverage -----------------------------------------------------------------


def test_price_currency_differs_from_its_storefront() -> None:
    text = BASE.replace("price web_eu EUR 9.99", "price web_eu USD 9.99")
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "price in USD but storefront 'web_eu' sells in EUR", "USD 9.99")
    assert (d.span.line, d.span.column) == (13, 16)


def test_plan_without_a_price_or_not_sold_in_a_storefront() -> None:
    text = BASE.replace("  price web_us USD 9.99\n", "")
    d = only_error(text)
    assert d.code == "coverage"
    assert_diag(d, text, "plan 'monthly' has no price in storefront 'web_us'", "monthly")
    assert (d.span.line, d.span.column) == (10, 6)
    assert d.hint == "add 'price web_us USD …' or 'not sold in web_us'"


def test_not_sold_in_satisfies_coverage() -> None:
    text = BASE.replace("  price web_us USD 9.99\n", "  not sold in web_us\n")
    result = check(text)
    assert result.ok and result.diagnostics == ()


def test_price_and_not_sold_in_the_same_storefront() -> None:
    text = BASE.replace("  price web_us USD 9.99\n", "  price web_us USD 9.99\n  not sold in web_us\n")
    d = only_error(text)
    assert d.code == "conflict"
    assert_diag(d, text, "plan 'monthly' has a price in 'web_us' and says it is not sold there",
                "web_us", 2)


def test_two_prices_for_the_same_plan_storefront_and_date() -> None:
    text = BASE.replace(
        "  price web_us USD 9.99\n",
        "  price web_us USD 9.99\n"
        "  price web_eu EUR 10.99 from 2027-01-01\n"
        "  price web_eu EUR 11.99 from 2027-01-01\n")
    d = only_error(text)
    assert d.code == "conflict"
    assert_diag(d, text, "two prices for plan 'monthly' in 'web_eu' from 2027-01-01 "
                "(first at t.rr:15:3)", "price web_eu EUR 11.99",
                covers="price web_eu EUR 11.99 from 2027-01-01")


def test_two_undated_prices_for_the_same_storefront() -> None:
    text = BASE.replace("  price web_us USD 9.99\n", "  price web_us USD 9.99\n"
                        "  price web_eu EUR 10.99\n")
    d = only_error(text)
    assert_diag(d, text, "two prices for plan 'monthly' in 'web_eu' without a date "
                "(first at t.rr:13:3)", "price web_eu EUR 10.99")


def test_existing_from_before_from() -> None:
    text = BASE.replace(
        "  price web_us USD 9.99\n",
        "  price web_us USD 9.99\n  price web_eu EUR 10.99 from 2027-02-01 existing from 2027-01-01\n")
    d = only_error(text)
    assert d.code == "order"
    assert_diag(d, text, "'existing from 2027-01-01' is before 'from 2027-02-01'",
                "price web_eu EUR 10.99",
                covers="price web_eu EUR 10.99 from 2027-02-01 existing from 2027-01-01")


def test_future_only_price_is_a_warning_not_an_error() -> None:
    text = BASE.replace("price web_us USD 9.99", "price web_us USD 9.99 from 2027-01-01")
    result = check(text)
    assert result.ok
    (w,) = result.diagnostics
    assert w.code == "RR107"
    assert_diag(w, text, "plan 'monthly' has no price in 'web_us' before 2027-01-01: for "
                "example a checkout of plan monthly at storefront web_us on 2026-12-31 finds "
                "no price", "monthly", severity="warning")
    assert w.hint == "add a base price without 'from': 'price web_us USD …'"


# -- customer attributes and types -------------------------------------------------------


def test_unknown_customer_attribute_with_suggestion() -> None:
    text = BASE + 'tax v { rate 5% when customer.contry == "DE" }\n'
    d = only_error(text)
    assert d.code == "unknown_attribute"
    assert_diag(d, text, "unknown customer attribute 'contry' (did you mean 'country'?)",
                "customer.contry")


def test_money_compared_with_percent() -> None:
    text = BASE + "tax v { rate 5% when EUR 5.00 > 5% }\n"
    d = only_error(text)
    assert d.code == "type"
    assert_diag(d, text, "cannot compare money (EUR) with percent", "EUR 5.00 > 5%")


def test_string_compared_with_int() -> None:
    text = BASE + "tax v { rate 5% when customer.country == 3 }\n"
    d = only_error(text)
    assert_diag(d, text, "cannot compare string with int", "customer.country == 3")


def test_int_attribute_compared_with_string() -> None:
    text = BASE + 'tax v { rate 5% when customer.trials_used == "1" }\n'
    d = only_error(text)
    assert_diag(d, text, "cannot compare int with string", 'customer.trials_used == "1"')


def test_condition_that_is_not_true_or_false() -> None:
    text = BASE + "tax v { rate 5% when customer.trials_used + 1 }\n"
    d = only_error(text)
    assert_diag(d, text, "a condition must be true or false, found int",
                "customer.trials_used + 1")


def test_and_on_a_non_boolean_underlines_the_bad_side() -> None:
    text = BASE + "tax v { rate 5% when customer.trials_used and true }\n"
    d = only_error(text)
    assert_diag(d, text, "'and' needs true or false on both sides, found int",
                "customer.trials_used")


def test_not_on_a_non_boolean() -> None:
    text = BASE + "tax v { rate 5% when not customer.country }\n"
    d = only_error(text)
    assert_diag(d, text, "'not' needs true or false, found string", "not customer.country")


def test_set_mixing_types() -> None:
    text = BASE + 'tax v { rate 5% when customer.country in {"DE", 3} }\n'
    d = only_error(text)
    assert_diag(d, text, "a set mixes string and int", "3}", covers="3")


def test_money_arithmetic_across_currencies() -> None:
    text = BASE + "tax v { rate 5% when EUR 5.00 + USD 1.00 > EUR 1.00 }\n"
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "cannot mix EUR and USD in one expression", "EUR 5.00 + USD 1.00")


def test_money_comparison_across_currencies() -> None:
    text = BASE + "tax v { rate 5% when EUR 1.00 < USD 1.00 }\n"
    d = only_error(text)
    assert_diag(d, text, "cannot mix EUR and USD in one expression", "EUR 1.00 < USD 1.00")


# -- money precision and currencies ------------------------------------------------------


def test_price_with_more_decimals_than_the_currency_has() -> None:
    text = BASE.replace("price web_eu EUR 9.99", "price web_eu EUR 1.001")
    d = only_error(text)
    assert d.code == "precision"
    assert_diag(d, text, "EUR amounts have 2 decimals; EUR 1.001 has more", "EUR 1.001")


JP = """\
ruleset t
storefront web_jp { channel web currency JPY tax inclusive psp stripe }
product premium { entitlements hd }
plan monthly {
  product premium
  every 1 month
  price web_jp JPY 1.5
}
"""


def test_yen_have_no_decimals() -> None:
    d = only_error(JP)
    assert d.code == "precision"
    assert_diag(d, JP, "JPY amounts have 0 decimals; JPY 1.5 has more", "JPY 1.5")
    assert (d.span.line, d.span.column, d.span.end_column) == (7, 16, 23)


def test_precision_in_an_expression() -> None:
    text = BASE + "route { stripe when total >= EUR 1.001 }\n"
    d = only_error(text)
    assert_diag(d, text, "EUR amounts have 2 decimals; EUR 1.001 has more", "EUR 1.001")


def test_unknown_currency_in_a_money_literal() -> None:
    text = BASE + "tax v { rate 5% when EUX 5.00 > EUR 1.00 }\n"
    d = only_error(text)
    assert_diag(d, text, "unknown currency 'EUX' (did you mean 'EUR'?)", "EUX 5.00")


def test_promotion_amount_in_a_currency_none_of_its_storefronts_sells_in() -> None:
    text = BASE + 'promotion p { code "A" storefronts web_us amount EUR 1.00 off once }\n'
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "promotion 'p' takes EUR off but none of its storefronts (web_us) "
                "sells in EUR", "EUR 1.00")


def test_promotion_amount_in_another_currency_than_one_of_its_storefronts() -> None:
    text = BASE + ('promotion p { code "A" storefronts web_eu, web_us amount USD 2.00 off '
                   'once }\n')
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "promotion 'p' takes USD off but storefront 'web_eu' sells in EUR",
                "web_eu")


def test_promotion_amount_covering_every_storefront_in_another_currency() -> None:
    text = BASE + 'promotion p { automatic amount USD 2.00 off once }\n'
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "promotion 'p' takes USD off but covers web_eu, which sells in EUR",
                "USD 2.00")
    assert d.hint == "name the storefronts it is for: 'storefronts web_us'"


def test_promotion_amount_covers_only_the_storefronts_its_plans_are_sold_in() -> None:
    text = BASE + ("plan us_only { product premium every 1 month price web_us USD 5.00 "
                   "not sold in web_eu }\n"
                   'promotion p { automatic plans us_only amount USD 2.00 off once }\n')
    assert check(text).diagnostics == ()


@pytest.mark.parametrize("items", ["", 'code "A" automatic'])
def test_promotion_needs_exactly_one_of_code_or_automatic(items: str) -> None:
    text = BASE + f"promotion spring {{ {items} percent 10 off once }}\n"
    d = only_error(text)
    assert d.code == "promotion"
    assert_diag(d, text, "promotion 'spring' needs exactly one of 'code \"…\"' or 'automatic'",
                "spring")


def test_unknown_channel() -> None:
    text = BASE + "storefront x { channel webb currency EUR tax inclusive psp s }\n"
    d = only_error(text)
    assert d.code == "unknown_channel"
    assert_diag(d, text, "unknown channel 'webb' (did you mean 'web'?)", "webb")


def test_unknown_storefront_currency() -> None:
    text = BASE + "storefront x { channel web currency EUX tax inclusive psp s }\n"
    d = only_error(text)
    assert d.code == "unknown_currency"
    assert_diag(d, text, "unknown currency 'EUX' (did you mean 'EUR'?)", "EUX")


def test_storefront_missing_required_items_reports_each() -> None:
    text = BASE + "storefront x { channel web }\n"
    result = check(text)
    assert [d.message for d in result.errors] == [
        "storefront 'x' needs 'currency'",
        "storefront 'x' needs 'psp'",
        "storefront 'x' needs 'tax'",
    ]
    for d in result.errors:
        assert (d.span.line, d.span.column) == (NEXT, 12)
        assert underlined(text, d.span) == "x"


def test_contract_currency_differs_from_the_plans() -> None:
    text = BASE + ('contract acme { customer "c1" plan monthly price GBP 5.00 '
                   "valid 2027-01-01 to 2027-12-31 }\n")
    d = only_error(text)
    assert d.code == "currency"
    assert_diag(d, text, "contract price in GBP but plan 'monthly' is sold in EUR, USD",
                "GBP 5.00")


# -- settings ----------------------------------------------------------------------------


def test_unknown_rounding_mode() -> None:
    text = BASE + "rounding half_upp\n"
    d = only_error(text)
    assert d.code == "unknown_rounding"
    assert d.message == "unknown rounding mode 'half_upp' (did you mean 'half_up'?)"
    assert d.hint == "one of half_even, half_up, half_down, down, up, ceiling, floor"
    assert (d.span.line, d.span.column) == (NEXT, 1)
    assert "half_upp" in underlined(text, d.span)


def test_unknown_timezone() -> None:
    text = BASE + 'timezone "Europe/Berln"\n'
    d = only_error(text)
    assert d.code == "unknown_timezone"
    assert d.message.startswith("unknown timezone 'Europe/Berln'")
    assert (d.span.line, d.span.column) == (NEXT, 1)
    assert '"Europe/Berln"' in underlined(text, d.span)


def test_settings_may_appear_once() -> None:
    text = BASE + "rounding half_up\nrounding half_down\n"
    d = only_error(text)
    assert_diag(d, text, "rounding is set twice", "rounding half_down")


# -- scope -------------------------------------------------------------------------------


def test_total_outside_route_is_a_scope_error() -> None:
    text = BASE + "tax v { rate 5% when total > EUR 5.00 }\n"
    d = only_error(text)
    assert d.code == "scope"
    assert_diag(d, text, "'total' is not available in a tax rule", "total")


def test_total_inside_route_is_fine() -> None:
    text = BASE + "route { adyen when total >= EUR 50.00\n stripe otherwise }\n"
    result = check(text)
    assert result.ok and result.diagnostics == ()


def test_payment_outside_dunning_is_a_scope_error() -> None:
    text = BASE + 'tax v { rate 5% when payment.reason == "x" }\n'
    d = only_error(text)
    assert_diag(d, text, "'payment' is not available in a tax rule", "payment")


def test_scope_error_message_uses_the_right_article() -> None:
    text = BASE + 'eligibility e { deny "big" when total > EUR 5.00 }\n'
    d = only_error(text)
    assert_diag(d, text, "'total' is not available in an eligibility rule", "total")


# -- many mistakes at once ---------------------------------------------------------------

FIVE = """\
ruleset five version "1"
customer { country: string }
storefront web_eu { channel web currency EUR tax inclusive psp stripe }
storefront web_us { channel web currency USD tax exclusive psp stripe }
product premium { entitlements hd }
plan monthly {
  product premium
  every 1 month
  price web_eu EUR 9.99
  price web_xx USD 9.99
  not sold in web_us
}
plan annual {
  product premium
  every 1 year
  price web_eu USD 99.00
  not sold in web_us
}
tax vat {
  rate 19% when customer.contry == "DE"
  rate 0%
}
route {
  stripe when total >= EUR 5.00 + USD 1.00
}
promotion spring { code "S" percent 10 off once if customer.country == 3 }
"""

FIVE_EXPECTED = [
    (10, 9, "web_xx", "unknown storefront 'web_xx' (did you mean 'web_eu'?)"),
    (16, 16, "USD 99.00", "price in USD but storefront 'web_eu' sells in EUR"),
    (20, 17, "customer.contry", "unknown customer attribute 'contry' (did you mean 'country'?)"),
    (24, 24, "EUR 5.00 + USD 1.00", "cannot mix EUR and USD in one expression"),
    (26, 52, "customer.country == 3", "cannot compare string with int"),
]
FIVE_CODES = ["unknown_storefront", "currency", "unknown_attribute", "currency", "type"]


def test_check_reports_all_five_mistakes_with_positions() -> None:
    result = check(FIVE)
    assert not result.ok
    found = [(d.span.line, d.span.column, underlined(FIVE, d.span), d.message)
             for d in result.errors]
    assert found == FIVE_EXPECTED
    assert result.diagnostics == result.errors  # no warnings in this file


def test_ruleset_error_carries_every_diagnostic() -> None:
    with pytest.raises(RulesetError) as info:
        revrules.load_text(FIVE, "t.rr")
    err = info.value
    assert [(d.span.line, d.span.column, d.message) for d in err.diagnostics] == [
        (line, col, msg) for line, col, _, msg in FIVE_EXPECTED]
    rendered = str(err)
    for (line, col, _covered, msg), code in zip(FIVE_EXPECTED, FIVE_CODES, strict=True):
        assert f"t.rr:{line}:{col}: error[{code}]: {msg}\n" in rendered
        assert f" {line} | {FIVE.splitlines()[line - 1]}\n" in rendered
    assert rendered.endswith("5 errors found")


# -- the renderer ------------------------------------------------------------------------

RENDER = """\
ruleset t
storefront web_eu { channel web currency EUR tax inclusive psp stripe }
storefront web_us { channel web currency USD tax exclusive psp stripe }
product p { entitlements x }
plan m {
  product p
  every 1 month
  price web_eu EUR 6.99
  price web_xx USD 6.99
  not sold in web_us
}
tax v { rate 5% rate 6% }
"""


def test_renderer_format() -> None:
    with pytest.raises(RulesetError) as info:
        revrules.load_text(RENDER, "t.rr")
    assert str(info.value) == (
        "t.rr:9:9: error[unknown_storefront]: unknown storefront 'web_xx' (did you mean 'web_eu'?)\n"
        "   |\n"
        " 9 |   price web_xx USD 6.99\n"
        "   |         ^^^^^^\n"
        "\n"
        "t.rr:12:17: warning[RR101]: this rate never applies: the rate at t.rr:12:9 always matches first\n"
        "    |\n"
        " 12 | tax v { rate 5% rate 6% }\n"
        "    |                 ^^^^^^^\n"
        "\n"
        "1 error found"
    )


def _caret_under(rendered: str, source_line: str) -> tuple[int, int]:
    """(column, width) of the caret run under ``source_line`` in a rendering."""
    lines = rendered.splitlines()
    i = next(k for k, line in enumerate(lines) if line.endswith("| " + source_line))
    prefix = lines[i].index("| ") + 2
    carets = lines[i + 1]
    assert carets[:prefix].strip() == "|"
    start = carets.index("^")
    assert set(carets[start:]) == {"^"}
    return start - prefix + 1, len(carets) - start


@pytest.mark.parametrize("case", range(len(FIVE_EXPECTED)))
def test_renderer_puts_the_caret_under_the_span(case: int) -> None:
    line, col, covered, msg = FIVE_EXPECTED[case]
    result = check(FIVE)
    d = result.errors[case]
    rendered = d.render(FIVE)
    head, *_ = rendered.splitlines()
    assert head == f"t.rr:{line}:{col}: error[{FIVE_CODES[case]}]: {msg}"
    assert _caret_under(rendered, FIVE.splitlines()[line - 1]) == (col, len(covered))


def test_renderer_shows_the_hint() -> None:
    text = BASE.replace("  price web_us USD 9.99\n", "")
    d = only_error(text)
    assert d.render(text).splitlines()[-1] == \
        "  = help: add 'price web_us USD …' or 'not sold in web_us'"


def test_render_without_source_is_one_line() -> None:
    d = only_error(BASE + "route { stripee otherwise }\n")
    assert d.render() == f"t.rr:{NEXT}:9: error[unknown_psp]: unknown psp 'stripee' (did you mean 'stripe'?)"


# -- clean files and warnings ------------------------------------------------------------


def test_streaming_ruleset_checks_clean() -> None:
    path = ROOT / "rulesets" / "streaming.rr"
    result = revrules.check(revrules.parse(path.read_text("utf-8"), str(path)))
    assert result.ok
    assert result.errors == ()
    assert result.diagnostics == ()
    assert revrules.load(path).warnings == ()


def test_base_checks_clean() -> None:
    result = check(BASE)
    assert result.ok and result.diagnostics == ()


def test_unreachable_tax_rate_is_a_warning_and_load_succeeds() -> None:
    text = BASE + "tax v {\n  rate 5%\n  rate 7% when customer.country == \"DE\"\n}\n"
    result = check(text)
    assert result.ok and result.model is not None
    (w,) = result.diagnostics
    assert w.code == "RR101"
    assert_diag(w, text, f"this rate never applies: the rate at t.rr:{NEXT + 1}:3 always "
                "matches first", "rate 7%", covers='rate 7% when customer.country == "DE"',
                severity="warning")
    rules = revrules.load_text(text, "t.rr")
    assert rules.warnings == (w,)


def test_second_dunning_fallback_is_a_warning() -> None:
    text = BASE + "dunning a { then cancel }\ndunning b { then pause }\n"
    rules = revrules.load_text(text, "t.rr")
    (w,) = rules.warnings
    assert w.severity == "warning"
    assert_diag(w, text, "dunning 'b' never applies: 'a' has no 'for' condition and comes first",
                "b {", covers="b", severity="warning")


def test_warnings_do_not_count_as_errors_in_a_failing_load() -> None:
    text = BASE + "tax v { rate 5% rate 6% }\nroute { stripee otherwise }\n"
    with pytest.raises(RulesetError) as info:
        revrules.load_text(text, "t.rr")
    severities = [d.severity for d in info.value.diagnostics]
    assert severities == ["warning", "error"]
    assert str(info.value).endswith("\n1 error found")
