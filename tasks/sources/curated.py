"""Indicators typed in from reports (CASS, INSEAD GTCI, budgets, NYC Global City Data, WCCF).

A curated, versioned CSV in `data/curated/` with provenance for every value: publication, edition,
table or page, unit, date entered, and whether the value is real, a proxy or illustrative. A proxy
(a published figure of another scope or definition, e.g. a country's value used for its city) says
in `stands_for` what it stands in for and in `transform` how it was converted; both columns are
optional for tables without proxies.
"""

from __future__ import annotations

import io

import pandas as pd

from tasks.errors import SourceError
from tasks.registry.cities import Registry
from tasks.settings import local_path
from tasks.sources.base import STATUS_COLUMNS, TIDY_COLUMNS, Request, Source, SuiteSpec, VintagePolicy
from tasks.sources.schema import OwnSettings
from tasks.validate import extra_check

SOURCE = "curated"
COLUMNS = [
    "city_id",
    "indicator",
    "value",
    "unit",
    "publication",
    "edition",
    "table_or_page",
    "date_entered",
    "status",
    "note",
]
# carried_from: the edition whose table a row was copied from; boundary: what the figure covers
# (city, metro, region, country), named where a proxy or the report says what it stands for
OPTIONAL = ["stands_for", "transform", "carried_from", "boundary"]
# missing: no figure typed (the row keeps the table complete; the indicator's proxy source or the
# missing-values policy applies)
STATUSES = ("real", "proxy", "illustrative", "missing")
INDICATORS = [
    "economic_sustainability",
    "rd_intensity",
    "education_spending_share",
    "foreign_born_share",
    "international_students",
    "social_security_index",
    "physician_density",
    "gdp",  # not an index indicator: the figure the night-light indicator's proxy reads
]


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    return [Request("curated-table", cfg["url"])]


def parse_table(body: bytes, location: str) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001
        raise SourceError(SOURCE, f"expected a CSV table, could not read it: {exc}", location=location) from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise SourceError(SOURCE, f"expected columns {missing}, found {list(df.columns)}", location=location)
    dup = df[df.duplicated(["city_id", "indicator"], keep=False)]
    if len(dup):
        r = dup.iloc[0]
        lines = [str(i + 2) for i in dup.index[(dup["city_id"] == r["city_id"]) & (dup["indicator"] == r["indicator"])]]
        raise SourceError(
            SOURCE,
            f"city {r['city_id']}, indicator {r['indicator']} appears on lines {', '.join(lines)}: expected one value "
            f"per city and indicator ({len(dup)} duplicated rows in all)",
            location=location,
            city=r["city_id"],
            field=r["indicator"],
        )
    values = pd.to_numeric(df["value"], errors="coerce")
    bad = df[values.isna() & (df["value"].str.strip() != "")]
    if len(bad):
        r = bad.iloc[0]
        raise SourceError(
            SOURCE,
            f"expected a number, found {r['value']!r}",
            location=location,
            city=r["city_id"],
            field=r["indicator"],
        )
    df["value"] = values
    for col in OPTIONAL:
        if col not in df.columns:
            df[col] = ""
    unexplained = df[(df["status"] == "proxy") & (df["stands_for"].str.strip() == "")]
    if len(unexplained):
        r = unexplained.iloc[0]
        raise SourceError(
            SOURCE,
            f"line {unexplained.index[0] + 2}: a proxy value without `stands_for`: expected what the figure stands "
            "in for (e.g. 'the country's figure for its city')",
            location=location,
            city=r["city_id"],
            field=r["indicator"],
        )
    return df[COLUMNS + OPTIONAL]


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    return parse_table(body, req.url)


CARRIED_NOTE = "carried forward from the edition {edition} table: update the value or confirm it and clear carried_from"


def carry_forward(table: pd.DataFrame, from_edition: str) -> pd.DataFrame:
    """The rows of an edition's table (read as text, so that every cell is copied as typed) as the
    template of a newer one: every value kept with its own
    publication and vintage, marked `carried_from` (a row already carried keeps the edition it
    first came from) so that a release built on it lists each as a vintage fallback."""
    out = table.copy()
    for col in OPTIONAL:
        if col not in out.columns:
            out[col] = ""
    fresh = out["carried_from"].str.strip() == ""
    out.loc[fresh, "carried_from"] = str(from_edition)
    out["note"] = [
        n if n.startswith("carried forward") else (CARRIED_NOTE.format(edition=c) + (f"; {n}" if n else ""))
        for n, c in zip(out["note"], out["carried_from"], strict=True)
    ]
    return out


def newest_table_before(raw: dict, edition: str, years_back: int = 10) -> tuple[str, str]:
    """(edition, path) of the newest curated table of an edition before `edition` that exists, its
    path from the configuration's `url` (a local `file:` table)."""
    tried = []
    for year in range(int(edition) - 1, int(edition) - 1 - years_back, -1):
        url = str(raw["url"]).format(edition=year)
        if not url.startswith("file:"):
            raise SourceError(SOURCE, f"the curated table is not a local file ({url}): make its template by hand")
        path = local_path(url)
        if path.is_file():
            return str(year), str(path)
        tried.append(str(path))
    raise SourceError(
        SOURCE, f"no curated table of the {years_back} editions before {edition} (looked for {tried[0]} … {tried[-1]})"
    )


def carried_groups(table: pd.DataFrame, registry: Registry | None = None) -> list[dict]:
    """The carried rows of a table by the edition they came from: {reason, vintage (the newest
    publication year among them), edition_used, values ["city:indicator", ...]}."""
    rows = table[table["carried_from"].str.strip() != ""]
    if registry is not None:
        rows = rows[rows["city_id"].isin(registry.ids)]
    out = []
    for edition, g in rows.groupby("carried_from", sort=True):
        years = pd.to_numeric(g["edition"].str[:4], errors="coerce").dropna()
        values = [f"{r.city_id}:{r.indicator}" for r in g.itertuples()]
        out.append(
            {
                "reason": f"{len(values)} values carried forward from the edition {edition} table",
                "vintage": str(int(years.max())) if len(years) else "",
                "edition_used": str(edition),
                "values": values,
            }
        )
    return out


UNITS = {
    "economic_sustainability": "index (0-1)",
    "rd_intensity": "% of GDP",
    "education_spending_share": "percent",
    "foreign_born_share": "percent",
    "international_students": "students",
    "social_security_index": "score (0-100)",
    "physician_density": "per 10,000 people",
    # an amount of money as published: read with its unit and converted at the methodology's
    # exchange rates where a proxy uses it
    "gdp": ("100 million CNY", "thousand USD", "billion EUR", "billion USD"),
}


def unit_mismatches(table: pd.DataFrame) -> list[str]:
    """Rows whose unit is not the unit of their indicator (e.g. a share typed in as a fraction).
    Each (indicator, unit) pair is judged once, not each row (100,000 cities: 1.1 million rows)."""

    def allowed(indicator, unit) -> bool:
        expected = UNITS.get(indicator)
        return unit in expected if isinstance(expected, tuple) else unit == expected

    keys = pd.MultiIndex.from_arrays([table["indicator"], table["unit"]])
    pairs = keys.unique()
    bad_pairs = pairs[[not allowed(i, u) for i, u in pairs]]
    if bad_pairs.empty:
        return []
    bad = table[keys.isin(bad_pairs)]
    return [
        f"{r.city_id}:{r.indicator} unit {r.unit!r} (expected {UNITS.get(r.indicator)!r})" for r in bad.itertuples()
    ]


def missing_mismatches(table: pd.DataFrame) -> list[str]:
    """Rows whose status says missing but hold a value, or hold no value without saying missing."""
    empty = table["value"].isna()
    return [
        f"{r.city_id}:{r.indicator} status {r.status!r} with {'no value' if pd.isna(r.value) else 'a value'}"
        for r in table[empty != (table["status"] == "missing")].itertuples()
    ]


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    req, table = next(iter(done.items()))
    t = table[table["city_id"].isin(registry.ids)].copy()
    names = registry.table["name_en"]
    return pd.DataFrame(
        {
            "city_id": t["city_id"],
            "indicator": t["indicator"],
            "value": t["value"].astype(float),
            "unit": t["unit"],
            "edition": t["edition"],
            "name_in_source": t["city_id"].map(names),
            "location": req.url,
            "status": t["status"],
            "stands_for": t["stands_for"],
            "transform": t["transform"],
            "boundary": t["boundary"],
        }
    )[[*TIDY_COLUMNS, *STATUS_COLUMNS, "boundary"]].reset_index(drop=True)


class CuratedSettings(OwnSettings):
    url: str  # the curated table of an edition ({edition} filled in)


class Curated(Source):
    name = SOURCE
    settings_model = CuratedSettings
    suites = (SuiteSpec("curated"), SuiteSpec("curated_table", table="table"))
    parse_kinds = {"curated": "curated table of report-sourced indicators (CSV)"}
    required = {"url": "the curated table, file:PATH or https:..., '{edition}' filled with the edition"}
    sample_fields = {i: [i] for i in INDICATORS}

    def edition_config(self, cfg, edition, cadence):
        """Edition E reads the curated file of E (`url` may hold "{edition}"); every value in it must
        come from a publication of year E or earlier."""
        return {**cfg, "url": str(cfg["url"]).format(edition=edition)}, VintagePolicy(
            edition, rule="at_most", note="publications up to the edition's year"
        )

    def found_vintage(self, cfg, parsed):
        table = next(iter(parsed.values()), None)
        if table is None or table.empty:
            return None
        years = pd.to_numeric(table["edition"].str[:4], errors="coerce").dropna()
        return str(int(years.max())) if len(years) else None

    def missing_file_hint(self, cfg):
        path = str(cfg["url"]).removeprefix("file:")
        return (
            f"start it from the newest curated table with `talent-index curated template --edition {cfg['edition']} "
            f"-o {path}`, update the values you can, then `talent-index curated check {path}`"
        )

    def fallback_values(self, cfg, parsed):
        table = next(iter(parsed.values()), None)
        return carried_groups(table) if table is not None else []

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def parse_file(self, kind, body, location, registry):
        return parse_table(body, location)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        return {"table": next(iter(parsed.values()))}

    def suite_params(self, cfg, registry):
        return {"expected_rows": len(registry.ids) * len(INDICATORS)}

    def template(self, raw: dict, edition: str, read) -> tuple[str, str, pd.DataFrame]:
        """(edition, path, rows) of the newest table before `edition`, every row carried forward as
        the template of `edition`'s table (`talent-index curated template`); `read(path) -> bytes`
        reads a file. A table that does not pass its own checks is not carried forward."""
        from_edition, source_path = newest_table_before(raw, edition)
        body = read(source_path)
        parse_table(body, source_path)
        as_typed = pd.read_csv(io.BytesIO(body), dtype=str, keep_default_na=False)
        return from_edition, source_path, carry_forward(as_typed, from_edition)

    def extra_checks(self, spec, cfg, registry, tidy, extras, previous):
        if spec.table != "table":
            return []
        return [
            extra_check("unit_matches_indicator", "error", unit_mismatches(extras["table"]), column="unit"),
            extra_check("missing_rows_hold_no_value", "error", missing_mismatches(extras["table"]), column="status"),
        ]


SPEC = Curated()
