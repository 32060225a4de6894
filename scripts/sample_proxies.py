"""Put published figures into the bundled 2020 sample (data/sample/values.csv) in place of
illustrative values: real where the figure is what the indicator asks for, `proxy` where it is of
another scope or definition (a country's value for its city, a competitiveness rank for "economic
sustainability", social expenditure for the social security index).

    .venv/bin/python scripts/sample_proxies.py FACTS.csv     # then: make recordings

FACTS.csv has the columns city_id, indicator, value, unit, level (city|country), vintage, source,
provenance, note: every figure with where it was read (repository@commit:path, or a page). Each value
written keeps that provenance, its vintage, what it stands in for and how it was transformed.
City-level figures win over country-level ones. Idempotent: rows already filled are rewritten from
the same figures.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "data" / "sample" / "values.csv"
EDITION = "2020"
FIELDS = [
    "edition",
    "source",
    "record",
    "city_id",
    "field",
    "value",
    "status",
    "vintage",
    "provenance",
    "stands_for",
    "transform",
    "unit",  # a figure whose unit is not the indicator's one (GDP as published)
    "boundary",  # what a figure covers: city, metro, region, country
]


def per_10000(v: float) -> float:
    return v * 10


def socx_score(v: float) -> float:
    return 100 * v / 35


def rank_index(v: float, n: int) -> float:
    return 1 - (v - 1) / (n - 1)


# indicator of the sample -> the figures that may fill it, best first: (facts indicator, level,
# vintages in order of preference, status, what it stands in for, transform text, transform)
RULES: dict[str, list[tuple]] = {
    # country figures of the World Bank (physicians, R&D / GDP, education / government spending) come
    # from the `wdi` source (scripts/sample_sources.py): a city's own figure only here
    "physician_density": [
        (
            "physicians_per_1000",
            "city",
            ["2019", "2018", "2015"],
            "real",
            "",
            "per 1,000 x 10 = per 10,000",
            per_10000,
        ),
    ],
    "rd_intensity": [
        ("rd_spending_pct_gdp", "city", ["2019"], "real", "", "", None),
    ],
    "social_security_index": [
        (
            "public_social_expenditure_pct_gdp_PROXY",
            "country",
            ["2016", "2015", "2013"],
            "proxy",
            "the social security index (INSEAD GTCI): the country's public social expenditure, % of GDP (OECD SOCX)",
            "score = 100 x share of GDP / 35 (35 % of GDP as the top of the 0-100 scale)",
            socx_score,
        ),
    ],
    "economic_sustainability": [
        (
            "gucr_economic_competitiveness_world_rank",
            "city",
            ["2019", "2018", "2020"],
            "proxy",
            "economic sustainability (CASS sustainable competitiveness): the CASS economic competitiveness world rank",
            "index = 1 - (rank - 1) / (N - 1), N = cities ranked in that edition (1 = best becomes 1.0)",
            rank_index,
        ),
    ],
}


READ_FROM = "; read from "  # between the publication and where it was read
RD_UNITS = "a 0-100 score mapped to % of GDP as 0.5 + 6 x score / 100"


def pick(facts: list[dict], city: str, rules: list[tuple]) -> tuple[dict, tuple] | None:
    for rule in rules:
        indicator, level, vintages = rule[0], rule[1], rule[2]
        for vintage in vintages:
            for f in facts:
                if (f["city_id"], f["indicator"], f["level"], f["vintage"]) == (city, indicator, level, vintage):
                    return f, rule
    return None


def fill(rows: list[dict], facts: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        r.setdefault("stands_for", "")
        r.setdefault("transform", "")
        if r["field"] == "rd_intensity" and r["status"] == "illustrative" and RD_UNITS not in r["provenance"]:
            # the indicator is R&D spending / GDP: its illustrative values move to that unit too
            r["value"] = f"{0.5 + 6 * float(r['value']) / 100:.2f}"
            r["provenance"] += f"; {RD_UNITS}"
        if r["edition"] != EDITION or r["source"] != "curated" or r["field"] not in RULES:
            continue
        found = pick(facts, r["city_id"], RULES[r["field"]])
        if found is None:
            continue
        f, (_, _, _, status, stands_for, transform_text, transform) = found
        value = float(f["value"])
        if transform is rank_index:
            n = int(re.search(r"(\d{3,})", f["unit"]).group(1))  # type: ignore[union-attr]
            value = rank_index(value, n)
            transform_text = transform_text.replace("N = cities ranked", f"N = {n} cities ranked")
        elif transform is not None:
            value = transform(value)
        r.update(
            value=f"{value:.4f}".rstrip("0").rstrip("."),
            status=status,
            vintage=f["vintage"],
            provenance=f"{f['source']}{READ_FROM}{f['provenance']} ({f['level']} level, {f['unit']}, {f['vintage']})",
            stands_for=stands_for,
            transform=transform_text,
        )
        counts[f"{r['field']} {status}"] = counts.get(f"{r['field']} {status}", 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("facts", type=Path, help="CSV of published figures with provenance")
    args = parser.parse_args()
    with open(args.facts, encoding="utf-8") as fh:
        facts = list(csv.DictReader(fh))
    missing = [r for r in facts if not r.get("provenance") or not r.get("source")]
    if missing:
        sys.exit(f"{args.facts}: {len(missing)} rows without source or provenance (first: {missing[0]})")
    with open(VALUES, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    counts = fill(rows, facts)
    with open(VALUES, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for k, n in sorted(counts.items()):
        print(f"{k}: {n}")


if __name__ == "__main__":
    main()
