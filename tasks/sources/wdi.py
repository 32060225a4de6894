"""World Bank World Development Indicators: country figures that stand in for a city's where the
city has none (physicians, R&D intensity, education spending), from the World Bank's JSON API.

`/v2/country/<ISO3;ISO3...>/indicator/<CODE>?format=json&date=<first>:<last>&per_page=&page=`
answers `[{page, pages, per_page, total, lastupdated}, [rows]]` (an invalid request: a one-element
`[{"message": [...]}]`). One request plan per series, paged until `pages`; the edition policy keeps,
for edition E, each country's newest non-null value of a year <= E - 1 (that year is the value's
vintage); a value older than `max_age` years before E - 1 is used and listed as a vintage fallback.
Each registry city gets its country's figure (tidy indicator: the series' name in the configuration).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import pycountry
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import SourceError
from tasks.registry.cities import Registry
from tasks.sources.base import TIDY_COLUMNS, EditionError, Request, Source, SuiteSpec, VintagePolicy
from tasks.sources.schema import OwnSettings
from tasks.validate import extra_check

SOURCE = "wdi"
ROW_COLUMNS = ["series", "code", "country", "iso3", "year", "value", "unit", "indicator_name", "location"]


@lru_cache(maxsize=512)
def iso3(iso2: str) -> str | None:

    c = pycountry.countries.get(alpha_2=str(iso2).upper())
    return c.alpha_3 if c else None


def countries(registry: Registry) -> list[str]:
    """ISO3 codes of the registry's countries, sorted (an unknown ISO2 code is an error naming the city)."""
    out = set()
    for cid, code in registry.table["iso2"].items():
        three = iso3(code)
        if three is None:
            raise SourceError(SOURCE, f"no ISO 3166 alpha-3 code for the registry's iso2 {code!r}", city=str(cid))
        out.add(three)
    return sorted(out)


def series_of(cfg: dict) -> dict[str, dict]:
    """The series the configuration asks for: name -> {code, unit, bounds}."""
    series = cfg.get("series") or {}
    if not isinstance(series, dict) or not series:
        raise EditionError(SOURCE, "wdi.series names no series (name: {code, unit})", location="data/sources.yaml")
    return {str(k): dict(v) for k, v in series.items()}


def countries_asked(cfg: dict, registry: Registry) -> str:
    """`countries: all` (every country in one answer: the URL does not depend on the registry, so a
    recording serves any city set) or `registry` (the registry's ISO3 codes joined by ';')."""
    how = cfg.get("countries", "all")
    if how == "all":
        return "all"
    if how != "registry":
        raise EditionError(
            SOURCE, f"wdi.countries: expected all or registry, found {how!r}", location="data/sources.yaml"
        )
    return ";".join(countries(registry))


def request(cfg: dict, registry: Registry, name: str, page: int) -> Request:
    s = series_of(cfg)[name]
    url = str(cfg["api_url"]).format(
        countries=countries_asked(cfg, registry),
        code=s["code"],
        first=cfg["first_year"],
        last=cfg["last_year"],
        per_page=int(cfg.get("per_page", 1000)),
        page=page,
    )
    return Request("wdi-indicator", url, meta={"series": name, "page": page})


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    """Page 1 of every series; once it has said how many `pages`, every page."""
    out = []
    for name in series_of(cfg):
        first = request(cfg, registry, name, 1)
        out.append(first)
        if first in done:
            out += [request(cfg, registry, name, p) for p in range(2, int(done[first].attrs["pages"]) + 1)]
    return out


def parse_page(body: bytes, location: str, series: str = "", code: str = "", unit: str = "") -> pd.DataFrame:
    """One answer of the API: its rows (ROW_COLUMNS) and, in attrs, page, pages, per_page, total. The
    error envelope, a body that is not the API's JSON, a row of another series or another unit than
    configured are errors naming the page."""
    try:
        doc = json.loads(body)
    except ValueError:
        head = body[:200].lstrip()[:1]
        what = "an HTML page" if head == b"<" else "text that is not JSON"
        raise SourceError(
            SOURCE, f"expected the API's JSON [metadata, rows], found {what}", location=location
        ) from None
    if isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict) and "message" in doc[0]:
        msgs = doc[0]["message"] or [{}]
        said = "; ".join(f"{m.get('id', '?')} {m.get('key', '')}: {m.get('value', '')}".strip() for m in msgs)
        raise SourceError(SOURCE, f"the API refused the request ({said})", location=location)
    if not (isinstance(doc, list) and len(doc) == 2 and isinstance(doc[0], dict)):
        raise SourceError(
            SOURCE, "expected the API's JSON [metadata, rows], found another structure", location=location
        )
    meta, rows = doc[0], doc[1] or []
    try:
        attrs = {k: int(meta[k]) for k in ("page", "pages", "per_page", "total")}
    except (KeyError, TypeError, ValueError):
        raise SourceError(
            SOURCE, f"expected page, pages, per_page and total in the metadata, found {sorted(meta)}", location=location
        ) from None
    out = []
    for n, r in enumerate(rows, start=1):
        try:
            row_code, name = r["indicator"]["id"], str(r["indicator"]["value"])
            three, year, value = r["countryiso3code"], str(r["date"]), r["value"]
        except (KeyError, TypeError):
            raise SourceError(
                SOURCE, f"row {n}: expected indicator, countryiso3code, date and value", location=location
            ) from None
        if code and row_code != code:
            raise SourceError(
                SOURCE, f"row {n}: series {row_code}, expected {code}", location=location, field="indicator"
            )
        stated = str(r.get("unit") or "")
        if unit and (unit not in name and unit not in stated):
            raise SourceError(
                SOURCE,
                f"row {n}: {row_code} is {name!r} (unit {stated or 'not stated'}), expected the unit {unit!r}: "
                "a figure of another unit is never used",
                location=location,
                field=row_code,
            )
        out.append(
            {
                "series": series,
                "code": row_code,
                "country": str((r.get("country") or {}).get("value", "")),
                "iso3": three,
                "year": year,
                "value": None if value is None else float(value),
                "unit": unit or stated,
                "indicator_name": name,
                "location": location,
            }
        )
    df = pd.DataFrame(out, columns=ROW_COLUMNS)
    df.attrs.update(attrs)
    return df


INDICATOR_NAMES = {  # the API's names of the series (they state the unit the configuration checks)
    "SH.MED.PHYS.ZS": "Physicians (per 1,000 people)",
    "GB.XPD.RSDV.GD.ZS": "Research and development expenditure (% of GDP)",
    "SE.XPD.TOTL.GB.ZS": "Government expenditure on education, total (% of government expenditure)",
}


def render_answers(
    cfg: dict, registry: Registry, values: dict, per_page: int | None = None
) -> dict[str, tuple[bytes, str]]:
    """The API's answers for the series of `cfg` (resolved for an edition), as url -> (body, type):
    `values` maps (series name, ISO3) to [(year, value)]; rows come newest year first, as the API
    orders them. For recordings and tests."""

    out = {}
    per_page = per_page or int(cfg.get("per_page", 1000))
    names, iso2_of = {}, {}
    for code in registry.table["iso2"]:
        three = iso3(code)
        names[three] = getattr(pycountry.countries.get(alpha_3=three), "name", three)
        iso2_of[three] = str(code)
    for name, s in series_of(cfg).items():
        rows = [
            {
                "indicator": {"id": s["code"], "value": INDICATOR_NAMES.get(s["code"], s["code"])},
                "country": {"id": iso2_of.get(three, ""), "value": names.get(three, three)},
                "countryiso3code": three,
                "date": str(year),
                "value": value,
                "unit": "",
                "obs_status": "",
                "decimal": 1,
            }
            for three in countries(registry)
            for year, value in sorted(values.get((name, three), []), key=lambda yv: -int(yv[0]))
        ]
        pages = max(1, -(-len(rows) // per_page))
        for page in range(1, pages + 1):
            meta = {
                "page": page,
                "pages": pages,
                "per_page": per_page,
                "total": len(rows),
                "sourceid": "2",
                "lastupdated": "2026-07-13",
            }
            chunk = rows[(page - 1) * per_page : page * per_page]
            body = json.dumps([meta, chunk or None], ensure_ascii=False).encode()
            url = request({**cfg, "per_page": per_page}, registry, name, page).url
            out[url] = (body, "application/json;charset=utf-8")
    return out


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    cfg = cfg or {}
    name = req.meta.get("series", "")
    s = (cfg.get("series") or {}).get(name) or {}
    return parse_page(body, req.url, name, s.get("code", ""), s.get("unit", ""))


def parse_response(body: bytes, location: str) -> pd.DataFrame:
    """A saved answer, or a JSON array of them (`talent-index parse wdi FILE`), checked as a download is."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None  # parse_page says what it found instead
    if isinstance(doc, list) and doc and all(isinstance(p, list) for p in doc):
        frames = [parse_page(json.dumps(p).encode(), f"{location} (answer {n})") for n, p in enumerate(doc, 1)]
        return combine(frames, location)
    return combine([parse_page(body, location)], location)


def combine(pages: list[pd.DataFrame], location: str) -> pd.DataFrame:
    """The pages of one series together: one `pages` and `total` on every page, pages 1..pages once
    each, the rows adding up to `total`."""
    pages = sorted(pages, key=lambda p: p.attrs["page"])
    first = pages[0].attrs
    numbers = [p.attrs["page"] for p in pages]
    if numbers != list(range(1, first["pages"] + 1)) and not (first["total"] == 0 and numbers == [1]):
        raise SourceError(SOURCE, f"expected pages 1 to {first['pages']}, found {numbers}", location=location)
    for p in pages[1:]:
        if (p.attrs["pages"], p.attrs["total"]) != (first["pages"], first["total"]):
            raise SourceError(
                SOURCE,
                f"page {p.attrs['page']} says {p.attrs['pages']} pages and {p.attrs['total']} rows, page 1 "
                f"{first['pages']} and {first['total']} (the answer changed while paging)",
                location=location,
            )
    df = pd.concat(pages, ignore_index=True)
    if len(df) != first["total"]:
        raise SourceError(
            SOURCE, f"the pages hold {len(df)} rows, the API's total is {first['total']}", location=location
        )
    return df


def rows_of(parsed: dict) -> pd.DataFrame:
    """Every series' rows, each series' pages checked together."""
    by_series: dict[str, list] = {}
    for req, df in parsed.items():
        if req.kind == "wdi-indicator":
            by_series.setdefault(req.meta["series"], []).append(df)
    frames = [combine(pages, pages[0].attrs.get("location", s)) for s, pages in by_series.items()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_COLUMNS)


def newest_values(rows: pd.DataFrame, last_year: int) -> pd.DataFrame:
    """Per series and country: the newest non-null value of a year <= last_year."""
    ok = rows[rows["value"].notna() & (pd.to_numeric(rows["year"], errors="coerce") <= last_year)]
    ok = ok.assign(y=pd.to_numeric(ok["year"])).sort_values(["series", "iso3", "y"])
    return ok.drop_duplicates(["series", "iso3"], keep="last").drop(columns="y").reset_index(drop=True)


def tidy(cfg: dict, registry: Registry, parsed: dict) -> pd.DataFrame:
    """One row per registry city and series: its country's newest value (edition: the value's year).
    Cities in registry order, series in configuration order."""
    values = newest_values(rows_of(parsed), int(cfg["last_year"]))
    codes = registry.table["iso2"]
    three = codes.map({c: iso3(c) for c in codes.unique()})
    names = list(series_of(cfg))
    pairs = pd.DataFrame(
        {
            "city_id": np.repeat(registry.table.index.to_numpy(), len(names)),
            "iso3": np.repeat(three.to_numpy(), len(names)),
            "series": np.tile(np.asarray(names, dtype=object), len(codes)),
        }
    )
    both = pairs.merge(values, on=["series", "iso3"], how="inner", sort=False)
    out = pd.DataFrame(
        {
            "city_id": both["city_id"],
            "indicator": both["series"],
            "value": both["value"].astype(float),
            "unit": both["unit"],
            "edition": both["year"].astype(str),
            "name_in_source": both["country"],
            "location": both["location"],
        }
    )
    return out[TIDY_COLUMNS].reset_index(drop=True)


class WdiSeries(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    unit: str
    bounds: tuple[int | float, int | float]  # lowest and highest value accepted


class WdiSettings(OwnSettings):
    countries: Literal["all", "registry"] = "all"
    api_url: str
    per_page: int = Field(default=1000, ge=1)
    years_back: int = Field(default=12, ge=1)
    max_age: int = Field(default=5, ge=0)
    series: dict[str, WdiSeries]


class WDI(Source):
    name = SOURCE
    settings_model = WdiSettings
    feeds_indicators = False  # its figures reach the index as proxies (the methodology's `proxy:`)
    suites = (SuiteSpec("wdi"),)
    parse_kinds = {"wdi": "World Bank API answer (one page, or a JSON array of pages)"}
    required = {"series": "the series to read: name -> {code, unit}"}

    def edition_config(self, cfg, edition, cadence):
        """Edition E: each country's newest non-null value of a year <= E - 1 from the years
        E - 1 - `years_back` .. E - 1; older than E - 1 - `max_age` is a vintage fallback."""
        try:
            last = int(edition) - 1
        except ValueError:
            raise EditionError(SOURCE, f"edition {edition!r} is not a year", location="data/sources.yaml") from None
        first = last - int(cfg.get("years_back", 12))
        return {**cfg, "first_year": first, "last_year": last}, VintagePolicy(
            str(last), rule="at_most", note="each country's newest value up to the year before the edition"
        )

    def found_vintage(self, cfg, parsed):
        values = newest_values(rows_of(parsed), int(cfg["last_year"]))
        return str(int(pd.to_numeric(values["year"]).max())) if len(values) else None

    def fallback_values(self, cfg, parsed):
        values = newest_values(rows_of(parsed), int(cfg["last_year"]))
        oldest = int(cfg["last_year"]) - int(cfg.get("max_age", 5))
        old = values[pd.to_numeric(values["year"]) < oldest]
        if old.empty:
            return []
        return [
            {
                "reason": f"{len(old)} country figures older than {oldest} (max_age {cfg.get('max_age', 5)})",
                "vintage": str(old["year"].min()),
                "edition_used": str(old["year"].min()),
                "values": [f"{r.iso3}:{r.series} ({r.year})" for r in old.itertuples()],
            }
        ]

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def parse_file(self, kind, body, location, registry):
        return parse_response(body, location)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        return {"country_values": newest_values(rows_of(parsed), int(cfg["last_year"]))}

    def extra_checks(self, spec, cfg, registry, tidy, extras, previous):
        values = extras["country_values"]
        outside = []
        for name, s in series_of(cfg).items():
            lo, hi = s.get("bounds", [0, float("inf")])
            bad = values[(values["series"] == name) & ~values["value"].between(lo, hi)]
            outside += [f"{r.iso3}:{name} {r.value:g} ({r.year}) outside [{lo}, {hi}]" for r in bad.itertuples()]
        missing = [
            f"{name}: {three}"
            for name in series_of(cfg)
            for three in countries(registry)
            if not ((values["series"] == name) & (values["iso3"] == three)).any()
        ]
        empty = [
            f"{name}: no value for any country up to {cfg['last_year']}"
            for name in series_of(cfg)
            if not (values["series"] == name).any()
        ]
        return [
            extra_check("value_within_configured_bounds", "error", outside, column="value"),
            extra_check("every_series_has_values", "warning", empty, column="series"),
            extra_check("a_value_for_every_country", "warning", missing, column="iso3"),
        ]


SPEC = WDI()
