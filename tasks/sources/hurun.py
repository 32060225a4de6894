"""Hurun Global Unicorn Index: the company list, counted per index city (indicator `unicorns`)."""

from __future__ import annotations

import re

import pandas as pd

from ..cities import Registry, normalise_name
from ..errors import SourceError
from ..validate import extra_check
from .base import (
    TIDY_COLUMNS,
    EditionError,
    Request,
    Source,
    SuiteSpec,
    VintagePolicy,
    check_not_blocked,
    html_tree,
    node_text,
    parse_number,
    read_sheet,
    soup,
)

SOURCE = "hurun"

# Column mapping: our field -> header texts the list has used (configurable in sources.yaml)
DEFAULT_COLUMNS = {
    "rank": ["Rank", "排名"],
    "company": ["Company", "Company Name", "Name", "企业名称"],
    "valuation_usd_bn": ["Valuation (US$bn)", "Valuation (USD bn)", "Value (US$bn)", "Valuation"],
    "city": ["Headquarters", "HQ", "City", "Headquarters City", "总部"],
    "country": ["Country", "Country/Region", "国家"],
    "industry": ["Industry", "Sector", "行业"],
}
REQUIRED = ("rank", "company", "valuation_usd_bn", "city")
OUTPUT = ["rank", "company", "valuation_usd_bn", "city", "country", "city_id"]


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    return [Request("hurun-list", cfg["url"])]


def _map_headers(headers: list[str], columns: dict, location: str) -> dict[str, int]:
    norm = [normalise_name(h) for h in headers]
    found = {}
    for field, names in columns.items():
        for n in names:
            if normalise_name(n) in norm:
                found[field] = norm.index(normalise_name(n))
                break
    missing = [f for f in REQUIRED if f not in found]
    if missing:
        raise SourceError(
            SOURCE,
            f"expected columns for {missing} (any of {[columns[m] for m in missing]}), found headers {headers}",
            location=location,
        )
    return found


def _rows_to_frame(
    rows: list[list[str]], headers: list[str], columns: dict, location: str, registry: Registry | None
) -> pd.DataFrame:
    idx = _map_headers(headers, columns, location)
    out = []
    for n, cells in enumerate(rows, start=1):
        if not any(c.strip() for c in cells):
            continue

        def get(f: str, cells: list[str] = cells) -> str:
            return cells[idx[f]].strip() if f in idx and idx[f] < len(cells) else ""

        company = get("company")
        val_text = get("valuation_usd_bn").replace("$", "").replace("US", "").replace("bn", "").strip()
        out.append(
            {
                "rank": parse_number(
                    get("rank").lstrip("#=") or str(n), source=SOURCE, location=location, field_name="rank"
                ),
                "company": company,
                "valuation_usd_bn": parse_number(
                    val_text, source=SOURCE, location=location, field_name=f"valuation of {company}"
                ),
                "city": get("city") or None,  # an empty cell is a missing value, flagged by the suite
                "country": get("country") or None,
            }
        )
    if not out:
        raise SourceError(SOURCE, "the unicorn list has no company rows", location=location)
    df = pd.DataFrame(out)
    df["rank"] = df["rank"].astype("Int64")
    df["city_id"] = [
        match_city(registry, c, k) if registry else None for c, k in zip(df["city"], df["country"], strict=True)
    ]
    return df[OUTPUT]


def parse_list_html(
    body: bytes, url: str, registry: Registry | None = None, columns: dict | None = None
) -> pd.DataFrame:
    columns = columns or DEFAULT_COLUMNS
    doc = html_tree(body, SOURCE, url)
    tables = doc.findall(".//table")
    if not tables:
        check_not_blocked(soup(body, SOURCE, url), SOURCE, url, "a table of unicorn companies")
        raise SourceError(SOURCE, "expected a table of unicorn companies, found no <table>", location=url)
    last_error = None
    frames = []
    for table in tables:  # a list split over several tables (one per page of the article) is read whole
        trs = table.findall(".//tr")
        if not trs:
            continue
        headers = [node_text(c) for c in trs[0].xpath(".//*[self::th or self::td]")]
        try:
            _map_headers(headers, columns, url)
        except SourceError as exc:
            last_error = exc
            continue
        rows = [[node_text(c) for c in tr.findall(".//td")] for tr in trs[1:]]
        frames.append(_rows_to_frame(rows, headers, columns, url, registry))
    if not frames:
        raise last_error or SourceError(SOURCE, "expected a table of unicorn companies with a header row", location=url)
    df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    df.attrs["stated_count"] = stated_count(node_text(doc))
    df.attrs["stated_edition"] = stated_edition(doc)
    df.attrs["tables"] = len(frames)
    return df


def match_city(registry: Registry, city: object, country: object) -> str | None:
    """The index city of a headquarters cell: its name as the registry spells it for Hurun, or a
    "City, Country" cell whose city part does and whose country part is that city's country."""
    if not isinstance(city, str) or not city:  # an empty cell (flagged by the suite)
        return None
    found = registry.match("hurun", city)
    if found or "," not in city:
        return found
    head, tail = (p.strip() for p in city.split(",", 1))
    found = registry.match("hurun", head)
    if found is None:
        return None
    home = normalise_name(str(registry.get(found)["country"]))
    said = {normalise_name(tail), normalise_name(country if isinstance(country, str) else "")}
    return found if home in said or not tail else None


def stated_edition(doc) -> str | None:
    """The list's year from the page heading or title ("Hurun Global Unicorn Index 2020" -> "2020")."""
    for el in doc.xpath("//h1") + doc.xpath("//title"):
        m = re.search(r"unicorn index\s+((?:19|20)\d{2})\b", node_text(el), flags=re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def stated_count(text: str) -> int | None:
    """The number of companies the page says it lists ("586 unicorns"), if it says so."""
    m = re.search(r"(\d[\d,]*)\s+(?:unicorns|companies)\b", text, flags=re.IGNORECASE)
    return int(m.group(1).replace(",", "")) if m else None


def parse_list_tabular(
    body: bytes, location: str, registry: Registry | None = None, columns: dict | None = None
) -> pd.DataFrame:
    """A CSV or XLSX export of the list."""
    columns = columns or DEFAULT_COLUMNS
    kind = "an XLSX workbook" if body[:2] == b"PK" else "a CSV table"
    raw = read_sheet(body, SOURCE, location, f"{kind} of unicorn companies")
    rows = raw.values.tolist()
    headers = [str(h) for h in rows[0]]
    return _rows_to_frame([[str(c) for c in r] for r in rows[1:]], headers, columns, location, registry)


def parse_list(body: bytes, location: str, registry: Registry | None = None, columns: dict | None = None):
    """The list as an HTML page, a CSV or an XLSX export (which one, from the bytes)."""
    if not body.strip():
        raise SourceError(
            SOURCE,
            f"expected the unicorn list (an HTML page, CSV or XLSX), found an empty response ({len(body)} bytes)",
            location=location,
        )
    head = body[:512].lstrip().lower()
    if body[:2] == b"PK" or not (head.startswith(b"<") or b"<html" in head or b"<table" in head):
        return parse_list_tabular(body, location, registry, columns)
    return parse_list_html(body, location, registry, columns)


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    return parse_list(body, req.url, registry, (cfg or {}).get("columns"))


def collapse(before: pd.DataFrame, now: pd.DataFrame, cfg: dict) -> list[str]:
    """The list's companies in the index cities, or its share of matched rows, fell to less than
    `collapse_share` (default one half) of the previous ingest's: a layout change (cells that no
    longer match, a list cut short), not a year of news."""
    share = float(cfg.get("collapse_share", 0.5))
    out = []
    n0, n1 = int(before["city_id"].notna().sum()), int(now["city_id"].notna().sum())
    if n0 and n1 < share * n0:
        out.append(f"companies in the index cities: expected about {n0} (previous ingest), found {n1}")
    r0 = n0 / len(before) if len(before) else 0.0
    r1 = n1 / len(now) if len(now) else 0.0
    if r0 and r1 < share * r0:
        out.append(f"share of rows matched to an index city: expected about {r0:.0%} (previous ingest), found {r1:.0%}")
    return out


def count_per_city(companies: pd.DataFrame, registry: Registry) -> pd.Series:
    counts = companies["city_id"].dropna().value_counts()
    return counts.reindex(registry.ids, fill_value=0).astype(int)


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    req, companies = next(iter(done.items()))
    counts = count_per_city(companies, registry)
    edition = str(cfg.get("edition"))
    return pd.DataFrame(
        [
            (cid, "unicorns", float(n), "companies", edition, registry.get(cid)["hurun_names"].split(";")[0], req.url)
            for cid, n in counts.items()
        ],
        columns=TIDY_COLUMNS,
    )


def unmatched_summary(companies: pd.DataFrame) -> pd.DataFrame:
    """Companies whose city is no index city, counted per city (kept in the snapshot, shown in artifacts)."""
    rest = companies[companies["city_id"].isna()]
    return (
        rest.groupby(["city", "country"], dropna=False)
        .size()
        .rename("companies")
        .reset_index()
        .sort_values("companies", ascending=False)
    )


class Hurun(Source):
    name = SOURCE
    suites = (SuiteSpec("hurun"), SuiteSpec("hurun_companies", table="companies", key_column="company"))
    parse_kinds = {"hurun-list": "Hurun Global Unicorn Index list (HTML, CSV or XLSX)"}
    required = {"url": "the list's page, under editions.<year>.url"}
    sample_fields = {"unicorns": ["unicorns"]}

    def edition_config(self, cfg, edition, cadence):
        """Edition E counts the list of year E; each year's list has its own page (hurun.net article
        ids are opaque), so `editions` maps E to its URL."""
        editions = {str(k): v for k, v in (cfg.get("editions") or {}).items()}
        if edition in editions:
            cfg = {**cfg, **editions[edition]}
        elif "editions" in cfg:
            raise EditionError(
                SOURCE,
                f"no list URL for edition {edition} (editions known: "
                f"{', '.join(sorted(editions)) or 'none'}); add the list's page under "
                f"hurun.editions.{edition}.url",
                location="data/sources.yaml",
            )
        return cfg, VintagePolicy(edition)

    def found_vintage(self, cfg, parsed):
        companies = next(iter(parsed.values()), None)
        stated = companies.attrs.get("stated_edition") if companies is not None else None
        return stated or str(cfg.get("edition"))

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def parse_file(self, kind, body, location, registry):
        return parse_list(body, location, registry)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        companies = next(iter(parsed.values()))
        return {"companies": companies, "unmatched_cities": unmatched_summary(companies)}

    def suite_params(self, cfg, registry):
        return {"companies_max_rows": max(5000, 2 * len(registry.ids))}

    def extra_checks(self, spec, cfg, registry, tidy, extras, previous):
        if spec.table != "companies":
            return []
        companies = extras["companies"]
        stated = companies.attrs.get("stated_count")
        checks = [
            extra_check(
                "company_count_equals_stated_count",
                "error",
                [] if stated in (None, len(companies)) else [f"{len(companies)} rows, the page states {stated}"],
                observed=stated,
            )
        ]
        if previous is not None and previous.has("companies"):
            checks.append(
                extra_check(
                    "matched_companies_not_collapsed",
                    "error",
                    collapse(previous.read("companies"), companies, cfg),
                    column="city_id",
                )
            )
        return checks

    def summary_markdown(self, extras):
        if "unmatched_cities" not in extras:
            return None
        u = extras["unmatched_cities"]
        lines = [
            f"### Hurun companies outside the index cities: {int(u['companies'].sum())} in {len(u)} cities",
            "",
            "| city | country | companies |",
            "|---|---|---|",
        ]
        lines += [f"| {r.city} | {r.country} | {r.companies} |" for r in u.head(50).itertuples()]
        return "\n".join(lines)


SPEC = Hurun()
