"""Lint warnings (RR1xx): one test per warning with its exact message, position and
example input, the good variant that gives none, allow comments and ``--strict``."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

import revrules
from revrules import Diagnostic
from revrules.cli import main
from revrules.testing import rulesets

from conftest import SMALL_RULESET

ROOT = Path(__file__).resolve().parent.parent

BASE = SMALL_RULESET  # tests append a snippet after it (line 17 on)
NEXT = len(BASE.splitlines()) + 1


def warnings(snippet: str) -> tuple[Diagnostic, ...]:
    result = revrules.check(revrules.parse(BASE + snippet, "t.rr"))
    assert result.ok, result.diagnostics
    assert all(d.severity == "warning" for d in result.diagnostics)
    return result.diagnostics


def only(snippet: str) -> Diagnostic:
    found = warnings(snippet)
    assert len(found) == 1, [d.render() for d in found]
    return found[0]


def at(d: Diagnostic, line: int, column: int) -> None:
    assert (d.span.file, d.span.line, d.span.column) == ("t.rr", NEXT + line, column)


def test_base_has_no_warning() -> None:
    assert warnings("") == ()


@pytest.mark.parametrize("path", [ROOT / "rulesets" / "streaming.rr",
                                  *sorted((ROOT / "examples").glob("*.rr"))])
def test_bundled_rulesets_have_no_warning(path: Path) -> None:
    assert revrules.load(path).warnings == ()


# -- RR101: unreachable behind an earlier rule ----------------------------------------


def test_tax_rate_behind_a_wider_one() -> None:
    d = only('tax v {\n'
             '  rate 19% when customer.country == "DE"\n'
             '  rate 20% when customer.country == "DE" and customer.trials_used > 1\n'
             '  rate 0%\n'
             '}\n')
    assert d.code == "RR101"
    at(d, 2, 3)
    assert d.message == (
        "this rate never applies: an earlier rate matches first wherever it holds; for "
        "example a charge at storefront web_eu with customer.country = \"DE\", "
        f"customer.trials_used = 2 matches the rate at t.rr:{NEXT + 1}:3 first")


def test_tax_rate_behind_one_without_when_keeps_its_message() -> None:
    d = only('tax v {\n  rate 5%\n  rate 7% when customer.country == "DE"\n}\n')
    assert d.code == "RR101"
    at(d, 2, 3)
    assert d.message == f"this rate never applies: the rate at t.rr:{NEXT + 1}:3 always matches first"


def test_tax_rates_that_are_all_reachable() -> None:
    assert warnings('tax v {\n'
                    '  rate 1% when customer.country != "DE" or customer.trials_used > 2\n'
                    '  rate 2% when customer.country == "DE"\n}\n') == ()


def test_tax_rate_after_rates_that_cover_everyone() -> None:
    d = only('tax v {\n'
             '  rate 1% when customer.trials_used <= 2 or customer.country == "DE"\n'
             '  rate 2% when customer.trials_used > 2\n'
             '  rate 0%\n}\n')
    at(d, 3, 3)
    assert d.message == (
        "this rate never applies: an earlier rate matches first wherever it holds; for "
        "example a charge at storefront web_eu with customer.trials_used = 2 matches "
        f"the rate at t.rr:{NEXT + 1}:3 first")


def test_a_rate_for_customers_without_an_optional_attribute_is_reachable() -> None:
    # customer.country has no default: a customer without one meets neither rate
    assert warnings('tax v {\n'
                    '  rate 1% when customer.country != "DE"\n'
                    '  rate 2% when customer.country == "DE"\n'
                    '  rate 0%\n}\n') == ()


def test_route_line_behind_a_storefront_condition() -> None:
    d = only('route {\n'
             '  stripe when storefront.channel == web\n'
             '  adyen  when storefront == web_eu\n'
             '}\n')
    assert d.code == "RR101"
    at(d, 2, 3)
    assert d.message == (
        "this route line never applies: an earlier route line matches first wherever it "
        f"holds; for example a charge at storefront web_eu matches the route line at "
        f"t.rr:{NEXT + 1}:3 first")


def test_route_line_behind_otherwise() -> None:
    d = only('route {\n  stripe otherwise\n  stripe when storefront == web_us\n}\n')
    at(d, 2, 3)
    assert d.message.endswith(f"for example a charge at storefront web_us matches the "
                              f"route line at t.rr:{NEXT + 1}:3 first")


def test_route_line_after_a_line_whose_psp_is_not_listed_is_reachable() -> None:
    # adyen is skipped on web_us, so stripe otherwise still routes web_us
    assert warnings('route {\n  adyen when total >= EUR 50.00\n  stripe otherwise\n}\n') == ()


def test_deny_implied_by_an_earlier_deny() -> None:
    d = only('eligibility e {\n'
             '  deny "a" when customer.trials_used > 3\n'
             '  deny "b" when customer.trials_used > 5\n'
             '}\n')
    assert d.code == "RR101"
    at(d, 2, 3)
    assert d.message == (
        "this deny never changes who is eligible: an earlier deny holds wherever it holds; "
        "for example a customer at storefront web_eu with customer.trials_used = 6 is "
        f"already denied \"a\" (t.rr:{NEXT + 1}:3)")


def test_dunning_policy_behind_a_wider_one() -> None:
    d = only("dunning a for storefront.channel == web { then cancel }\n"
             "dunning b for storefront == web_eu { then pause }\n")
    assert d.code == "RR101"
    at(d, 1, 9)
    assert d.message == ("dunning 'b' never applies: an earlier policy's 'for' holds "
                         "wherever its 'for' holds; for example a failed charge at "
                         "storefront web_eu goes to dunning 'a'")


# -- RR102: a tie decided by source order ----------------------------------------------


def test_automatic_promotions_tied_on_value() -> None:
    d = only('promotion p {\n  automatic\n  percent 10 off once\n}\n'
             'promotion q {\n  automatic\n  percent 10 off forever\n'
             '  if customer.country == "DE"\n}\n')
    assert d.code == "RR102"
    at(d, 4, 11)
    assert d.message == (
        "promotions 'p' and 'q' can both apply and take the same EUR 1.00 off, so 'p' "
        "wins only because it comes first; for example a checkout of plan monthly at "
        "storefront web_eu with customer.country = \"DE\"")
    assert d.hint == ("make one stackable, or give them different windows, conditions or "
                      "values")


def test_tie_between_a_percent_and_an_amount_on_one_price() -> None:
    d = only('promotion p {\n  automatic\n  amount EUR 1.00 off once\n  storefronts web_eu\n'
             '  valid 2027-03-01 to 2027-03-31\n}\n'
             'promotion q {\n  automatic\n  percent 10.01 off once\n  storefronts web_eu\n}\n')
    assert d.code == "RR102"
    assert d.message == (
        "promotions 'p' and 'q' can both apply and take the same EUR 1.00 off, so 'p' "
        "wins only because it comes first; for example a checkout of plan monthly at "
        "storefront web_eu on 2027-03-01")


@pytest.mark.parametrize("change", [
    ("percent 10 off forever", "percent 20 off forever"),  # different value
    ("  automatic\n  percent 10 off forever", "  automatic\n  stackable\n  percent 10 off forever"),
    ('customer.country == "DE"', 'customer.country == "DE" and customer.country == "FR"'),
])
def test_promotions_that_do_not_tie(change: tuple[str, str]) -> None:
    snippet = ('promotion p {\n  automatic\n  percent 10 off once\n'
               '  if customer.country == "FR"\n}\n'
               'promotion q {\n  automatic\n  percent 10 off forever\n'
               '  if customer.country == "DE"\n}\n')
    # as written: the conditions exclude each other, no tie
    assert warnings(snippet) == ()
    snippet = snippet.replace('  if customer.country == "FR"\n', "")
    changed = snippet.replace(*change)
    assert [d.code for d in warnings(changed)] == (
        ["RR105"] if "FR" in change[1] else [])


def test_tie_needs_overlapping_windows() -> None:
    assert warnings('promotion p {\n  automatic\n  valid 2027-01-01 to 2027-01-31\n'
                    '  percent 10 off once\n}\n'
                    'promotion q {\n  automatic\n  valid 2027-02-01 to 2027-02-28\n'
                    '  percent 10 off once\n}\n') == ()


# -- RR103, RR104, RR105: a promotion that never applies ----------------------------------

LATER = ("plan later {\n  product premium\n  every 1 month\n"
         "  price web_eu EUR 5.00 from 2027-01-01\n  price web_eu EUR 4.00 from 2027-06-01\n"
         "  not sold in web_us\n}\n")


def test_promotion_window_before_every_price() -> None:
    found = warnings('promotion p {\n  code "P"\n  plans later\n'
                     '  valid 2026-01-01 to 2026-02-01\n  percent 10 off once\n}\n' + LATER)
    assert [d.code for d in found] == ["RR103", "RR107"]
    d = found[0]
    at(d, 3, 3)
    assert d.message == ("promotion 'p' never applies: it ends on 2026-02-01, before any of "
                         "its plans has a price (plan later is priced at storefront web_eu "
                         "from 2027-01-01)")


def test_promotion_window_after_the_first_price_applies() -> None:
    found = warnings('promotion p {\n  code "P"\n  plans later\n'
                     '  valid 2026-01-01 to 2027-01-01\n  percent 10 off once\n}\n' + LATER)
    assert [d.code for d in found] == ["RR107"]


def test_promotion_plans_not_sold_in_its_storefronts() -> None:
    d = only('promotion p {\n  code "X"\n  plans later\n  storefronts web_us\n'
             '  percent 10 off once\n}\n'
             'plan later {\n  product premium\n  every 1 month\n  price web_eu EUR 5.00\n'
             '  not sold in web_us\n}\n')
    assert d.code == "RR104"
    at(d, 0, 11)
    assert d.message == "promotion 'p' never applies: none of its plans is sold in its storefronts"
    assert d.hint == "name a plan and a storefront it is priced in"


@pytest.mark.parametrize(("condition", "why"), [
    ('customer.country == "A" and customer.country == "B"',
     'customer.country == "A" and customer.country == "B" cannot both be true'),
    ("customer.trials_used > 5 and customer.trials_used < 3",
     "customer.trials_used > 5 and customer.trials_used < 3 cannot both be true"),
    ("customer.trials_used > 5 and customer.trials_used < 6",  # whole numbers
     "customer.trials_used > 5 and customer.trials_used < 6 cannot both be true"),
    ('customer.country in {"A", "B"} and customer.country not in {"A", "B"}',
     'customer.country in {"A", "B"} and customer.country not in {"A", "B"} cannot both be true'),
    ("storefront.channel == app_store", "it is false at storefronts web_eu and web_us"),
])
def test_promotion_condition_that_contradicts(condition: str, why: str) -> None:
    d = only(f"promotion p {{\n  automatic\n  percent 10 off once\n  if {condition}\n}}\n")
    assert d.code == "RR105"
    at(d, 3, 6)
    assert d.message == f"this condition never holds, so promotion 'p' never applies: {why}"


def test_promotion_condition_false_on_its_storefronts() -> None:
    d = only("promotion p {\n  automatic\n  storefronts web_us\n  percent 10 off once\n"
             '  if storefront.currency == "EUR"\n}\n')
    assert d.code == "RR105"
    assert d.message == ("this condition never holds, so promotion 'p' never applies: "
                         "it is false at storefront web_us")


@pytest.mark.parametrize("condition", [
    'customer.country == "A" or customer.country == "B"',
    "customer.trials_used > 5 and customer.trials_used < 7",
    'not (customer.country == "A" and customer.country == "B")',
    "customer.trials_used * 2 > 5 and customer.trials_used < 3",  # arithmetic: not analysed
])
def test_promotion_condition_that_can_hold(condition: str) -> None:
    assert warnings(f"promotion p {{\n  automatic\n  percent 10 off once\n  if {condition}\n}}\n") == ()


def test_tax_condition_that_never_holds() -> None:
    d = only('tax v {\n  rate 5% when customer.trials_used < 0 and customer.trials_used > 0\n}\n')
    assert d.code == "RR105"
    at(d, 1, 16)
    assert d.message == ("this condition never holds, so this rate never applies: "
                         "customer.trials_used < 0 and customer.trials_used > 0 cannot both "
                         "be true")


def test_optional_attribute_absent_is_an_example() -> None:
    # an attribute without a default may be absent: then `not (x == "A")` holds and
    # `x != "A"` does not, so neither rate is unreachable behind the other
    text = BASE.replace("  country: string\n", "  country: string\n  segment: string\n")
    text += ('tax v {\n  rate 1% when customer.segment != "A"\n'
             '  rate 2% when not (customer.segment == "A")\n}\n')
    result = revrules.check(revrules.parse(text, "t.rr"))
    assert result.ok and result.diagnostics == ()


def test_optional_attribute_absent_in_an_example() -> None:
    text = BASE.replace("  country: string\n", "  country: string\n  segment: string\n")
    text += ('tax v {\n  rate 1% when customer.segment == "A"\n'
             '  rate 2% when not (customer.segment == "A")\n  rate 3%\n}\n')
    (d,) = revrules.check(revrules.parse(text, "t.rr")).diagnostics
    assert d.code == "RR101"
    assert d.message == ("this rate never applies: an earlier rate matches first wherever it "
                         "holds; for example a charge at storefront web_eu with "
                         f"customer.segment = \"A\" matches the rate at t.rr:{NEXT + 2}:3 first")


# -- RR106: grace ends before the last retry ----------------------------------------------


def test_grace_ends_before_the_last_retry() -> None:
    d = only("dunning d {\n  retry after 1 day, 3 days, 10 days\n"
             "  grace 1 week keep entitlements\n}\n")
    assert d.code == "RR106"
    at(d, 2, 3)
    assert d.message == ("grace ends before the last retry: for example a charge failing on "
                         "2027-01-01 has grace until 2027-01-08 but a retry on 2027-01-11, so "
                         "'then' waits until 2027-01-12")
    assert d.hint == "make grace at least as long as the last retry"


def test_grace_of_a_month_against_thirty_days_of_retries() -> None:
    # a month is 28 to 31 days: the first failure whose month is shorter shows it
    d = only("dunning d {\n  retry after 30 days\n  grace 1 month keep entitlements\n}\n")
    assert d.code == "RR106"
    assert d.message.startswith("grace ends before the last retry: for example a charge "
                                "failing on 2027-01-30 has grace until 2027-02-28 but a retry "
                                "on 2027-03-01")


def test_grace_as_long_as_the_retries() -> None:
    assert warnings("dunning d {\n  retry after 1 day, 3 days\n  grace 3 days\n}\n") == ()
    assert warnings("dunning d {\n  retry after 28 days\n  grace 1 month\n}\n") == ()


# -- RR107: a scheduled price with no base price --------------------------------------


def test_scheduled_price_without_a_base_price() -> None:
    text = BASE.replace("price web_us USD 9.99", "price web_us USD 9.99 from 2027-01-01")
    (d,) = revrules.check(revrules.parse(text, "t.rr")).diagnostics
    assert d.code == "RR107"
    assert (d.span.line, d.span.column) == (10, 6)
    assert d.message == ("plan 'monthly' has no price in 'web_us' before 2027-01-01: for "
                         "example a checkout of plan monthly at storefront web_us on "
                         "2026-12-31 finds no price")


# -- RR108: eligibility that denies everyone --------------------------------------------


def test_eligibility_that_denies_everyone() -> None:
    d = only('eligibility e {\n  deny "a" when customer.trials_used > 3\n'
             '  deny "b" when customer.trials_used <= 3\n}\n')
    assert d.code == "RR108"
    at(d, 0, 13)
    assert d.message == ("eligibility 'e' denies everyone: on every storefront and plan one "
                         "of its denies holds; for example a customer at storefront web_eu "
                         "with customer.trials_used = 4 is denied \"a\"")


def test_eligibility_that_denies_everyone_by_storefront() -> None:
    d = only('eligibility e {\n  deny "web" when storefront.channel == web\n}\n')
    assert d.code == "RR108"
    assert d.message.endswith('for example a customer at storefront web_eu is denied "web"')


def test_eligibility_that_lets_someone_in() -> None:
    assert warnings('eligibility e {\n  deny "a" when customer.trials_used > 3\n'
                    '  deny "b" when customer.trials_used < 3\n}\n') == ()


# -- PSPs a storefront does not list are errors (LANGUAGE.md §5.1) --------------------


def test_unlisted_route_psp_is_an_error_with_its_code() -> None:
    text = BASE + "route {\n  adyen when storefront == web_us\n  stripe otherwise\n}\n"
    with pytest.raises(revrules.RulesetError) as info:
        revrules.load_text(text, "t.rr")
    (d,) = info.value.diagnostics
    assert (d.severity, d.code) == ("error", "unlisted_psp")
    assert str(info.value).startswith(
        f"t.rr:{NEXT + 1}:3: error[unlisted_psp]: psp 'adyen' is not listed by any "
        "storefront this route line can apply to")


# -- allow comments ----------------------------------------------------------------------

GRACE = "dunning d {\n  retry after 10 days\n  grace 1 week{}\n}\n"


def test_allow_comment_on_the_line() -> None:
    assert warnings(GRACE.replace("{}", "  # revrules: allow RR106")) == ()


def test_allow_comment_on_the_line_before() -> None:
    assert warnings(GRACE.replace("  grace", "  # revrules: allow RR106\n  grace")
                    .replace("{}", "")) == ()


@pytest.mark.parametrize("comment", [
    "  # revrules: allow RR105",               # another code
    "  # revrules: allow RR1060",
    "  # revrules allow RR106",                # not the form
])
def test_allow_comment_for_another_code_does_not_silence(comment: str) -> None:
    assert [d.code for d in warnings(GRACE.replace("{}", comment))] == ["RR106"]


def test_allow_comment_two_lines_before_or_after_code_does_not_silence() -> None:
    snippet = GRACE.replace("  retry", "  # revrules: allow RR106\n  retry").replace("{}", "")
    assert [d.code for d in warnings(snippet)] == ["RR106"]
    # a trailing comment on the line before belongs to that line
    snippet = GRACE.replace("10 days", "10 days  # revrules: allow RR106").replace("{}", "")
    assert [d.code for d in warnings(snippet)] == ["RR106"]


def test_allow_comment_lists_several_codes() -> None:
    assert warnings(GRACE.replace("{}", "  # revrules: allow RR101, RR106")) == ()


def test_allow_comment_in_a_string_does_not_count() -> None:
    text = BASE.replace('deny "used"', 'deny "used # revrules: allow RR108"')
    text += 'eligibility e { deny "x # revrules: allow RR108" when true }\n'
    (d,) = revrules.check(revrules.parse(text, "t.rr")).diagnostics
    assert d.code == "RR108"


def test_allow_comment_never_silences_an_error() -> None:
    text = BASE + "route {\n  adyen when storefront == web_us  # revrules: allow unlisted_psp\n}\n"
    with pytest.raises(revrules.RulesetError):
        revrules.load_text(text, "t.rr")


# -- the command --------------------------------------------------------------------------


def test_check_shows_the_code_and_strict_fails(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    path = tmp_path / "grace.rr"
    path.write_text(BASE + GRACE.replace("{}", ""), encoding="utf-8")
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == f"{path}: ok\n"
    assert err.startswith(f"{path}:{NEXT + 2}:3: warning[RR106]: grace ends before the last "
                          "retry: for example a charge failing on 2027-01-01")
    assert main(["check", "--strict", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert f"{path}:{NEXT + 2}:3: warning[RR106]: " in err
    assert err.endswith(f"{path}: 1 warning found (--strict makes warnings errors)\n")


def test_strict_passes_a_clean_file_and_an_allowed_warning(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: Path) -> None:
    path = tmp_path / "grace.rr"
    path.write_text(BASE + GRACE.replace("{}", "  # revrules: allow RR106"), encoding="utf-8")
    assert main(["check", "--strict", str(path), str(ROOT / "rulesets" / "streaming.rr")]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == f"{path}: ok\n{ROOT / 'rulesets' / 'streaming.rr'}: ok\n"


def test_lint_work_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    # on a ruleset too large to analyse, each analysis stops after its budget and gives
    # the warnings found so far: the same ones on every run, never an exception
    import revrules.lint as lint
    snippet = ('tax v {\n' + "".join(f'  rate 1% when customer.trials_used > {i}\n'
                                     for i in range(40, 0, -1))
               + '  rate 2% when customer.trials_used > 20\n  rate 0%\n}\n'
               + "dunning d {\n  retry after 10 days\n  grace 1 week\n}\n")
    assert [d.code for d in warnings(snippet)] == ["RR101", "RR106"]
    monkeypatch.setattr(lint, "_BUDGET", 0)  # the grace check does no solver work
    assert [d.code for d in warnings(snippet)] == ["RR106"]


def test_allow_comment_after_another_comment() -> None:
    assert warnings(GRACE.replace("{}", "  # short on purpose; revrules: allow RR106")) == ()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets())
def test_allow_comment_silences_exactly_its_warning(text: str) -> None:
    result = revrules.check(revrules.parse(text, "g.rr"))
    again = revrules.check(revrules.parse(text, "g.rr"))
    assert result.diagnostics == again.diagnostics  # deterministic
    if not result.ok:
        return
    lines = text.split("\n")
    for w in result.diagnostics:
        edited = list(lines)
        edited[w.span.line - 1] += f"  # revrules: allow {w.code}"
        after = revrules.check(revrules.parse("\n".join(edited), "g.rr")).diagnostics
        same_line = [d for d in result.diagnostics
                     if (d.span.line, d.code) == (w.span.line, w.code)]
        assert [d for d in result.diagnostics if d not in same_line] == list(after)


def test_a_condition_that_is_always_false() -> None:
    d = only("tax v {\n  rate 5% when false\n  rate 0%\n}\n")
    assert d.code == "RR105"
    at(d, 1, 16)
    assert d.message == "this condition never holds, so this rate never applies: it is always false"
    d = only("dunning d {\n  retry after 1 day\n  no retry when 2 > 3\n}\n")
    assert d.message == ("this condition never holds, so the 'no retry' of dunning 'd' never "
                         "applies: it is always false")


def test_route_example_with_a_plan_and_a_total() -> None:
    # on web_eu a total in USD is not known (EUR), so only web_us decides
    d = only("route {\n  stripe when total >= USD 5.00\n"
             "  stripe when storefront == web_us and plan == monthly and total > USD 10.00\n"
             "  stripe otherwise\n}\n")
    assert d.code == "RR101"
    at(d, 2, 3)
    assert d.message == (
        "this route line never applies: an earlier route line matches first wherever it "
        "holds; for example a charge of plan monthly at storefront web_us with total = "
        f"USD 11.00 matches the route line at t.rr:{NEXT + 1}:3 first")


# -- load finds the warnings on first use -------------------------------------------------


def test_load_runs_lint_only_when_the_warnings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import revrules.checker as checker

    calls: list[int] = []
    real = checker.lint
    monkeypatch.setattr(checker, "lint", lambda *args: calls.append(1) or real(*args))
    text = GRACE.replace("{}", "")
    rules = revrules.load_text(BASE + text, "t.rr")
    assert calls == []  # loading (and an engine) never lints
    revrules.Engine(rules)
    assert calls == []
    assert [d.code for d in rules.warnings] == ["RR106"] and calls == [1]
    assert rules.warnings is rules.warnings and calls == [1]  # found once


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rulesets())
def test_load_gives_the_warnings_check_gives(text: str) -> None:
    result = revrules.check(revrules.parse(text, "g.rr"))
    if not result.ok:
        return
    assert revrules.load_text(text, "g.rr").warnings == result.diagnostics
