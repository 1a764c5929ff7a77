"""The lint solver against brute force: it never calls a condition that can hold
unsatisfiable (that would be a false warning), and every witness it gives satisfies
the condition."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import revrules
from revrules import nodes as n
from revrules.lint import ABSENT, Scope, formula, solve

RULES = revrules.load_text(
    'ruleset t\ncustomer {\n  k: int = 0\n  d: decimal = 0\n  s: string\n  b: bool = false\n}\n'
    "storefront web { channel web currency EUR tax inclusive psp stripe }\n"
    "product p { entitlements x }\nplan m { product p every 1 month price web EUR 1.00 }\n",
    "t.rr")
SCOPE = Scope(RULES.model, RULES.model.storefronts[0], "m")
INTS = [Decimal(i) for i in range(-2, 9)]
DECIMALS = sorted({Decimal(i) / 2 for i in range(-4, 18)})
STRINGS = ["A", "B", "C", "zz"]
GRID = {"k": INTS, "d": DECIMALS, "s": [*STRINGS, ABSENT], "b": [True, False]}


def field(name: str) -> n.Field:
    return n.Field(n.Name("customer"), name)


@st.composite
def atoms(draw: Any) -> n.Expr:
    name = draw(st.sampled_from(sorted(GRID)))
    if name in ("k", "d"):
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        value = draw(st.integers(-1, 7)) if name == "k" or draw(st.booleans()) else \
            Decimal(draw(st.integers(-2, 14))) / 2
        kind = "int" if isinstance(value, int) else "decimal"
        lit = n.Literal(kind, value)
        return n.Binary(op, field(name), lit) if draw(st.booleans()) else n.Binary(
            {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op), lit, field(name))
    if name == "s":
        if draw(st.booleans()):
            op = draw(st.sampled_from(["==", "!="]))
            return n.Binary(op, field("s"), n.Literal("string", draw(st.sampled_from(STRINGS[:3]))))
        items = draw(st.lists(st.sampled_from(STRINGS[:3]), min_size=1, max_size=3))
        return n.Binary(draw(st.sampled_from(["in", "not in"])), field("s"),
                        n.SetLit(tuple(n.Literal("string", i) for i in items)))
    return field("b") if draw(st.booleans()) else n.Binary(
        "==", field("b"), n.Literal("bool", draw(st.booleans())))


def conditions() -> st.SearchStrategy[n.Expr]:
    return st.recursive(atoms(), lambda inner: st.one_of(
        st.builds(lambda a, b: n.Binary("and", a, b), inner, inner),
        st.builds(lambda a, b: n.Binary("or", a, b), inner, inner),
        st.builds(lambda a: n.Unary("not", a), inner)), max_leaves=6)


def value(expr: n.Expr, env: dict[str, Any]) -> Any:
    if isinstance(expr, n.Field):
        return env[expr.name]
    if isinstance(expr, n.Literal):
        return Decimal(expr.value) if expr.kind in ("int", "decimal") else expr.value
    assert isinstance(expr, n.SetLit)
    return {i.value for i in expr.items}  # type: ignore[union-attr]


def holds(expr: n.Expr, env: dict[str, Any]) -> bool:
    """The engine's semantics: a comparison with an absent attribute is false."""
    if isinstance(expr, n.Unary):
        return not holds(expr.operand, env)
    if isinstance(expr, n.Field):
        return env[expr.name] is True
    assert isinstance(expr, n.Binary)
    if expr.op == "and":
        return holds(expr.left, env) and holds(expr.right, env)
    if expr.op == "or":
        return holds(expr.left, env) or holds(expr.right, env)
    a, b = value(expr.left, env), value(expr.right, env)
    if a is ABSENT or b is ABSENT:
        return False
    return {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
            "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b,
            "in": lambda: a in b, "not in": lambda: a not in b}[expr.op]()


@settings(max_examples=300, deadline=None)
@given(conditions())
def test_solver_agrees_with_brute_force(expr: n.Expr) -> None:
    witness = solve(formula(expr, SCOPE))
    envs = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    if any(holds(expr, env) for env in envs):
        assert witness is not None, "a condition that can hold was called unsatisfiable"
    if witness is not None:
        env = {"k": Decimal(0), "d": Decimal(0), "s": "zz", "b": False}
        env.update({k.removeprefix("customer."): v for k, v in witness.items()})
        assert holds(expr, env), witness
