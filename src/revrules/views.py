"""Text renderings of the revenue views: accrual, MRR movements, tax by jurisdiction.

Deterministic (the same view always gives the same bytes); money is written with its
currency's minor units, never as a float.
"""

from __future__ import annotations

import csv
import io

from .accrual import ACCRUAL_FIELDS, Accrual
from .movements import MOVEMENT_FIELDS, Movements
from .runtime import in_context, money_str
from .taxes import Taxes
from .text import printable, printable_lines

__all__ = ["accrual_csv", "accrual_table", "grid", "movements_table", "tax_table"]

_LEFT = ("currency", "month", "storefront", "channel", "plan", "table", "rate", "country", "key")


def grid(headings: list[str], rows: list[list[str]], footer: bool = False) -> list[str]:
    """Columns padded to their widest cell: text left, numbers right."""
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [headings, *rows]) for i in range(len(headings))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if h in _LEFT else c.rjust(w)
                         for c, w, h in zip(cells, widths, headings, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(headings), rule]
    out.extend(line(r) for r in (rows[:-1] if footer else rows))
    if footer and rows:
        out += [rule, line(rows[-1])]
    return out


@in_context
def accrual_table(accrual: Accrual) -> str:
    """Per currency: recognised revenue per month, the balances at each month end."""
    totals = accrual.totals()
    if not totals:
        return "no charges in this log"
    lines: list[str] = []
    months = accrual.by_month()
    for currency, total in totals.items():
        if lines:
            lines.append("")
        lines.append(f"{currency} (accrual basis): recognised "
                     f"{money_str(total.recognised, currency)}, deferred at the end "
                     f"{money_str(total.deferred, currency)}, receivable "
                     f"{money_str(total.receivable, currency)}")
        rows = [[m, *(money_str(getattr(f, n), currency) for n in ACCRUAL_FIELDS)]
                for (c, m), f in months.items() if c == currency]
        rows.append(["total", *(money_str(getattr(total, n), currency)
                                for n in ACCRUAL_FIELDS)])
        lines.extend(grid(["month", *ACCRUAL_FIELDS], rows, footer=True))
    return printable_lines(lines)


@in_context
def accrual_csv(accrual: Accrual) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["currency", "month", "storefront", "channel", "plan", *ACCRUAL_FIELDS])
    for g, f in accrual.rows():
        writer.writerow([g.currency, g.month, g.storefront, g.channel, g.plan,
                         *(money_str(getattr(f, n), g.currency) for n in ACCRUAL_FIELDS)])
    return buffer.getvalue()


@in_context
def movements_table(movements: Movements) -> str:
    """Per currency: the MRR bridge month by month, then by plan."""
    lines: list[str] = []
    for by in ("total", "plan"):
        currencies = sorted({c for c, _, _, _ in movements.rows(by)})
        for currency in currencies:
            if lines:
                lines.append("")
            lines.append(f"{currency} MRR movements" + (" by plan" if by == "plan" else ""))
            heads = ["month", *MOVEMENT_FIELDS] if by == "total" else \
                ["plan", "month", *MOVEMENT_FIELDS]
            rows = [([] if by == "total" else [k]) + [m] +
                    [money_str(getattr(mv, f), currency) for f in MOVEMENT_FIELDS]
                    for c, k, m, mv in movements.rows(by) if c == currency]
            lines.extend(grid(heads, rows))
    return printable_lines(lines or ["no MRR in this log"])


@in_context
def tax_table(taxes: Taxes) -> str:
    """Tax per currency, month, tax table, rate and customer country."""
    rows = [[k.currency, k.month, k.table, k.rate_text, k.country,
             money_str(f.taxable, k.currency), money_str(f.tax, k.currency),
             money_str(f.refunded_taxable, k.currency), money_str(f.refunded_tax, k.currency),
             money_str(f.net_taxable, k.currency), money_str(f.net_tax, k.currency)]
            for k, f in taxes.rows()]
    if not rows:
        return "no tax in this log"
    heads = ["currency", "month", "table", "rate", "country", "taxable", "tax",
             "refunded taxable", "refunded tax", "net taxable", "net tax"]
    return printable_lines(["tax by jurisdiction (refunds in the month they are made)",
                            *grid(heads, rows)])
