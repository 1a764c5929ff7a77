"""The canonical formatter: what it prints parses back to the same AST, and is stable.

``parse(format(parse(x))) == parse(x)`` for the example ruleset and for a file that
uses every construct of the grammar; formatting is idempotent; random expression
trees print with just enough parentheses to parse back unchanged; and ``revrules fmt``
prints, checks and rewrites files.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from revrules import nodes as n
from revrules.cli import main
from revrules.formatter import format_expression, format_module
from revrules.parser import parse, parse_expression

ROOT = Path(__file__).resolve().parent.parent
STREAMING = ROOT / "rulesets" / "streaming.rr"

# Every construct of the grammar, written unevenly on purpose (extra spaces, items on
# one line, redundant parentheses, [ ] sets, `50%`, plural/singular slips, a comment).
EVERYTHING = r"""
# a comment the formatter keeps
ruleset everything version "1.0 \"beta\"\\x"
rounding half_up
timezone "Europe/Berlin"

customer {
  country: string
  trials_used: int = 0   seats: decimal = 1.50
  vip: bool = true  blocked: bool = false
  segment: string = "consumer\tB2C\n"
  since: date = 2024-01-01
  seen: datetime = 2024-01-01T10:30:00+01:00
  credit: money = EUR 0.50
  share: percent = 12.5%
  window: duration = 1 days
  tags: set = ["a", "b"]
}

storefront web_eu { channel web region EU currency EUR tax inclusive psp adyen, stripe
                    commission 0.5% terms net 30 days }
storefront ios { channel app_store currency USD tax exclusive psp apple }
storefront empty {}

product premium { entitlements hd, downloads }
product sports { entitlements live_sports }
bundle premium_sports { products premium, sports }

plan monthly {
  product premium
  every 1 months
  trial 14 days if trial_ok
  price web_eu EUR 12.990
  price web_eu EUR 13.99 from 2027-02-01
  price web_eu EUR 14.99 from 2027-03-01 existing from 2027-04-01
  price web_eu EUR 15.99 from 2027-05-01 consent required
  price web_eu EUR 16.99 from 2027-06-01 existing from 2027-07-01 consent required
  price ios USD 1
  not sold in empty, other
  upgrade to annual immediate prorate
  upgrade to sports_plan immediate
  downgrade to basic at period_end
}
plan annual { bundle premium_sports every 2 year }
plan nothing {}

contract acme {
  customer "c-acme"
  plan annual
  price EUR 79.00
  valid 2027-01-01 to 2028-12-31
}

eligibility trial_ok {
  deny "trial already used" when customer.trials_used > 0
  deny "carrier" when (storefront.channel == telecom) or not (customer.vip and true)
}
eligibility nobody {}

promotion black_friday {
  code "BF2026"
  plans monthly, annual
  storefronts web_eu, ios
  valid 2026-11-27 to 2026-12-01
  percent 50% off for 3 cycles
  limit 10000 total, 1 per customer
  if customer.segment == "consumer"
  stackable
}
promotion loyalty {
  automatic
  amount EUR 2.00 off forever
  limit 5 per customer
  if subscription.cycle >= 12 and event.at >= 2027-02-01T00:00:00Z
}
promotion once { automatic percent 7.5 off once limit 100 total }

tax vat {
  rate 19% when customer.country in {"DE", "AT"}
  rate 20% when customer.country not in ["DE"] and -(1 + 2) * 3 < days_between(customer.since, 2027-01-01)
  rate 0%
}

route main {
  adyen when storefront == web_eu and total >= EUR 50.00
  stripe when (total > round(total * 10%, 2))
  weird when (subscription.cycle > 3)
  days when max(1, 2, 3) - (4 - 5) / (6 * 7) == min()
  carrier otherwise
}
route { a otherwise }

dunning standard {
  retry after 1 day, 3 day, 1 week
  retry via stripe
  no retry when payment.reason in {"stolen_card", "fraudulent"}
  grace 10 days
  grace 3 days keep entitlements
  grace 1 day revoke entitlements
  then cancel
  then pause
  then unpaid
}
dunning stores for storefront.channel == app_store { grace 16 days keep entitlements }
dunning quiet {}

lifecycle {
  pause max 3 months when subscription.cycle >= 2
  pause max 1 year
  cancel at period_end
  cancel immediate
  refund full within 14 days, prorated after
  refund full within 2 weeks, none after
  refund full within 1 day
  refund full
  refund prorated
  refund none
}
lifecycle {}
"""


def test_streaming_round_trips() -> None:
    module = parse(STREAMING.read_text("utf-8"), "streaming.rr")
    text = format_module(module)
    assert parse(text, "streaming.rr") == module
    assert format_module(parse(text)) == text


def test_everything_round_trips() -> None:
    module = parse(EVERYTHING, "everything.rr")
    text = format_module(module)
    assert parse(text, "everything.rr") == module
    assert format_module(parse(text)) == text


def test_everything_uses_every_item_kind() -> None:
    """The fixture really covers the grammar (a guard against it shrinking)."""
    decls = parse(EVERYTHING).decls
    kinds = {type(d).__name__ for d in decls}
    assert kinds == {"Header", "Rounding", "Timezone", "CustomerSchema", "Storefront",
                     "Product", "Bundle", "Plan", "Contract", "Eligibility", "Promotion",
                     "Tax", "Route", "Dunning", "Lifecycle"}
    items = [i for d in decls for i in getattr(d, "items", ())]
    assert {i.key for i in items if isinstance(i, n.StorefrontItem)} == {
        "channel", "region", "currency", "tax", "psp", "commission", "terms"}
    assert {i.key for i in items if isinstance(i, n.PromoItem)} == {
        "code", "automatic", "plans", "storefronts", "valid", "percent", "amount", "limit",
        "if", "stackable"}
    assert {i.key for i in items if isinstance(i, n.DunningItem)} == {
        "retry", "via", "no_retry", "grace", "then"}
    assert {type(i).__name__ for i in items if not hasattr(i, "key")} == {
        "PlanProduct", "PlanEvery", "PlanTrial", "PlanPrice", "PlanNotSold", "PlanChange"}
    defaults = {a.default.kind for d in decls if isinstance(d, n.CustomerSchema)
                for a in d.attrs if isinstance(a.default, n.Literal)}
    assert defaults == {"int", "decimal", "bool", "string", "date", "datetime", "money",
                        "percent", "duration"}


def test_canonical_layout() -> None:
    text = format_module(parse(EVERYTHING))
    assert text.startswith('# a comment the formatter keeps\n'
                           'ruleset everything version "1.0 \\"beta\\"\\\\x"\n\nrounding')
    assert text.count("#") == 1  # the comment, once
    assert ("storefront web_eu { channel web  region EU  currency EUR  tax inclusive  "
            "psp adyen, stripe  commission 0.5%  terms net 30 days }\n") in text
    assert "storefront empty {}\n" in text
    assert "plan annual {\n  bundle premium_sports\n  every 2 years\n}\n" in text
    assert "  every 1 month\n" in text
    assert "  price web_eu EUR 12.990\n" in text  # the amount's own digits
    assert "  price web_eu EUR 16.99 from 2027-06-01 existing from 2027-07-01 consent required\n" \
        in text
    assert '  segment: string = "consumer\\tB2C\\n"\n' in text
    assert "  seen: datetime = 2024-01-01T09:30:00Z\n" in text
    assert '  tags: set = {"a", "b"}\n' in text
    assert "  window: duration = 1 day\n" in text
    assert "  percent 50 off for 3 cycles\n" in text
    assert '  deny "carrier" when storefront.channel == telecom or not (customer.vip and true)\n' \
        in text
    assert ("  rate 20% when customer.country not in {\"DE\"} and "
            "-(1 + 2) * 3 < days_between(customer.since, 2027-01-01)\n") in text
    assert "  stripe when total > round(total * 10%, 2)\n" in text
    # a number before a PSP named like a unit keeps its parentheses (else `3 days`)
    assert "  weird when (subscription.cycle > 3)\n  days when" in text
    assert "  days when max(1, 2, 3) - (4 - 5) / (6 * 7) == min()\n" in text
    assert "  grace 10 days keep entitlements\n" in text
    assert "  refund full within 1 day, none after\n" in text
    assert "\n\n\n" not in text and text.endswith("}\n") and not text.endswith("\n\n")


def test_empty_module() -> None:
    assert format_module(parse("")) == ""


@pytest.mark.parametrize(("source", "expected"), [
    ("a or b or c", "a or b or c"),
    ("a or (b or c)", "a or b or c"),  # and / or are associative: chains print flat
    ("(a and b) and (c and (d or e))", "a and b and c and (d or e)"),
    ("(a and b) or (c and d)", "a and b or c and d"),
    ("(a or b) and c", "(a or b) and c"),
    ("not (a == b)", "not a == b"),
    ("(not a) == b", "(not a) == b"),
    ("not not a", "not not a"),
    ("(a == b) == c", "(a == b) == c"),
    ("a - (b - c)", "a - (b - c)"),
    ("(a - b) - c", "a - b - c"),
    ("a / (b * c)", "a / (b * c)"),
    ("-(a + b) * -c", "-(a + b) * -c"),
    ("- - a", "--a"),
    ("(-a).b", "(-a).b"),
    ("(a + b).c.d", "(a + b).c.d"),
    ("f((a), (b or c))", "f(a, b or c)"),
    ("[1, (2)]", "{1, 2}"),
    ("{}", "{}"),
    ("x not in {1}", "x not in {1}"),
    ("EUR 1.50 + JPY 0", "EUR 1.50 + JPY 0"),
    ("2027-02-01T01:00+01:00", "2027-02-01T00:00:00Z"),
    ("2027-02-01T00:00:00.25Z", "2027-02-01T00:00:00.250000Z"),
    ("1 weeks + 3 day", "1 week + 3 days"),
    ('"a\\"b\\\\c\\qd"', '"a\\"b\\\\cqd"'),
])
def test_expression_layout(source: str, expected: str) -> None:
    expr = parse_expression(source)
    assert format_expression(expr) == expected
    assert parse_expression(expected) == expr


def test_values_the_parser_never_builds() -> None:
    """Negative literals print as unary minus; a decimal keeps a decimal point."""
    assert format_expression(n.Literal("int", -3)) == "-3"
    assert format_expression(n.Field(n.Literal("int", -3), "x")) == "(-3).x"
    assert format_expression(n.Literal("decimal", Decimal(3))) == "3.0"
    assert parse_expression("3.0") == n.Literal("decimal", Decimal(3))
    assert format_expression(n.Literal("decimal", Decimal("1E-7"))) == "0.0000001"
    money = n.Literal("money", n.Money("EUR", Decimal("-1.5")))
    assert format_expression(money) == "-EUR 1.5"
    with pytest.raises(ValueError):
        format_expression(n.Literal("money", Decimal(1)))


# -- random expressions ----------------------------------------------------------------

NAMES = ["a", "b", "total", "customer", "storefront", "plan", "web_eu", "EUR", "days", "x_1"]
FIELDS = ["country", "channel", "cycle", "at", "reason"]
FUNCS = ["min", "max", "round", "days_between"]
BINARY_OPS: list[n.BinaryOp] = ["and", "or", "==", "!=", "<", "<=", ">", ">=", "in", "not in",
                                "+", "-", "*", "/"]
UNITS: list[n.DurationUnit] = ["day", "week", "month", "year"]


def _decimals(places: int = 4) -> st.SearchStrategy[Decimal]:
    return st.builds(lambda i, p: Decimal(i).scaleb(-p),
                     st.integers(0, 10**9), st.integers(0, places))


literals = st.one_of(
    st.builds(lambda v: n.Literal("int", v), st.integers(0, 10**12)),
    st.builds(lambda v: n.Literal("decimal", v), _decimals()),
    st.builds(lambda v: n.Literal("percent", v), _decimals()),
    st.builds(lambda c, v: n.Literal("money", n.Money(c, v)),
              st.sampled_from(["EUR", "USD", "JPY"]), _decimals(3)),
    st.builds(lambda v: n.Literal("string", v), st.text(max_size=8)),
    st.builds(lambda v: n.Literal("bool", v), st.booleans()),
    # the language's date window (revrules.parser.MIN_DATE .. MAX_DATE)
    st.builds(lambda v: n.Literal("date", v), st.dates(min_value=dt.date(1, 1, 2),
                                                       max_value=dt.date(9999, 12, 30))),
    st.builds(lambda v: n.Literal("datetime", v),
              st.datetimes(min_value=dt.datetime(1000, 1, 2), max_value=dt.datetime(9999, 12, 30),
                           timezones=st.just(dt.UTC))),
    st.builds(lambda c, u: n.Literal("duration", n.Duration(c, u)),
              st.integers(0, 1000), st.sampled_from(UNITS)),
)
leaves = st.one_of(literals, st.builds(n.Name, st.sampled_from(NAMES)))


def _branches(sub: st.SearchStrategy[n.Expr]) -> st.SearchStrategy[n.Expr]:
    items = st.lists(sub, max_size=3).map(tuple)
    return st.one_of(
        st.builds(n.Binary, st.sampled_from(BINARY_OPS), sub, sub),
        st.builds(n.Unary, st.sampled_from(["not", "-"]), sub),
        st.builds(n.Field, sub, st.sampled_from(FIELDS)),
        st.builds(n.Call, st.sampled_from(FUNCS), items),
        st.builds(n.SetLit, items),
    )


expressions = st.recursive(leaves, _branches, max_leaves=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
@example(n.Binary("-", n.Name("a"), n.Unary("-", n.Literal("int", 1))))
@example(n.Binary("==", n.Unary("not", n.Name("a")), n.Name("b")))
@example(n.Unary("-", n.Field(n.Literal("money", n.Money("EUR", Decimal(5))), "at")))
def test_random_expressions_round_trip(expr: n.Expr) -> None:
    text = format_expression(expr)
    assert parse_expression(text) == _reassociated(expr), text


def _reassociated(expr: n.Expr) -> n.Expr:
    """``expr`` with its and / or chains in the parser's canonical shape: up to three
    operands nest to the left, longer chains split in halves (the operators are
    associative, so the shape does not change the meaning)."""
    if isinstance(expr, n.Binary) and expr.op in ("and", "or"):
        operands: list[n.Expr] = []
        todo: list[n.Expr] = [expr]
        while todo:
            e = todo.pop()
            if isinstance(e, n.Binary) and e.op == expr.op:
                todo += (e.right, e.left)
            else:
                operands.append(_reassociated(e))
        return _shape(expr.op, operands)
    if isinstance(expr, n.Binary):
        return n.Binary(expr.op, _reassociated(expr.left), _reassociated(expr.right))
    if isinstance(expr, n.Unary):
        return n.Unary(expr.op, _reassociated(expr.operand))
    if isinstance(expr, n.Field):
        return n.Field(_reassociated(expr.obj), expr.name)
    if isinstance(expr, n.Call):
        return n.Call(expr.func, tuple(_reassociated(a) for a in expr.args))
    if isinstance(expr, n.SetLit):
        return n.SetLit(tuple(_reassociated(i) for i in expr.items))
    return expr


def _shape(op: n.BinaryOp, operands: list[n.Expr]) -> n.Expr:
    if len(operands) == 1:
        return operands[0]
    cut = len(operands) - 1 if len(operands) <= 3 else len(operands) // 2
    return n.Binary(op, _shape(op, operands[:cut]), _shape(op, operands[cut:]))


def test_chains_of_and_or_take_one_shape() -> None:
    a, b, c, d = (n.Name(x) for x in "abcd")
    assert parse_expression("a or (b or c)") == n.Binary("or", n.Binary("or", a, b), c)
    assert parse_expression("(a or b) or (c or d)") == parse_expression("a or b or c or d") \
        == n.Binary("or", n.Binary("or", a, b), n.Binary("or", c, d))


# -- revrules fmt ------------------------------------------------------------------------

CANONICAL = '# tiny\nruleset tiny version "1"\n\nstorefront web { channel web  psp stripe }\n'
MESSY = '# tiny\nruleset   tiny version "1"\nstorefront web {\n  channel web\n  psp stripe\n}\n'


def test_fmt_prints_one_file(write, capsys) -> None:  # type: ignore[no-untyped-def]
    path = write("messy.rr", MESSY)
    assert main(["fmt", path]) == 0
    out, err = capsys.readouterr()
    assert out == CANONICAL
    assert err == ""  # comments are kept: nothing to warn about
    assert Path(path).read_text("utf-8") == MESSY  # untouched


def test_fmt_check(write, capsys) -> None:  # type: ignore[no-untyped-def]
    good, bad = write("good.rr", CANONICAL), write("bad.rr", MESSY)
    assert main(["fmt", "--check", good]) == 0
    assert capsys.readouterr().out == ""
    assert main(["fmt", "--check", good, bad]) == 1
    out, _ = capsys.readouterr()
    assert out == f"{bad}: would reformat\n"
    assert Path(bad).read_text("utf-8") == MESSY


def test_fmt_write(write, capsys) -> None:  # type: ignore[no-untyped-def]
    good, bad = write("good.rr", CANONICAL), write("bad.rr", MESSY)
    assert main(["fmt", "--write", good, bad]) == 0
    out, _ = capsys.readouterr()
    assert out == f"{bad}: reformatted\n"
    assert Path(bad).read_text("utf-8") == CANONICAL
    assert main(["fmt", "--check", good, bad]) == 0


def test_fmt_bad_input(write, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    broken = write("broken.rr", "ruleset x\nstorefront { }\n")
    good = write("good.rr", CANONICAL)
    assert main(["fmt", "--check", broken, good]) == 1
    _out, err = capsys.readouterr()
    assert "broken.rr:2:12: error[syntax]: unexpected '{'; expected a name" in err
    assert " 2 | storefront { }" in err and "Traceback" not in err
    assert main(["fmt", str(tmp_path / "missing.rr")]) == 2
    assert "revrules: cannot read" in capsys.readouterr().err
    assert main(["fmt", good, good]) == 2  # printing is for one file
    assert "--write, --check or --diff" in capsys.readouterr().err
    assert main(["fmt", "--check", "--write", good]) == 2
