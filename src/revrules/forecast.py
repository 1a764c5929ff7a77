"""Committed future revenue: the charges the rules will make if nothing else happens.

From the state at the end of a log, every live subscription is carried forward renewal
by renewal through the horizon: each renewal is priced with :meth:`Engine.quote` on the
state it would meet (so a projected charge is exactly what the engine would decide:
today's prices, a scheduled price change from its date, a promotion's cycles running
out, a contract's term, a price held until consent, a plan change waiting for the
period end, a trial converting at its end) and then applied, with its payment, so that
the next renewal meets the state this one leaves. A cancellation at the period end
ends the projection of that subscription there.

Nothing is invented: no churn, no new customers, no failed payments. A charge still open
at the end of the log (in dunning) is assumed paid when the projection starts; it is
already billed, so it is not counted again. Paused, canceled and ``unpaid``
subscriptions are not projected (a pause resumes only on a request or a tick), nor a
subscription whose renewal date lies before the end of the log (an overdue renewal):
both are listed in ``skipped``.

With churn rates per plan (a fraction per month), a second, labelled line weighs each
projected charge in the ``n``-th month of the horizon (``n`` = 1 for the first) by
``(1 − rate) ** n``, summed and rounded once per currency and month.

The horizon is ``months`` calendar months, starting with the month the log ends in
(only charges after its end count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from . import runtime as rt
from .quoting import QuoteError
from .runtime import CONTEXT, in_context, money_str
from .state import State

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Forecast", "ProjectedCharge", "forecast", "compare"]

ZERO = Decimal(0)
ONE = Decimal(1)


@attrs.frozen
class ProjectedCharge:
    """One charge the engine would make: when, for which subscription, how much."""

    subscription: str
    day: dt.date
    currency: str
    storefront: str
    plan: str
    list: Decimal
    discount: Decimal
    tax: Decimal
    net: Decimal
    total: Decimal
    reasons: tuple[str, ...] = ()

    @property
    def month(self) -> str:
        return f"{self.day.year:04d}-{self.day.month:02d}"


@attrs.frozen
class Forecast:
    """Projected charges over a horizon; ``months`` in order, ``skipped`` (subscription,
    why) for those not projected."""

    start: dt.datetime
    months: tuple[str, ...]
    charges: tuple[ProjectedCharge, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    churn: Mapping[str, Decimal] = attrs.field(factory=dict)

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted({c.currency for c in self.charges}))

    @in_context
    def by_month(self) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
        """(currency, month) → (charges, net, total), committed; every month of the
        horizon for each currency."""
        out: dict[tuple[str, str], tuple[int, Decimal, Decimal]] = {}
        for currency in self.currencies():
            for month in self.months:
                out[(currency, month)] = (0, ZERO, ZERO)
        for c in self.charges:
            n, net, total = out[(c.currency, c.month)]
            out[(c.currency, c.month)] = (n + 1, CONTEXT.add(net, c.net),
                                          CONTEXT.add(total, c.total))
        return dict(sorted(out.items()))

    @in_context
    def with_churn(self) -> dict[tuple[str, str], Decimal] | None:
        """(currency, month) → expected net after the churn rates; None without rates."""
        if not self.churn:
            return None
        position = {m: i + 1 for i, m in enumerate(self.months)}
        raw: dict[tuple[str, str], Decimal] = {
            (c, m): ZERO for c in self.currencies() for m in self.months}
        for c in self.charges:
            rate = self.churn.get(c.plan, ZERO)
            survive = CONTEXT.power(CONTEXT.subtract(ONE, rate), position[c.month])
            key = (c.currency, c.month)
            raw[key] = CONTEXT.add(raw[key], CONTEXT.multiply(c.net, survive))
        return {k: rt.quantize(v, k[0]) for k, v in sorted(raw.items())}

    def to_json(self) -> str:
        """:meth:`to_wire` as one deterministic JSON document."""
        from .wire import dumps

        return dumps(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        churned = self.with_churn()
        months = []
        for (currency, month), (n, net, total) in self.by_month().items():
            row: dict[str, Any] = {"currency": currency, "month": month, "charges": n,
                                   "net": money_str(net, currency),
                                   "total": money_str(total, currency)}
            if churned is not None:
                row["net_after_churn"] = money_str(churned[(currency, month)], currency)
            months.append(row)
        return {
            "start": self.start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "months": months,
            "churn": {p: rt.decimal_str(r) for p, r in sorted(self.churn.items())},
            "charges": [{"subscription": c.subscription, "date": c.day.isoformat(),
                         "currency": c.currency, "storefront": c.storefront,
                         "plan": c.plan, "list": money_str(c.list, c.currency),
                         "discount": money_str(c.discount, c.currency),
                         "tax": money_str(c.tax, c.currency),
                         "net": money_str(c.net, c.currency),
                         "total": money_str(c.total, c.currency)} for c in self.charges],
            "skipped": [{"subscription": s, "reason": r} for s, r in self.skipped],
        }

    def render(self) -> str:
        """A text table per currency: committed charges and net per month."""
        churned = self.with_churn()
        lines = [f"committed revenue, {len(self.months)} months from "
                 f"{self.start.date().isoformat()} (no churn assumed"
                 + (", second line with the churn rates given" if churned else "") + ")"]
        for currency in self.currencies():
            lines.append("")
            lines.append(f"{currency}")
            head = ["month", "charges", "net", "total"] + (["after churn"] if churned else [])
            rows = []
            for (cur, month), (n, net, total) in self.by_month().items():
                if cur != currency:
                    continue
                row = [month, str(n), money_str(net, cur), money_str(total, cur)]
                if churned is not None:
                    row.append(money_str(churned[(cur, month)], cur))
                rows.append(row)
            widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
            for r in [head, *rows]:
                lines.append("  ".join(r[0].ljust(widths[0]) if i == 0 else
                                       r[i].rjust(widths[i]) for i in range(len(r))))
        if self.skipped:
            lines.append("")
            lines.append(f"not projected ({len(self.skipped)}):")
            lines.extend(f"  {s}: {r}" for s, r in self.skipped)
        return "\n".join(lines)


def _month_list(first: dt.date, count: int) -> tuple[str, ...]:
    year, month = first.year, first.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return tuple(out)


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@in_context
def forecast(engine: Engine, state: State, months: int = 12,
             churn: Mapping[str, Decimal] | None = None) -> Forecast:
    """Project every live subscription of ``state`` over ``months`` months under the
    engine's rules (see the module's documentation)."""
    state = engine.adopt(state)
    rules = engine.rules
    tz = rules.model.timezone
    ends = [t for t in (state.clock, state.last_tick) if t is not None]
    ends += list(state.last_event.values())
    start = max(ends) if ends else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    first = rt.local_date(start, tz).replace(day=1)
    horizon = _month_list(first, months)
    last = horizon[-1]
    end = dt.date(int(last[:4]), int(last[5:7]), 1) + dt.timedelta(days=31)
    end = end.replace(day=1)
    charges: list[ProjectedCharge] = []
    skipped: list[tuple[str, str]] = []
    for sub_id in sorted(state.subscriptions):
        found, why = _project(engine, state, sub_id, start, end)
        charges.extend(found)
        if why is not None:
            skipped.append((sub_id, why))
    charges.sort(key=lambda c: (c.day, c.subscription))
    return Forecast(start, horizon, tuple(charges), tuple(skipped), dict(churn or {}))


def _project(engine: Engine, state: State, sub_id: str, start: dt.datetime,
             end: dt.date) -> tuple[list[ProjectedCharge], str | None]:
    rules = engine.rules
    tz = rules.model.timezone
    sub = state.subscriptions[sub_id]
    if sub.status in ("canceled", "unpaid", "paused"):
        return [], None if sub.status != "paused" else "paused"
    if engine.cannot_serve(sub) is not None:
        return [], "not served by this ruleset"
    out: list[ProjectedCharge] = []
    floor = max([t for t in (state.last_tick, state.last_event.get(sub_id)) if t is not None],
                default=start)
    if sub.charge is not None:  # billed and open: assume it is paid, count it no more
        paid = engine.apply(state, {"id": f"forecast:{sub_id}:open", "type":
                                    "payment_succeeded", "at": _iso(max(floor, start)),
                                    "subscription": sub_id})
        if not paid.ok:
            return [], "its open charge cannot be settled"
        state = paid.state
        floor = max(floor, start)
    n = 0
    while True:
        sub = state.subscriptions[sub_id]
        if sub.status in ("canceled", "unpaid", "paused"):
            return out, None
        if sub.status == "trialing" and sub.trial_end is not None:
            day = sub.trial_end
        else:
            day = rt.add_periods(sub.anchor, rules.plans[sub.plan].every, sub.index)
        if day >= end:
            return out, None
        at = max(rt.start_of(day, tz), floor)
        if rt.local_date(at, tz) != day:
            return out, f"renewal overdue since {day.isoformat()}"
        n += 1
        event = {"id": f"forecast:{sub_id}:{n}", "type": "renewal_due", "at": _iso(at),
                 "subscription": sub_id}
        try:
            quote = engine.quote(event, state)
        except QuoteError as exc:
            return out, f"renewal on {day.isoformat()}: {exc.code}"
        applied = engine.apply(state, event)
        if not applied.ok:
            return out, f"renewal on {day.isoformat()}: {applied.error.code if applied.error else ''}"
        state = applied.state
        floor = at
        if quote.kind == "charge" and quote.currency is not None and \
                state.subscriptions[sub_id].status != "canceled":
            after = state.subscriptions[sub_id]
            if at > start:
                out.append(ProjectedCharge(sub_id, day, quote.currency, after.storefront,
                                           after.plan, quote.list, quote.discount, quote.tax,
                                           quote.net, quote.total, quote.reasons))
            if after.charge is not None:
                paid = engine.apply(state, {"id": f"forecast:{sub_id}:{n}:paid",
                                            "type": "payment_succeeded", "at": _iso(at),
                                            "subscription": sub_id})
                if not paid.ok:
                    return out, f"payment on {day.isoformat()} refused"
                state = paid.state


@in_context
def compare(old: Forecast, new: Forecast) -> list[dict[str, Any]]:
    """Per currency and month: committed net under both rulesets and the change."""
    a, b = old.by_month(), new.by_month()
    rows = []
    for key in sorted(set(a) | set(b)):
        currency, month = key
        net_a = a.get(key, (0, ZERO, ZERO))[1]
        net_b = b.get(key, (0, ZERO, ZERO))[1]
        rows.append({"currency": currency, "month": month,
                     "old": money_str(net_a, currency), "new": money_str(net_b, currency),
                     "change": money_str(CONTEXT.subtract(net_b, net_a), currency)})
    return rows
