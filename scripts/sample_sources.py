"""Put the World Bank's country figures and the city facts (GDP, foreign-born shares and the other
migrant measures, QS student-city ranks) into the bundled sample (data/sample/values.csv), where a
source reads them instead of a hand-typed curated row:

- WDI figures (country level: physicians, R&D / GDP, education / government spending) become rows
  of the `wdi` source (city_id: the country's ISO3 code; field: the series name of
  data/sources.yaml), rendered by `make recordings` as the API's answers; the curated rows that held
  them as typed proxies go (the methodology's `proxy: {source: wdi}` makes the same proxies, from the
  source). A city's own figure stays in the curated table and wins.
- GDP of the city or metro, as published (currency and unit kept), becomes the curated `gdp` row the
  night-light indicator's proxy reads (methodology: converted to US$ at its exchange rates).
- Foreign-born shares (strict definition) become real `foreign_born_share` rows with their boundary;
  the other migrant measures become proxies, each saying what it is; a QS Best Student Cities rank
  becomes a proxy score for international students (1 - (rank - 1) / (N - 1)).
- Illustrative values nothing scores any more go: the night-light clips (the sample reads no
  composite; the GDP proxy stands in) and, where the QS proxy score stands for international
  students, the illustrative student counts (another unit).

    .venv/bin/python scripts/sample_sources.py SOURCE_FACTS_MORE.csv CITY_FACTS.csv   # then: make recordings

Every value keeps its provenance (repository@commit:path, or a page) and vintage. Idempotent.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sample_proxies import FIELDS, READ_FROM, VALUES  # noqa: E402

from tasks.sources.wdi import iso3  # noqa: E402

EDITIONS = ("2019", "2020")

# WDI series of data/sources.yaml -> the facts' indicator
WDI = {
    "physicians_per_1000": "physicians_per_1000",
    "rd_pct_gdp": "rd_spending_pct_gdp",
    "education_pct_gov_exp": "public_education_spending_pct_govt_expenditure",
}
# the curated indicator each series stood in for as a typed proxy
TYPED_FROM_WDI = {"physician_density", "rd_intensity", "education_spending_share"}
GDP_UNITS = {
    "100 million RMB (yi yuan), current prices": "100 million CNY",
    "thousand current USD": "thousand USD",
    "billion EUR, current prices": "billion EUR",
}
# other migrant measures: what each figure is, as the proxy's stands_for
MIGRANT_PROXIES = {
    "migration_background_share": "foreign-born share: the share of residents with a migration background (born abroad, or a parent born abroad)",
    "immigrants_and_descendants_share": "foreign-born share: the share of immigrants and their descendants",
    "foreign_background_share": "foreign-born share: the share of residents of foreign background",
    "foreign_nationals_share": "foreign-born share: the share of foreign nationals (citizenship, not birthplace)",
}
QS_TRANSFORM = "score = 1 - (rank - 1) / (N - 1), N = {n} cities ranked (1 = best becomes 1.0)"


def newest(facts: list[dict], city: str, indicator: str, edition: str, up_to: int, level: str | None = None):
    """The fact of `city` and `indicator` with the newest vintage <= up_to (city level first)."""
    rows = [
        f
        for f in facts
        if f["city_id"] == city
        and f["indicator"] == indicator
        and f["vintage"][:4].isdigit()
        and int(f["vintage"][:4]) <= up_to
        and (level is None or f["level"] == level)
    ]
    order = {"city": 0, "metro": 1, "region": 2, "country": 3}
    rows.sort(key=lambda f: (order.get(f["level"], 9), -int(f["vintage"][:4])))
    return rows[0] if rows else None


def provenance(f: dict) -> str:
    return f"{f['source']}{READ_FROM}{f['provenance'].strip()} ({f['level']} level, {f['unit']}, {f['vintage']})"


def row(
    edition,
    source,
    record,
    city,
    field,
    value,
    status,
    vintage,
    prov,
    stands_for="",
    transform="",
    boundary="",
    unit="",
):
    return {
        "edition": edition,
        "source": source,
        "record": record,
        "city_id": city,
        "field": field,
        "value": f"{float(value):.6g}" if isinstance(value, float) else str(value),
        "status": status,
        "vintage": vintage,
        "provenance": prov,
        "stands_for": stands_for,
        "transform": transform,
        "unit": unit,
        "boundary": boundary,
    }


def wdi_rows(more: list[dict], cities: list[dict]) -> list[dict]:
    """One row per edition, country and series: the facts' country figure whose year the edition's
    policy allows (<= E - 1); the facts hold one year per country (the first non-empty of 2019,
    2018, 2020), so edition 2019 gets the 2018 figures only."""
    out = []
    for edition in EDITIONS:
        seen = set()
        for c in cities:
            three = iso3(c["iso2"]) or c["iso2"]
            for series, indicator in WDI.items():
                f = newest(more, c["city_id"], indicator, edition, int(edition) - 1, level="country")
                if f is None or (three, series) in seen:
                    continue
                seen.add((three, series))
                out.append(
                    row(edition, "wdi", f"wdi:{series}", three, series, f["value"], "real", f["vintage"], provenance(f))
                )
    return out


def curated_rows(rows: list[dict], facts: list[dict]) -> list[dict]:
    """The curated rows of every edition after the city facts went in (rows of the sample's other
    sources unchanged)."""
    out = []
    for r in rows:
        r.setdefault("boundary", "")
        ed, field = r["edition"], r["field"]
        if r["source"] == "night_lights":
            continue  # no composite in the sample: the GDP proxy stands in
        if r["source"] == "curated" and field in TYPED_FROM_WDI and r["status"] == "proxy":
            continue  # the wdi source supplies it (the methodology's proxy)
        if r["source"] == "curated" and field == "gdp":
            continue  # rewritten below
        if r["source"] == "curated" and field == "foreign_born_share":
            f = newest(facts, r["city_id"], "foreign_born_share", ed, int(ed) - 1)
            if f is not None and r["status"] != "real":
                r.update(
                    row(
                        ed, "curated", r["record"], r["city_id"], field, f["value"], "real", f["vintage"], provenance(f)
                    )
                )
                r["boundary"] = f["level"]
            elif r["status"] == "real":
                f = newest(facts, r["city_id"], "foreign_born_share", ed, int(ed) - 1)
                r["boundary"] = f["level"] if f is not None else "city"
            else:
                for indicator, what in MIGRANT_PROXIES.items():
                    f = newest(facts, r["city_id"], indicator, ed, int(ed) - 1)
                    if f is not None:
                        r.update(
                            row(
                                ed,
                                "curated",
                                r["record"],
                                r["city_id"],
                                field,
                                f["value"],
                                "proxy",
                                f["vintage"],
                                provenance(f),
                                stands_for=what,
                                transform="none (a share of residents, in percent)",
                                boundary=f["level"],
                            )
                        )
                        break
        if r["source"] == "curated" and field == "international_students" and ed == "2020":
            f = newest(facts, r["city_id"], "qs_best_student_cities_rank", ed, int(ed) - 1)
            if f is None:
                continue  # another unit than the QS proxy score: not scored, so not kept
            n = int(f["unit"].split("of ")[1].rstrip(")"))
            r.update(
                row(
                    ed,
                    "curated",
                    r["record"],
                    r["city_id"],
                    field,
                    round(1 - (float(f["value"]) - 1) / (n - 1), 4),
                    "proxy",
                    f["vintage"],
                    provenance(f),
                    stands_for="international students: the city's QS Best Student Cities rank",
                    transform=QS_TRANSFORM.format(n=n),
                    boundary="city",
                )
            )
        out.append(r)
    return out


def gdp_rows(facts: list[dict], cities: list[dict]) -> list[dict]:
    """The city's or metro's GDP of the year two before the edition (the newest such when the
    publication has no figure of that year), as published."""
    out = []
    for edition in EDITIONS:
        for c in cities:
            for indicator in ("gdp_nominal_city", "gdp_nominal_metro"):
                f = newest(facts, c["city_id"], indicator, edition, int(edition) - 2)
                if f is not None:
                    out.append(
                        row(
                            edition,
                            "curated",
                            f"curated:report-indicators:{edition}",
                            c["city_id"],
                            "gdp",
                            f["value"],
                            "real",
                            f["vintage"],
                            provenance(f),
                            boundary=f["level"],
                            unit=GDP_UNITS[f["unit"]],
                        )
                    )
                    break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("facts", type=Path, nargs="+", help="CSVs of published figures with provenance")
    args = parser.parse_args()
    facts = []
    for path in args.facts:
        with open(path, encoding="utf-8") as fh:
            facts += [{k: (v or "").strip() for k, v in r.items()} for r in csv.DictReader(fh)]
    missing = [r for r in facts if not r.get("provenance") or not r.get("source")]
    if missing:
        sys.exit(f"{len(missing)} facts without source or provenance (first: {missing[0]})")
    with open(VALUES, encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["source"] != "wdi"]
    with open(ROOT / "data" / "cities.csv", encoding="utf-8") as fh:
        cities = list(csv.DictReader(fh))
    rows = curated_rows(rows, facts) + gdp_rows(facts, cities) + wdi_rows(facts, cities)
    rows.sort(key=lambda r: r["edition"])  # stable: each edition's rows in the order they were
    with open(VALUES, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in FIELDS} for r in rows)
    for ed in EDITIONS:
        these = [r for r in rows if r["edition"] == ed]
        ill = sum(r["status"] == "illustrative" for r in these)
        print(f"edition {ed}: {len(these)} values, {ill} illustrative ({ill / len(these):.1%})")


if __name__ == "__main__":
    main()
