"""Numbeo: ranking tables, city quality-of-life pages (fallback) and city price pages.

Supplies 8 indicators: pollution, climate, cost of living, commute, house price (property price to
income), safety (from a ranking table or a city page) and monthly income and rent burden (from the
city cost-of-living page, all cities in one display currency).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from typing import Literal
from urllib.parse import parse_qs, quote, urlsplit

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, StrictBool

from tasks.errors import SourceError
from tasks.registry.build import BuildContext, NewCity, ascii_key
from tasks.registry.cities import Listed, Registry, normalise_name
from tasks.sources.base import (
    TIDY_COLUMNS,
    EditionError,
    Request,
    Source,
    SuiteSpec,
    VintagePolicy,
    check_not_blocked,
    has_class,
    html_tree,
    node_text,
    parse_number,
    snake,
    soup,
)
from tasks.sources.schema import OwnSettings
from tasks.validate import extra_check

SOURCE = "numbeo"

# indicator id -> column of the quality-of-life ranking / city page
INDEX_COLUMNS = {
    "pollution_index": "pollution_index",
    "climate_index": "climate_index",
    "cost_of_living_index": "cost_of_living_index",
    "commute_index": "traffic_commute_time_index",
    "house_price_index": "property_price_to_income_ratio",
    "safety_index": "safety_index",
}
CITY_PAGE_INDICES = [
    "purchasing_power_index",
    "safety_index",
    "health_care_index",
    "climate_index",
    "cost_of_living_index",
    "property_price_to_income_ratio",
    "traffic_commute_time_index",
    "pollution_index",
]
# Labels Numbeo has used for the same price item (renamed over the years): normalised -> item id
PRICE_ALIASES = {
    "average monthly net salary (after tax)": "monthly_net_salary",
    "average monthly net salary, after tax": "monthly_net_salary",
    "average monthly net salary": "monthly_net_salary",
    "apartment (1 bedroom) in city centre": "rent_1br_centre",
    "1 bedroom apartment in city centre": "rent_1br_centre",
    "apartment (1 bedroom) outside of centre": "rent_1br_outside",
    "1 bedroom apartment outside of city centre": "rent_1br_outside",
    "1 bedroom apartment outside of centre": "rent_1br_outside",
}
REQUIRED_PRICES = ("monthly_net_salary", "rent_1br_centre")
CURRENCY_SYMBOLS = {
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "CHF": "CHF",
    "kr": "SEK",
    "¥": "CNY",
    "C$": "CAD",
    "S$": "SGD",
    "A$": "AUD",
}


# ----------------------------------------------------------------------------- URLs
def ranking_url(cfg: dict) -> str:
    base = cfg.get("base_url", "https://www.numbeo.com").rstrip("/")
    section = cfg.get("ranking_section", "quality-of-life")
    title = str(cfg.get("ranking_title", cfg.get("edition", "current")))
    if title == "current":
        return f"{base}/{section}/rankings_current.jsp"
    return f"{base}/{section}/rankings.jsp?title={quote(title)}"


def city_page_url(cfg: dict, slug: str) -> str:
    return f"{cfg.get('base_url', 'https://www.numbeo.com').rstrip('/')}/quality-of-life/in/{quote(slug)}"


def prices_url(cfg: dict, slug: str) -> str:
    cur = cfg.get("display_currency", "USD")
    return f"{cfg.get('base_url', 'https://www.numbeo.com').rstrip('/')}/cost-of-living/in/{quote(slug)}?displayCurrency={cur}"


API_INDEX_FIELDS = {  # API field -> the column name of the ranking / city page
    "pollution_index": "pollution_index",
    "climate_index": "climate_index",
    "cpi_index": "cost_of_living_index",
    "traffic_time_index": "traffic_commute_time_index",
    "property_price_to_income_ratio": "property_price_to_income_ratio",
    "safety_index": "safety_index",
}


def api_plan(cfg: dict, registry: Registry) -> list[Request]:
    """Official API (paid key from NUMBEO_API_KEY): two requests per city. The key stays a
    `${NUMBEO_API_KEY}` placeholder in every stored URL; the fetcher fills it in at request time."""
    base = cfg.get("api", {}).get("base_url", "https://www.numbeo.com/api").rstrip("/")
    cur = cfg.get("display_currency", "USD")
    reqs = []
    for cid, row in registry.table.iterrows():
        q = quote(row["numbeo_name"])
        reqs.append(Request("numbeo-api-indices", f"{base}/indices?api_key=${{NUMBEO_API_KEY}}&query={q}", cid))
        reqs.append(
            Request(
                "numbeo-api-prices", f"{base}/city_prices?api_key=${{NUMBEO_API_KEY}}&query={q}&currency={cur}", cid
            )
        )
    return reqs


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    """With `api.enabled`, the official API. Otherwise first the ranking page; then a city page for
    every registry city the ranking lacks, and a price page for every city (ranking pages serve all
    cities in one request)."""
    if cfg.get("api", {}).get("enabled"):
        return api_plan(cfg, registry)
    rank_req = Request("numbeo-rankings", ranking_url(cfg))
    if rank_req not in done:
        return [rank_req]
    ranking = done[rank_req]
    needed = list(INDEX_COLUMNS.values())
    present = set(ranking.dropna(subset=["city_id", *needed])["city_id"])
    reqs = []
    table = registry.table
    for cid, slug in zip(table.index, table["numbeo_slug"], strict=True):
        if cid not in present:
            reqs.append(Request("numbeo-city-indices", city_page_url(cfg, slug), cid))
        reqs.append(Request("numbeo-city-prices", prices_url(cfg, slug), cid))
    return reqs


# ----------------------------------------------------------------------------- parsers
# The columns each ranking section publishes (SOURCES.md), and the words of its page title
SECTIONS = {
    "quality-of-life": (
        "Quality of Life Index by City",
        [
            "Quality of Life Index",
            "Purchasing Power Index",
            "Safety Index",
            "Health Care Index",
            "Cost of Living Index",
            "Property Price to Income Ratio",
            "Traffic Commute Time Index",
            "Pollution Index",
            "Climate Index",
        ],
    ),
    "cost-of-living": (
        "Cost of Living Index by City",
        [
            "Cost of Living Index",
            "Rent Index",
            "Cost of Living Plus Rent Index",
            "Groceries Index",
            "Restaurant Price Index",
            "Local Purchasing Power Index",
        ],
    ),
    "pollution": ("Pollution Index by City", ["Pollution Index", "Exp Pollution Index"]),
    "crime": ("Crime Index by City", ["Crime Index", "Safety Index"]),
}


def section_of_url(url: str) -> str | None:
    path = urlsplit(url).path.strip("/").split("/")
    return path[0] if path and path[0] in SECTIONS else None


def section_of_title(doc) -> tuple[str | None, str]:
    """(the section a page's heading or title names, that text)."""
    texts = [node_text(h) for h in doc.xpath("//h1")] + [node_text(t) for t in doc.xpath("//title")]
    for text in texts:
        for section, (words, _) in SECTIONS.items():
            if words.lower() in text.lower():
                return section, text
    return None, texts[0] if texts else ""


def parse_rankings(
    body: bytes,
    url: str,
    registry: Registry | None = None,
    required: tuple[str, ...] = ("City",),
    section: str | None = None,
) -> pd.DataFrame:
    """A ranking page -> rank, city, city_id, then one column per header (snake_case).

    The section (from `section`, the URL's path, or the page's title) names the columns the page
    must have: a renamed or missing one is an error naming it, and a page of another section (a
    cost-of-living ranking where the quality-of-life one belongs) is refused."""
    doc = html_tree(body, SOURCE, url)
    expected = section or section_of_url(url)
    stated, title = section_of_title(doc)
    if expected and stated and stated != expected:
        raise SourceError(
            SOURCE, f"expected the {expected} ranking, found the {stated} ranking (title {title!r})", location=url
        )
    section = expected or stated
    required = tuple(required) + tuple(SECTIONS[section][1] if section else ())
    table = next(iter(doc.xpath('//table[@id="t2"]')), None)
    if table is None:
        page = soup(body, SOURCE, url)
        check_not_blocked(page, SOURCE, url, 'a ranking table <table id="t2">')
        found = [t.get("id") or ".".join(t.get_attribute_list("class")) or "(no id)" for t in page.find_all("table")]
        raise SourceError(SOURCE, f'expected a ranking table <table id="t2">, found tables {found}', location=url)
    thead = table.find(".//thead")
    header_cells = thead.findall(".//th") if thead is not None else table.find(".//tr").findall(".//th")
    headers = [node_text(th) for th in header_cells]
    norm = [h.lower() for h in headers]
    for req in required:
        if req.lower() not in norm:
            known = {r.lower() for r in required} | {"rank"}
            unknown = [h for h in headers if h.lower() not in known]
            what = f" ({section} ranking)" if section else ""
            raise SourceError(
                SOURCE,
                f"expected a column headed {req!r}{what}, found headers {headers}"
                + (f"; not expected: {unknown}" if unknown else ""),
                location=url,
            )
    city_col = norm.index("city")
    value_cols = [(i, h, snake(h)) for i, h in enumerate(headers) if norm[i] not in ("rank", "city")]
    tbody = table.find(".//tbody")
    body_rows = tbody.findall(".//tr") if tbody is not None else table.findall(".//tr")[1:]
    records = []
    rank = 0
    for tr in body_rows:
        cells = tr.findall(".//td")
        if not cells:
            continue
        if len(cells) != len(headers):
            raise SourceError(
                SOURCE, f"row {rank + 1} has {len(cells)} cells, the header has {len(headers)}", location=url
            )
        rank += 1  # the Rank cell is empty in the HTML (filled by a script): rank is the row order
        city = node_text(cells[city_col])
        rec = {"rank": rank, "city": city}
        for i, h, key in value_cols:
            rec[key] = parse_number(node_text(cells[i]), source=SOURCE, location=url, city=city, field_name=h)
        records.append(rec)
    if not records:
        raise SourceError(SOURCE, "the ranking table has no rows", location=url)
    df = pd.DataFrame(records)
    df.attrs["stated_edition"] = stated_edition(doc)
    reg = registry
    df.insert(2, "city_id", [reg.match(SPEC.name_column, c) if reg else None for c in df["city"]])
    return df


_EDITION_IN_TITLE = re.compile(r"\b((?:19|20)\d{2})(\s*(?:-mid|mid-year))?\b", re.IGNORECASE)


def stated_edition(doc) -> str | None:
    """The edition a ranking page states in its heading or title ("... by City 2020" -> "2020",
    "2020 Mid-Year" -> "2020-mid"), or None."""
    for text in [node_text(h) for h in doc.xpath("//h1")] + [node_text(t) for t in doc.xpath("//title")]:
        m = _EDITION_IN_TITLE.search(text)
        if m:
            return m.group(1) + ("-mid" if m.group(2) else "")
    return None


def parse_city_indices(body: bytes, url: str) -> pd.DataFrame:
    """A /quality-of-life/in/<City> page -> indicator, value (the sub-indices of the NEXT table)."""
    doc = html_tree(body, SOURCE, url)
    main = next(iter(doc.xpath(f"//table[{has_class('table_indices')}]")), None)
    if main is None:
        check_not_blocked(
            soup(body, SOURCE, url), SOURCE, url, 'a quality-of-life page with <table class="table_indices">'
        )
        raise SourceError(
            SOURCE, 'expected <table class="table_indices"> (the quality-of-life index), not found', location=url
        )
    # the next table in document order, a nested one first (BeautifulSoup's find_next)
    sub = next(iter(main.xpath("descendant::table | following::table")), None)
    if sub is None:
        raise SourceError(SOURCE, "expected the table of sub-indices after table_indices, found none", location=url)
    values = {}
    for tr in sub.iter("tr"):
        cells = tr.findall(".//td")
        if len(cells) < 2:
            continue
        label = node_text(cells[0])
        values[snake(label)] = parse_number(node_text(cells[1]), source=SOURCE, location=url, field_name=label)
    missing = [k for k in CITY_PAGE_INDICES if k not in values]
    if missing:
        raise SourceError(
            SOURCE, f"expected sub-indices {missing} on the city page, found {sorted(values)}", location=url
        )
    return pd.DataFrame({"indicator": CITY_PAGE_INDICES, "value": [values[k] for k in CITY_PAGE_INDICES]})


def _split_price(text: str, url: str, label: str) -> tuple[float, str]:
    t = text.replace("\xa0", " ").strip()
    if t in ("?", "", "-"):
        return np.nan, ""
    num, _, cur = t.partition(" ")
    value = parse_number(num, source=SOURCE, location=url, field_name=label)
    cur = cur.strip()
    return value, CURRENCY_SYMBOLS.get(cur, cur)


PRICE_COLUMNS = ["item", "value", "currency"]


@functools.lru_cache(maxsize=4096)
def price_key(label: str) -> str | None:
    """The canonical key of a price row's label (None: a row the index does not read). Cached:
    every city page prints the same labels."""
    return PRICE_ALIASES.get(normalise_name(label))


def price_rows(body: bytes, url: str) -> list[dict]:
    """A /cost-of-living/in/<City> page -> [{item, value, currency}] for every priced row of the table.

    Plain rows, not a DataFrame: at 10,000 cities a small DataFrame per page costs more than the parse."""
    doc = html_tree(body, SOURCE, url)
    table = next(iter(doc.xpath(f"//table[{has_class('data_wide_table')}]")), None)
    if table is None:
        check_not_blocked(soup(body, SOURCE, url), SOURCE, url, 'a price table <table class="data_wide_table">')
        raise SourceError(SOURCE, 'expected a price table <table class="data_wide_table">, not found', location=url)
    rows = []
    for tr in table.iter("tr"):
        cells = tr.findall(".//td")
        if len(cells) < 2:
            continue  # category header rows use <th>
        label = node_text(cells[0])
        value, cur = _split_price(node_text(cells[1]), url, label)
        rows.append({"item": label, "value": value, "currency": cur})
    if not rows:
        raise SourceError(SOURCE, "the price table has no priced rows", location=url)
    known = {price_key(r["item"]) for r in rows}
    missing = [k for k in REQUIRED_PRICES if k not in known]
    if missing:
        raise SourceError(
            SOURCE,
            f"expected price rows {missing} (known labels: "
            f"{sorted(a for a, v in PRICE_ALIASES.items() if v in missing)}), "
            f"found labels {[r['item'] for r in rows][:12]}…",
            location=url,
        )
    q = parse_qs(urlsplit(url).query).get("displayCurrency")
    if q:  # symbols like ¥ are ambiguous: the page says what currency it displays
        for r in rows:
            if r["currency"] == "¥":
                r["currency"] = q[0]
    return rows


def parse_city_prices(body: bytes, url: str) -> pd.DataFrame:
    """A /cost-of-living/in/<City> page -> item, value, currency (every priced row of the table)."""
    return pd.DataFrame(price_rows(body, url), columns=PRICE_COLUMNS)


def _api_json(body: bytes, url: str) -> dict:

    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise SourceError(SOURCE, f"expected a JSON API response, found {body[:60]!r}", location=url) from exc
    if isinstance(doc, dict) and doc.get("error"):
        raise SourceError(SOURCE, f"the API answered with an error: {doc['error']}", location=url)
    return doc


def parse_api_indices(body: bytes, url: str) -> pd.DataFrame:
    """/api/indices JSON -> indicator, value (named as on the city page)."""
    doc = _api_json(body, url)
    missing = [f for f in API_INDEX_FIELDS if f not in doc]
    if missing:
        raise SourceError(SOURCE, f"expected API fields {missing}, found {sorted(doc)[:15]}", location=url)
    return pd.DataFrame(
        {
            "indicator": list(API_INDEX_FIELDS.values()),
            "value": [float(doc[f]) if doc[f] is not None else np.nan for f in API_INDEX_FIELDS],
        }
    )


def api_price_rows(body: bytes, url: str) -> list[dict]:
    """/api/city_prices JSON -> [{item, value, currency}] (item names carry ", <category>")."""
    doc = _api_json(body, url)
    if "prices" not in doc:
        raise SourceError(SOURCE, f"expected a 'prices' list, found keys {sorted(doc)}", location=url)
    cur = doc.get("currency", "")
    rows = [
        {
            "item": p["item_name"].rsplit(",", 1)[0].strip() if p["item_name"].count(",") else p["item_name"],
            "value": float(p["average_price"]) if p.get("average_price") is not None else np.nan,
            "currency": cur,
        }
        for p in doc["prices"]
    ]
    known = {price_key(r["item"]) for r in rows}
    missing = [k for k in REQUIRED_PRICES if k not in known]
    if missing:
        raise SourceError(
            SOURCE, f"expected price items {missing}, found {[r['item'] for r in rows][:12]}", location=url
        )
    return rows


def parse_api_prices(body: bytes, url: str) -> pd.DataFrame:
    """/api/city_prices JSON -> item, value, currency."""
    return pd.DataFrame(api_price_rows(body, url), columns=PRICE_COLUMNS)


def price_summary(rows: list[dict]) -> dict[str, dict]:
    """The first row of every price the index knows (item id -> {item, value, currency}): what the
    ingest keeps of a price page. A page prints about 55 prices; keeping every row as a dict held
    millions of objects at 100,000 cities, for the two the index reads."""
    out: dict[str, dict] = {}
    for r in rows:
        key = price_key(r["item"])
        if key and key not in out:
            out[key] = r
    return out


# what the ingest keeps per response: a DataFrame, or the known prices of a per-city price page
PARSERS = {
    "numbeo-city-indices": parse_city_indices,
    "numbeo-city-prices": lambda body, url: price_summary(price_rows(body, url)),
    "numbeo-api-indices": parse_api_indices,
    "numbeo-api-prices": lambda body, url: price_summary(api_price_rows(body, url)),
}


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame | dict[str, dict]:
    if req.kind == "numbeo-rankings":
        return parse_rankings(body, req.url, registry)
    return PARSERS[req.kind](body, req.url)


def ranking_of(done: dict) -> pd.DataFrame | None:
    return next((df for r, df in done.items() if r.kind == "numbeo-rankings"), None)


# ----------------------------------------------------------------------------- tidy
def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    """Long table city_id, indicator, value, unit, edition, name_in_source, location."""
    edition = str(cfg.get("edition", "current"))
    currency = cfg.get("display_currency", "USD")
    rows = []
    rank_req = next((r for r in done if r.kind == "numbeo-rankings"), None)
    ranking = done[rank_req] if rank_req else pd.DataFrame(columns=["city", "city_id"])
    dup = ranking["city_id"].dropna()
    dup = dup[dup.duplicated()].unique().tolist()
    if dup and rank_req is not None:
        raise SourceError(SOURCE, f"the ranking lists cities {dup} more than once", location=rank_req.url, field="city")
    in_ranking = ranking.dropna(subset=["city_id"])
    # each ranked city's printed name and values, read by column (a row lookup per city costs more
    # than the rest of the tidy at 10,000 cities)
    ranked = (
        {
            cid: (city, values)
            for cid, city, *values in zip(
                in_ranking["city_id"], in_ranking["city"], *(in_ranking[c] for c in INDEX_COLUMNS.values()), strict=True
            )
        }
        if rank_req is not None
        else {}
    )
    units = ["ratio" if col == "property_price_to_income_ratio" else "index" for col in INDEX_COLUMNS.values()]
    city_pages = {
        r.city_id: (r, df) for r, df in done.items() if r.kind in ("numbeo-city-indices", "numbeo-api-indices")
    }
    for cid in registry.ids:
        if cid in city_pages:
            req, page = city_pages[cid]
            page = page.set_index("indicator")["value"]
            for ind, col in INDEX_COLUMNS.items():
                rows.append(
                    (cid, ind, page.get(col, np.nan), "index", edition, registry.get(cid)["numbeo_name"], req.url)
                )
        elif rank_req is not None and cid in ranked:
            city, values = ranked[cid]
            for ind, unit, value in zip(INDEX_COLUMNS, units, values, strict=True):
                rows.append((cid, ind, value, unit, edition, city, rank_req.url))
    for req, prices in done.items():
        if req.kind not in ("numbeo-city-prices", "numbeo-api-prices"):
            continue
        by_item = (
            prices
            if isinstance(prices, dict)
            else price_summary(prices.to_dict("records") if isinstance(prices, pd.DataFrame) else prices)
        )
        for key in REQUIRED_PRICES:
            cur = by_item[key]["currency"]
            if cur and cur != currency:
                raise SourceError(
                    SOURCE,
                    f"expected prices in {currency}, found {cur} ({by_item[key]['item']!r} = {by_item[key]['value']})",
                    location=req.url,
                    city=req.city_id,
                    field=key,
                )
        salary = by_item["monthly_net_salary"]["value"]
        rent = by_item["rent_1br_centre"]["value"]
        name = registry.get(req.city_id)["numbeo_name"]
        rows.append((req.city_id, "monthly_income", salary, f"{currency}/month", edition, name, req.url))
        burden = rent / salary if salary and salary > 0 else np.nan
        rows.append((req.city_id, "rent_burden", burden, "ratio", edition, name, req.url))
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


class NumbeoApi(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: StrictBool = False  # true: the paid API (key from NUMBEO_API_KEY; 2 requests per city)
    base_url: str = "https://www.numbeo.com/api"


class NumbeoSettings(OwnSettings):
    base_url: str = "https://www.numbeo.com"
    ranking_section: str = "quality-of-life"
    ranking_title: dict[Literal["annual", "quarterly"], str]  # the ranking an edition reads, per cadence
    display_currency: str = "EUR"
    api: NumbeoApi = NumbeoApi()


# ----------------------------------------------------------------------------- the declared source
class Numbeo(Source):
    name = SOURCE
    settings_model = NumbeoSettings
    name_column = "numbeo_name"
    registry_columns = ("numbeo_name", "numbeo_slug")
    names_the_city = True  # its "City, Country" cells name a new registry city
    suites = (SuiteSpec("numbeo"), SuiteSpec("numbeo_ranking", table="ranking", key_column="city"))
    parse_kinds = {
        "numbeo-rankings": "Numbeo ranking page (rankings.jsp / rankings_current.jsp)",
        "numbeo-city-indices": "Numbeo /quality-of-life/in/<City> page",
        "numbeo-city-prices": "Numbeo /cost-of-living/in/<City> page",
    }
    sample_fields = {
        "pollution_index": ["pollution_index"],
        "climate_index": ["climate_index"],
        "cost_of_living_index": ["cost_of_living_index"],
        "commute_index": ["traffic_commute_time_index"],
        "house_price_index": ["property_price_to_income_ratio"],
        "safety_index": ["safety_index"],
        "monthly_income": ["monthly_net_salary_eur"],
        "rent_burden": ["monthly_net_salary_eur", "rent_1br_centre_eur"],
    }

    def edition_config(self, cfg, edition, cadence):
        """Edition E reads the ranking titled `ranking_title[cadence]` ("{edition}": the January
        edition of year E, for the annual refresh; "current" for the quarterly one)."""
        titles = cfg.get("ranking_title", "{edition}")
        if isinstance(titles, dict):
            if cadence not in titles:
                raise EditionError(
                    SOURCE,
                    f"ranking_title has no entry for cadence {cadence!r} (known: {sorted(titles)})",
                    location="data/sources.yaml",
                )
            titles = titles[cadence]
        title = str(titles).format(edition=edition)
        return {**cfg, "ranking_title": title}, VintagePolicy(title)

    def suites_for(self, cfg):
        return self.suites[:1] if cfg.get("api", {}).get("enabled") else self.suites  # the API has no ranking

    def found_vintage(self, cfg, parsed):
        if cfg.get("api", {}).get("enabled") or cfg.get("ranking_title") == "current":
            return "current"  # the API and rankings_current.jsp serve the figures of the day
        ranking = ranking_of(parsed)
        if ranking is None:
            return None
        # a page that states no edition is taken to be the one its URL asked for
        return ranking.attrs.get("stated_edition") or str(cfg.get("ranking_title"))

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def pages_per_city(self, cfg):
        return not cfg.get("api", {}).get("enabled")  # a price page per city (the API's JSON parses at once)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def parse_file(self, kind, body, location, registry):
        if kind == "numbeo-rankings":
            return parse_rankings(body, location, registry)
        if kind == "numbeo-city-prices":
            return parse_city_prices(body, location)
        return parse_city_indices(body, location)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        ranking = ranking_of(parsed)
        return {} if ranking is None else {"ranking": ranking}

    def suite_params(self, cfg, registry):
        # a sanity bound that grows with the registry (a real 2020 ranking has ~300 rows)
        return {"ranking_max_rows": max(2000, 2 * len(registry.ids))}

    def extra_checks(self, spec, cfg, registry, tidy, extras, previous):
        if spec.table != "main" or previous is None or "ranking" not in extras or not previous.has("ranking"):
            return []
        before = set(previous.read("ranking")["city_id"].dropna())
        now = set(extras["ranking"]["city_id"].dropna())
        return [extra_check("city_still_in_ranking", "warning", sorted(before - now), column="city_id")]

    def city_list(self, body: bytes, location: str) -> list[Listed]:
        """'City, Country' or 'City, ST, United States' cells of a ranking page."""
        out = []
        for i, cell in enumerate(parse_rankings(body, location)["city"], start=1):
            parts = [p.strip() for p in str(cell).split(",")]
            city, country = parts[0], parts[-1] if len(parts) > 1 else ""
            admin1 = parts[1] if len(parts) == 3 else ""
            out.append(Listed(self.name, i, str(cell), city, country, admin1))
        return out

    def registry_cells(self, cities: list[NewCity], ctx: BuildContext) -> None:
        """Its first spelling of each new city, and the city page's slug as Numbeo disambiguates
        namesakes: of two listed cities called the same, the bigger keeps the plain slug (also once a
        parenthesis is left out: "Halle (Saale)" and "Halle" both print as Halle); the other's is
        `<City>-<State or Country>`. Every assumed slug is a review row."""
        by_city_part: dict[str, list] = {}
        for pl in sorted(ctx.places, key=lambda p: -p.population):
            if pl.listed.get(self.name):
                plain = re.sub(r"\s*\(.*\)\s*$", "", pl.listed[self.name][0].city)
                by_city_part.setdefault(ascii_key(plain), []).append(pl)
        qualified = {id(pl) for group in by_city_part.values() for pl in group[1:]}
        base_slugs = {str(x).lower() for x in ctx.base.get("numbeo_slug", []) if str(x)}
        for c in cities:
            items = c.place.listed.get(self.name) or []
            for extra in items[1:]:
                ctx.note(
                    extra,
                    "two-names-one-city",
                    f"Numbeo lists this place also as {items[0].printed!r} (line {items[0].line}): "
                    "the first name is used",
                )
            first = items[0] if items else None
            slug = numbeo_slug(c.display) if first else ""
            if first and (id(c.place) in qualified or slug.lower() in base_slugs):
                slug = numbeo_slug(f"{c.display} {first.admin1 or first.country}")
                ctx.note(
                    first,
                    "numbeo-slug",
                    f"Numbeo lists a bigger city called {c.display!r} (or the base has its slug): slug {slug!r} "
                    "assumed (check the city page)",
                    chosen=slug,
                )
            elif first and ctx.gazetteer.namesakes(c.place.name, c.place.iso2) > 1:
                n = ctx.gazetteer.namesakes(c.place.name, c.place.iso2)
                ctx.note(
                    first,
                    "numbeo-slug",
                    f"{n} places of {c.place.iso2} are called {c.place.name!r}: slug {slug!r} may open another one "
                    "on numbeo.com; check the city page before the first online run",
                    chosen=slug,
                )
            c.cells["numbeo_name"] = first.printed if first else ""
            c.cells["numbeo_slug"] = slug
        # a slug the base or an earlier (bigger) new city has: this one's is `<City>-<Country>`
        taken = {
            normalise_name(str(v)): cid
            for cid, v in zip(ctx.base["city_id"], ctx.base["numbeo_slug"], strict=True)
            if v
        }
        for c in cities:
            key = normalise_name(c.cells["numbeo_slug"])
            if key and key in taken and taken[key] != c.row["city_id"]:
                qualified_slug = numbeo_slug(f"{c.row['name_en']} {c.row['country']}")
                ctx.review.append(
                    {
                        "source": self.name,
                        "line": "",
                        "name": c.cells["numbeo_name"],
                        "country": c.row["country"],
                        "decision": "numbeo-slug",
                        "chosen": qualified_slug,
                        "candidates": c.cells["numbeo_slug"],
                        "why": f"slug {c.cells['numbeo_slug']!r} is {taken[key]}'s; this city's is assumed "
                        f"{qualified_slug!r}, as Numbeo names namesakes (check the city page)",
                    }
                )
                c.cells["numbeo_slug"] = qualified_slug
                key = normalise_name(qualified_slug)
            if key:
                taken[key] = c.row["city_id"]


def numbeo_slug(city: str) -> str:
    """The path segment Numbeo builds from a city's name: spaces to hyphens, apostrophes dropped
    ('New York' -> 'New-York', "Xi'an" -> 'Xian')."""
    s = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", "-", s.replace("'", "").strip().lstrip("=+-@").strip())


SPEC = Numbeo()
