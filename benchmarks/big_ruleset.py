"""A big, realistic ruleset for load benchmarks, generated from a seed.

    python benchmarks/big_ruleset.py [--scale K] [--seed S] [-o FILE]

``big_ruleset(scale, seed)`` writes the source of a catalogue the size of a large
streaming or software business: 24 storefronts (web shops per market, both app
stores, carriers, partners, invoiced B2B), and per unit of ``scale`` 100 plan
families of four plans each (monthly, plus, annual, business), their products and
bundles, prices per storefront with scheduled rises (some with consent, some with a
later date for existing subscribers), contracts, eligibility rules, code and automatic
promotions, tax rates per market and per product family, and payment routes per
storefront. ``scale=1`` is about 10,000 rules (a rule: a price line, a contract, a
deny, a promotion, a tax rate, a route line or a dunning policy); every part grows in
proportion, except the storefronts, which a business has a few dozen of at most.

The same ``(scale, seed)`` always gives the same text (``random.Random(seed)`` only).
The ruleset passes check; it may carry lint warnings, as real ones do.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

# name, channel, region, currency, tax mode, psps, extra
STOREFRONTS: tuple[tuple[str, str, str, str, str, tuple[str, ...], str], ...] = (
    ("web_de", "web", "EU", "EUR", "inclusive", ("adyen", "stripe"), ""),
    ("web_fr", "web", "EU", "EUR", "inclusive", ("adyen", "stripe"), ""),
    ("web_it", "web", "EU", "EUR", "inclusive", ("stripe",), ""),
    ("web_es", "web", "EU", "EUR", "inclusive", ("stripe",), ""),
    ("web_nl", "web", "EU", "EUR", "inclusive", ("adyen",), ""),
    ("web_uk", "web", "UK", "GBP", "inclusive", ("stripe", "braintree"), ""),
    ("web_us", "web", "US", "USD", "exclusive", ("stripe", "braintree"), ""),
    ("web_ca", "web", "CA", "CAD", "exclusive", ("stripe",), ""),
    ("web_jp", "web", "JP", "JPY", "inclusive", ("stripe",), ""),
    ("web_br", "web", "BR", "BRL", "inclusive", ("adyen",), ""),
    ("web_in", "web", "IN", "INR", "inclusive", ("razorpay",), ""),
    ("web_au", "web", "AU", "AUD", "inclusive", ("stripe",), ""),
    ("web_ch", "web", "CH", "CHF", "inclusive", ("adyen",), ""),
    ("web_se", "web", "SE", "SEK", "inclusive", ("adyen",), ""),
    ("ios_us", "app_store", "ALL", "USD", "inclusive", ("apple",), "commission 15%"),
    ("ios_eu", "app_store", "ALL", "EUR", "inclusive", ("apple",), "commission 15%"),
    ("play_us", "play_store", "ALL", "USD", "inclusive", ("google",), "commission 15%"),
    ("play_eu", "play_store", "ALL", "EUR", "inclusive", ("google",), "commission 15%"),
    ("telco_de", "telecom", "EU", "EUR", "inclusive", ("carrier",), "commission 5%"),
    ("telco_uk", "telecom", "UK", "GBP", "inclusive", ("carrier",), "commission 5%"),
    ("partner_eu", "partner", "EU", "EUR", "inclusive", ("partner",), "commission 10%"),
    ("partner_us", "partner", "US", "USD", "exclusive", ("partner",), "commission 10%"),
    ("b2b_eu", "direct", "ALL", "EUR", "exclusive", ("transfer",), "terms net 30 days"),
    ("b2b_us", "direct", "ALL", "USD", "exclusive", ("transfer",), "terms net 30 days"),
)
_SF = {s[0]: s for s in STOREFRONTS}
CONSUMER = tuple(s[0] for s in STOREFRONTS if s[1] != "direct")
B2B = ("b2b_eu", "b2b_us")
# a typical list price per currency unit of one euro, and whole units only for JPY
_RATE = {"EUR": 1, "USD": 1.1, "GBP": 0.9, "CAD": 1.5, "JPY": 160, "BRL": 5.5, "INR": 90,
         "AUD": 1.6, "CHF": 1, "SEK": 11}
COUNTRIES = ("DE", "FR", "IT", "ES", "NL", "BE", "AT", "PT", "IE", "FI", "SE", "DK", "PL",
             "CZ", "GR", "HU", "RO", "GB", "US", "CA", "JP", "BR", "IN", "AU", "CH", "NO",
             "MX", "AR", "KR", "SG")
_VAT = {"DE": 19, "FR": 20, "IT": 22, "ES": 21, "NL": 21, "BE": 21, "AT": 20, "PT": 23,
        "IE": 23, "FI": 24, "SE": 25, "DK": 25, "PL": 23, "CZ": 21, "GR": 24, "HU": 27,
        "RO": 19, "GB": 20, "JP": 10, "BR": 17, "IN": 18, "AU": 10, "CH": 8, "NO": 25,
        "MX": 16, "AR": 21, "KR": 10, "SG": 9}
FAMILIES_PER_SCALE = 100


def _money(currency: str, euros: float) -> str:
    amount = euros * _RATE[currency]
    if currency == "JPY":
        return f"{currency} {round(amount, -1):.0f}"
    return f"{currency} {amount:.2f}"


def big_ruleset(scale: float = 1, seed: int = 1) -> str:
    """The source text of a generated ruleset; ``scale=1``: about 10,000 rules."""
    rnd = random.Random(seed)
    families = max(1, round(FAMILIES_PER_SCALE * scale))
    out: list[str] = [f'ruleset big version "{scale}-{seed}"  # generated: benchmarks/big_ruleset.py',
                      "",
                      "customer {",
                      "  country: string",
                      "  trials_used: int = 0",
                      '  segment: string = "consumer"',
                      "  seats: int = 1",
                      "}", ""]
    for name, channel, region, currency, mode, psps, extra in STOREFRONTS:
        out.append(f"storefront {name} {{ channel {channel}  region {region}  currency "
                   f"{currency}  tax {mode}  psp {', '.join(psps)}  {extra} }}")
    out.append("")
    eligibilities = max(1, families * 2)
    for e in range(eligibilities):
        banned = ", ".join(f'"{c}"' for c in rnd.sample(COUNTRIES, 3))
        out += [f"eligibility trial_{e} {{",
                '  deny "trial already used" when customer.trials_used > 0',
                f'  deny "no trials via carrier" when storefront.channel == '
                f'{rnd.choice(["telecom", "partner"])}',
                f'  deny "not offered in this country" when customer.country in {{{banned}}}',
                "}"]
    out.append("")
    sold: dict[str, list[str]] = {}
    for f in range(families):
        fam = f"f{f}"
        out += [f"product {fam}_sd {{ entitlements {fam}_sd }}",
                f"product {fam}_hd {{ entitlements {fam}_hd, {fam}_downloads }}",
                f"product {fam}_live {{ entitlements {fam}_live }}",
                f"bundle {fam}_all {{ products {fam}_hd, {fam}_live }}"]
        base = rnd.uniform(4, 15)
        shops = sorted(rnd.sample(CONSUMER, 8), key=CONSUMER.index)
        plans = (
            (f"{fam}_basic_m", f"product {fam}_sd", "1 month", base, shops),
            (f"{fam}_plus_m", f"product {fam}_hd", "1 month", base * 1.6, shops),
            (f"{fam}_plus_y", f"bundle {fam}_all", "1 year", base * 16, shops[:6]),
            (f"{fam}_biz_y", f"bundle {fam}_all", "1 year", base * 20, list(B2B)),
        )
        for name, product, every, price, where in plans:
            sold[name] = where
            out += [f"plan {name} {{", f"  {product}", f"  every {every}"]
            if name.endswith("_plus_m"):
                out.append(f"  trial 14 days if trial_{rnd.randrange(eligibilities)}")
            for sf in where:
                currency = _SF[sf][3]
                out.append(f"  price {sf} {_money(currency, price)}")
                roll = rnd.random()
                if roll < 0.3:
                    out.append(f"  price {sf} {_money(currency, price * 1.1)} from "
                               f"2027-{rnd.randrange(1, 13):02d}-01")
                elif roll < 0.45:
                    out.append(f"  price {sf} {_money(currency, price * 1.1)} from "
                               f"2027-{rnd.randrange(1, 7):02d}-01 consent required")
                elif roll < 0.55:
                    out.append(f"  price {sf} {_money(currency, price * 1.15)} from "
                               f"2027-0{rnd.randrange(1, 4)}-01 existing from "
                               f"2027-0{rnd.randrange(4, 10)}-01")
            others = [s for s in _SF if s not in where]
            out.append(f"  not sold in {', '.join(others)}")
            if name.endswith("_basic_m"):
                out.append(f"  upgrade to {fam}_plus_m immediate prorate")
            elif name.endswith("_plus_m"):
                out += [f"  upgrade to {fam}_plus_y immediate prorate",
                        f"  downgrade to {fam}_basic_m at period_end"]
            elif name.endswith("_plus_y"):
                out.append(f"  downgrade to {fam}_plus_m at period_end")
            out.append("}")
        for c in range(3):
            sf = rnd.choice(B2B)
            currency = _SF[sf][3]
            start = rnd.randrange(2026, 2028)
            out += [f"contract {fam}_c{c} {{", f'  customer "c-{fam}-{c}"',
                    f"  plan {fam}_biz_y", f"  price {_money(currency, base * 15)}",
                    f"  valid {start}-01-01 to {start + 2}-12-31", "}"]
        out.append("")
    plan_names = list(sold)
    for p in range(families * 15):
        fam = f"f{p % families}"
        family = [f"{fam}_basic_m", f"{fam}_plus_m", f"{fam}_plus_y"]
        chosen = sorted(rnd.sample(family, rnd.randint(1, 3)), key=family.index)
        out.append(f"promotion promo_{p} {{")
        automatic = rnd.random() < 0.4
        out.append("  automatic" if automatic else f'  code "P{p}X{rnd.randrange(10**6):06d}"')
        out.append(f"  plans {', '.join(chosen)}")
        where = sorted({s for plan in chosen for s in sold[plan]}, key=list(_SF).index)
        if rnd.random() < 0.5:
            percent = rnd.choice([10, 15, 20, 25, 30, 50])
            if rnd.random() < 0.5:
                where = sorted(rnd.sample(where, min(len(where), rnd.randint(1, 4))),
                               key=list(_SF).index)
                out.append(f"  storefronts {', '.join(where)}")
            term = rnd.choice(["once", "forever", f"for {rnd.randint(2, 6)} cycles"])
            out.append(f"  percent {percent} off {term}")
        else:
            currency = _SF[rnd.choice(where)][3]
            where = [s for s in where if _SF[s][3] == currency]
            out.append(f"  storefronts {', '.join(where)}")
            out.append(f"  amount {_money(currency, rnd.choice([1, 2, 3, 5]))} off "
                       f"{rnd.choice(['once', 'forever', 'for 3 cycles'])}")
        start = rnd.randrange(1, 12)
        out.append(f"  valid 2026-{start:02d}-01 to 2027-{start:02d}-28")
        if not automatic:
            out.append(f"  limit {rnd.choice([1000, 5000, 10000])} total, 1 per customer")
        condition = rnd.choice([
            'customer.segment == "consumer"', "subscription.cycle >= 12",
            f'customer.country in {{"{rnd.choice(COUNTRIES)}", "{rnd.choice(COUNTRIES)}"}}',
            "customer.trials_used == 0", "subscription.cycle >= 6 and customer.seats < 5",
            None])
        if condition is not None:
            out.append(f"  if {condition}")
        if automatic and rnd.random() < 0.2:
            out.append("  stackable")
        out.append("}")
    out.append("")
    # store-wide campaigns: a fixed few, for every plan
    out += ["promotion welcome_back {", "  automatic", "  storefronts web_de, web_fr, web_it",
            "  percent 20 off once", "  if customer.segment == \"winback\"", "}",
            "promotion students {", '  code "STUDENT"', "  percent 30 off forever",
            '  if customer.segment == "student"', "}", ""]
    out.append("tax vat {  # reduced rates per family and market first, then the standard rate")
    for t in range(families * 20):
        country = rnd.choice(COUNTRIES[:17])
        fam = f"f{t % families}"
        which = ", ".join(rnd.sample([f"{fam}_basic_m", f"{fam}_plus_m", f"{fam}_plus_y"], 2))
        out.append(f"  rate {rnd.choice([5, 7, 10])}% when customer.country == \"{country}\" "
                   f"and plan in {{{which}}}")
    for country in COUNTRIES:
        if country in _VAT:
            out.append(f"  rate {_VAT[country]}% when customer.country == \"{country}\"")
    out += ["  rate 0%", "}", ""]
    out.append("tax digital_levy {")
    for country in ("FR", "IT", "ES", "AT"):
        out.append(f"  rate {rnd.choice([1, 2, 3])}% when customer.country == \"{country}\" "
                   "and storefront.channel == web")
    out += ["  rate 0%", "}", ""]
    out.append("route {")
    several = [s for s in STOREFRONTS if len(s[5]) > 1]  # storefronts with a choice of PSP
    for r in range(families * 15):
        name, _, _, currency, _, psps, _ = rnd.choice(several)
        psp = psps[r % len(psps)]
        kind = rnd.random()
        if kind < 0.4:
            out.append(f"  {psp} when storefront == {name} and total >= "
                       f"{_money(currency, rnd.choice([20, 50, 100, 200]) + r % 97)}")
        elif kind < 0.8:
            out.append(f"  {psp} when storefront == {name} and customer.country == "
                       f"\"{rnd.choice(COUNTRIES)}\" and customer.segment == \"s{r}\"")
        else:
            which = ", ".join(rnd.sample(plan_names, 3))
            out.append(f"  {psp} when storefront == {name} and plan in {{{which}}}")
    out += ["  stripe when storefront.channel == web and customer.seats > 10",
            "  transfer when storefront.channel == direct", "  apple when storefront.channel == app_store",
            "  google when storefront.channel == play_store", "  carrier when storefront.channel == telecom",
            "  partner when storefront.channel == partner", "}", ""]
    out += ["dunning standard {", "  retry after 1 day, 3 days, 7 days", "  retry via stripe",
            '  no retry when payment.reason in {"stolen_card", "fraudulent"}',
            "  grace 10 days keep entitlements", "  then cancel", "}",
            "dunning stores for storefront.channel in {app_store, play_store} {",
            "  grace 16 days keep entitlements", "  then cancel", "}",
            "dunning b2b for storefront.channel == direct {",
            "  retry after 7 days, 14 days", "  grace 30 days keep entitlements", "  then unpaid",
            "}", ""]
    out += ["lifecycle {", "  pause max 3 months when subscription.cycle >= 2",
            "  cancel at period_end", "  refund full within 14 days, prorated after", "}", ""]
    return "\n".join(out)


def count_rules(text: str) -> Counter[str]:
    """How many rules of each kind the text has (by the first word of each line)."""
    counts: Counter[str] = Counter()
    in_route = False
    for line in text.splitlines():
        word = line.strip().split(" ", 1)[0]
        if line.startswith("route"):
            in_route = True
        elif line.startswith("}"):
            in_route = False
        elif in_route and word:
            counts["route"] += 1
        if word in ("price", "contract", "deny", "promotion", "rate", "dunning"):
            counts[word] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args(argv)
    text = big_ruleset(args.scale, args.seed)
    if args.output:
        args.output.write_text(text, "utf-8")
    else:
        sys.stdout.write(text)
    counts = count_rules(text)
    print(f"{sum(counts.values())} rules: " + ", ".join(
        f"{k} {v}" for k, v in sorted(counts.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
