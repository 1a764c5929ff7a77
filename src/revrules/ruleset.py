"""The pipeline in one place: text → parse → check → compile → :class:`Ruleset`.

A :class:`Ruleset` is what the engine runs: the checked model, the compiled rule
functions, and lookup tables built once (prices per plan and storefront, promotion
candidates, contracts per customer) so that a decision does no searching.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs

from . import model as m
from . import nodes as n
from .checker import check, with_lint
from .compiler import CompiledRules, Predicate, compile_model
from .decision import Tables
from .diagnostics import Diagnostic, RulesetError
from .parser import parse
from .runtime import ROUNDING_MODES, in_context
from .state import RulesetStamp

__all__ = ["Ruleset", "load", "load_text"]


@attrs.frozen
class Guarded:
    """A rule with its compiled condition (None: always)."""

    rule: m.Rule
    test: Predicate | None

    @property
    def source(self) -> str:
        return str(self.rule.span)


@attrs.frozen(eq=False)
class Ruleset:
    """A checked, compiled ruleset, ready for :class:`revrules.Engine`."""

    model: m.Model
    compiled: CompiledRules = attrs.field(repr=False)
    #: the warnings, or what finds them on first use (:attr:`warnings`)
    _warnings: tuple[Diagnostic, ...] | Callable[[], tuple[Diagnostic, ...]] = \
        attrs.field(default=(), repr=False)

    # lookup tables, built once
    storefronts: dict[str, m.Storefront] = attrs.field(init=False, repr=False)
    plans: dict[str, m.Plan] = attrs.field(init=False, repr=False)
    prices: dict[tuple[str, str], tuple[m.PriceEntry, ...]] = attrs.field(init=False, repr=False)
    contracts: dict[tuple[str, str], tuple[m.Contract, ...]] = attrs.field(init=False,
                                                                           repr=False)
    eligibility: dict[str, tuple[tuple[m.Deny, Predicate], ...]] = attrs.field(init=False,
                                                                                repr=False)
    promotions: dict[str, m.Promotion] = attrs.field(init=False, repr=False)
    promotion_tests: dict[str, Predicate | None] = attrs.field(init=False, repr=False)
    codes: dict[str, m.Promotion] = attrs.field(init=False, repr=False)
    automatic: dict[tuple[str, str], tuple[m.Promotion, ...]] = attrs.field(init=False,
                                                                            repr=False)
    taxes: tuple[tuple[tuple[m.TaxRate, Predicate | None], ...], ...] = attrs.field(
        init=False, repr=False)
    route: tuple[tuple[m.RouteRule, Predicate | None], ...] = attrs.field(init=False, repr=False)
    dunning: tuple[tuple[m.DunningPolicy, Predicate | None, Predicate | None], ...] = \
        attrs.field(init=False, repr=False)
    pause_test: Predicate | None = attrs.field(init=False, repr=False)
    rounding: str = attrs.field(init=False, repr=False)
    lines: tuple[str, ...] = attrs.field(init=False, repr=False)
    stamp: RulesetStamp = attrs.field(init=False, repr=False)
    # former name (`formerly`) → the plan or storefront that now carries it
    former_plans: dict[str, str] = attrs.field(init=False, repr=False)
    former_storefronts: dict[str, str] = attrs.field(init=False, repr=False)
    # the pure decision path's tables (indexed first-match tables, price schedules as
    # bisect tables: revrules.decision), each built on first use
    decision_tables: Tables = attrs.field(init=False, repr=False)

    @property
    def warnings(self) -> tuple[Diagnostic, ...]:
        """The ruleset's warnings, lint's (RR1xx) among them, as ``revrules check``
        reports them. :func:`load` finds lint's on first use, not while loading: lint
        is a quarter of the time of loading a large ruleset, and an engine never reads
        the warnings."""
        found = self._warnings
        if callable(found):
            found = found()
            object.__setattr__(self, "_warnings", found)  # once: the AST is let go
        return found

    def __attrs_post_init__(self) -> None:
        model, pred = self.model, self.compiled.predicate
        put: Callable[[str, object], None] = lambda k, v: object.__setattr__(self, k, v)
        put("storefronts", {s.name: s for s in model.storefronts})
        put("plans", {p.name: p for p in model.plans})
        prices: dict[tuple[str, str], list[m.PriceEntry]] = {}
        for plan in model.plans:
            for entry in plan.prices:
                prices.setdefault((plan.name, entry.storefront), []).append(entry)
        put("prices", {k: tuple(v) for k, v in prices.items()})
        contracts: dict[tuple[str, str], list[m.Contract]] = {}
        for c in model.contracts:
            contracts.setdefault((c.customer, c.plan), []).append(c)
        put("contracts", {k: tuple(v) for k, v in contracts.items()})
        put("eligibility", {e.name: tuple((d, pred(d.rule)) for d in e.denies)
                            for e in model.eligibilities})
        put("promotions", {p.name: p for p in model.promotions})
        put("promotion_tests", {p.name: pred(p.condition) for p in model.promotions})
        put("codes", {p.code.upper(): p for p in model.promotions if p.code})
        put("automatic", _automatic_table(model))
        put("taxes", tuple(tuple((r, pred(r.rule)) for r in t.rates) for t in model.taxes))
        put("route", tuple((r, pred(r.rule)) for r in model.route))
        put("dunning", tuple((d, pred(d.applies), pred(d.no_retry)) for d in model.dunning))
        put("pause_test", pred(model.lifecycle.pause_rule))
        put("rounding", ROUNDING_MODES[model.rounding])
        # lines end at \n only, as the parser counts them for spans
        put("lines", tuple(line.removesuffix("\r") for line in model.source.split("\n")))
        put("former_plans", {old: p.name for p in model.plans for old in p.formerly})
        put("former_storefronts", {old: s.name for s in model.storefronts for old in s.formerly})
        put("decision_tables", Tables(self))
        put("stamp", RulesetStamp(model.name, model.version, "sha256:" + hashlib.sha256(
            model.source.encode("utf-8", "surrogatepass")).hexdigest()))

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def version(self) -> str | None:
        return self.model.version

    def source_text(self, rule: m.Rule) -> str:
        """The source text of a rule's condition, for reasons (``subscription.cycle >= 2``)."""
        if rule.when is None:
            return "always"
        span = rule.when.span
        lines = self.lines
        if span.line != span.end_line or span.line > len(lines):
            return str(rule.name)
        return lines[span.line - 1][span.column - 1:span.end_column - 1]


def _automatic_table(model: m.Model) -> dict[tuple[str, str], tuple[m.Promotion, ...]]:
    """(plan, storefront) → the automatic promotions that can apply there, in source order.

    Every pair of the model has an entry. The promotions are indexed by the plans they
    name first, so the work is one entry per pair plus what each entry holds, not
    plans × storefronts × promotions; the promotions for every plan (no ``plans``) are
    sorted out once per storefront, and a pair with nothing plan-specific shares that
    tuple."""
    order = {id(p): i for i, p in enumerate(model.promotions)}
    for_plan: dict[str, list[m.Promotion]] = {}
    for_any_plan: list[m.Promotion] = []
    for p in model.promotions:
        if not p.automatic:
            continue
        if p.plans is None:
            for_any_plan.append(p)
        else:
            for name in p.plans:
                for_plan.setdefault(name, []).append(p)

    def fits(p: m.Promotion, sf: m.Storefront) -> bool:
        return ((p.storefronts is None or sf.name in p.storefronts)
                and (p.currency is None or p.currency == sf.currency))

    shared = {sf.name: tuple(p for p in for_any_plan if fits(p, sf)) for sf in model.storefronts}
    table: dict[tuple[str, str], tuple[m.Promotion, ...]] = {}
    for plan in model.plans:
        own = for_plan.get(plan.name, ())
        for sf in model.storefronts:
            mine = [p for p in own if fits(p, sf)]
            table[(plan.name, sf.name)] = tuple(sorted(
                [*mine, *shared[sf.name]], key=lambda p: order[id(p)])) if mine \
                else shared[sf.name]
    return table


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a ruleset loads.

    A load allocates a few hundred thousand objects (tokens, tree nodes, AST nodes,
    model objects) and frees the intermediate ones by reference counting; the cycle
    collector finds nothing to free among them, but its passes over the growing heap
    cost about 40% of the load of a large ruleset. The collector is switched back on
    (if it was on) when the load ends, however it ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@in_context
def load_text(text: str, file: str = "<string>") -> Ruleset:
    """Parse, check and compile ruleset source; raise :class:`RulesetError` with every problem."""
    with _gc_paused():
        return _load_text(text, file)


def _load_text(text: str, file: str) -> Ruleset:
    module = parse(text, file)
    result = check(module, lint=False)
    model = result.model
    if model is None:
        # the module's source: what spans count in (a byte-order mark is not part of it)
        raise RulesetError(result.diagnostics, {file: module.source})
    early = result.diagnostics  # no errors: the checker's warnings
    return Ruleset(model, compile_model(model), lambda: _lint(model, module, early))


def _lint(model: m.Model, module: n.Module,
          early: tuple[Diagnostic, ...]) -> tuple[Diagnostic, ...]:
    with _gc_paused():  # as while loading: lint builds many small objects and keeps them
        return with_lint(model, module, early)


def load(source: str | os.PathLike[str]) -> Ruleset:
    """Load a ruleset from a path, or from source text if ``source`` is not a file.

    >>> rules = load('ruleset tiny\\nstorefront web { channel web currency EUR tax inclusive psp stripe }')
    >>> rules.name
    'tiny'
    """
    if isinstance(source, os.PathLike) or not _looks_like_source(source):
        path = Path(source)
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise RulesetError([Diagnostic("error", "io", f"cannot read {path}: {exc.strerror}",
                                           _file_span(str(path)))]) from None
        except UnicodeDecodeError as exc:
            raise RulesetError([Diagnostic("error", "io", f"{path} is not UTF-8 text "
                                           f"({exc.reason} at byte {exc.start})",
                                           _file_span(str(path)))]) from None
        except ValueError:  # a NUL in the path: no such file can exist
            raise RulesetError([Diagnostic("error", "io", f"cannot read {path}: not a valid "
                                           "file name", _file_span(str(path)))]) from None
        return load_text(text, os.fspath(source))
    return load_text(source)


def _looks_like_source(text: str) -> bool:
    return "\n" in text or re.match(r"\s*(#|ruleset\s)", text) is not None


def _file_span(file: str) -> m.Span:
    return m.Span(file, 0, 0, 0, 0)
