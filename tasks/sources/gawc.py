"""GaWC: "The World According to GaWC" tier page and the connectivity dataset (city metadata)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, field_validator

from tasks.errors import SourceError
from tasks.registry.cities import Listed, Registry
from tasks.sources.base import (
    EditionError,
    ReleaseTable,
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
    stripped_strings,
)
from tasks.sources.schema import OwnSettings, text_keys

SOURCE = "gawc"

TIERS = [
    "Alpha++",
    "Alpha+",
    "Alpha",
    "Alpha-",
    "Beta+",
    "Beta",
    "Beta-",
    "Gamma+",
    "Gamma",
    "Gamma-",
    "High Sufficiency",
    "Sufficiency",
]
_TIER_KEYS = {re.sub(r"\s+", "", t.lower()): t for t in TIERS}


def tier_of(text: str) -> str | None:
    """'Alpha ++' / 'ALPHA−' / 'High sufficiency' -> canonical tier name, else None."""
    key = re.sub(r"\s+", "", text.replace("\u2212", "-").replace("\u2013", "-").lower()).rstrip(":")
    key = key.replace("cities", "").replace("city", "")
    return _TIER_KEYS.get(key)


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    """The tier page, and the connectivity dataset where the edition has one."""
    reqs = [Request("gawc-tiers", cfg["tiers_url"])]
    if cfg.get("connectivity_url"):
        reqs.append(Request("gawc-connectivity", cfg["connectivity_url"]))
    return reqs


def stated_edition(doc) -> str | None:
    """ "The World According to GaWC 2020" / "World Cities 2024" -> the year (title or first heading)
    of a page's lxml tree."""
    for path in ("//title", "//h1"):
        text = node_text(next(iter(doc.xpath(path)), None))
        m = re.search(r"(?:GaWC|World Cities)\s+((?:19|20)\d{2})\b", text, flags=re.IGNORECASE)
        if m:
            return m.group(1)
    return None


def tier_lists(doc) -> list[tuple[str, list[str]]]:
    """The site's format since 2024: each tier heading (h2-h6, or a paragraph holding only the tier)
    followed by a <ul> of cities -> [(tier, names)] (from the page's lxml tree); empty when the page
    has none."""
    out = []
    for el in doc.iter("h1", "h2", "h3", "h4", "h5", "h6", "p", "strong", "b", "dt", "div"):
        text = node_text(el)
        tier = tier_of(text) if len(text) < 40 else None
        if tier is None:
            continue
        nxt = el.getnext()
        while nxt is not None and not isinstance(nxt.tag, str):  # comments between heading and list
            nxt = nxt.getnext()
        if nxt is not None and nxt.tag in ("ul", "ol"):
            out.append((tier, [node_text(li) for li in nxt.iterchildren("li")]))
    return out


def _tiers_in_text(doc) -> list[dict]:
    """The older pages: tier headings, each followed by names in paragraphs or lines (the page's
    lxml tree)."""
    rows, tier = [], None
    for text in stripped_strings(doc):
        t = tier_of(text)
        if t:
            tier = t
            continue
        if tier is None:
            continue
        for name in re.split(r"\s*[\n;]\s*", text):
            name = name.strip(" ,")
            if name and len(name) < 60:
                rows.append({"tier": tier, "city": name})
    return rows


def parse_tiers(body: bytes, url: str, registry: Registry | None = None) -> pd.DataFrame:
    """Cities under tier headings -> tier, city, city_id (document order). Either format: tier
    headings followed by <ul> lists (the site since 2024), or headings followed by lines of names
    (the older pages). A registry city listed under two different tiers is an error naming both
    (which one holds is not ours to guess); a name listed twice under one tier counts once."""
    tree = html_tree(body, SOURCE, url)
    lists = tier_lists(tree)
    if lists:
        rows = [{"tier": t, "city": n.strip(" ,")} for t, names in lists for n in names if n.strip(" ,")]
    else:  # the older pages
        rows = _tiers_in_text(tree)
    if not rows:
        check_not_blocked(soup(body, SOURCE, url), SOURCE, url, "cities listed under GaWC tier headings")
        raise SourceError(SOURCE, f"expected cities under tier headings {TIERS[:3]}…, found none", location=url)
    df = pd.DataFrame(rows).drop_duplicates(["tier", "city"], ignore_index=True)
    df["city_id"] = [registry.match(SPEC.name_column, c) if registry else None for c in df["city"]]
    both = df.dropna(subset=["city_id"]).groupby("city_id", sort=False)["tier"].agg(list)
    twice = both[both.map(len) > 1]
    if len(twice):
        cid, tiers = twice.index[0], twice.iloc[0]
        names = df.loc[df["city_id"] == cid, "city"].tolist()
        raise SourceError(
            SOURCE,
            f"{' / '.join(dict.fromkeys(names))} is listed under two tiers ({' and '.join(tiers)}): expected one tier "
            "per city",
            location=url,
            city=cid,
            field="tier",
        )
    df.attrs["stated_edition"] = stated_edition(tree)
    df.attrs["format"] = "lists" if lists else "text"
    return df


CONNECTIVITY_HEADERS = {
    "rank": ["rank"],
    "city": ["city"],
    "country": ["country"],
    "gnc_abs": ["gnc_abs", "gnc abs", "gnc (abs)"],
    "gnc_rel": ["gnc_rel(%)", "gnc_rel", "gnc rel (%)", "gnc_rel (%)"],
}


def parse_connectivity(body: bytes, location: str, registry: Registry | None = None) -> pd.DataFrame:
    """The connectivity sheet (xlsx, or CSV) -> rank, city, country, city_id, gnc_abs, gnc_rel."""
    raw = read_sheet(body, SOURCE, location, "an xlsx or CSV sheet")
    header_row = None
    for i, row in raw.head(20).iterrows():
        low = [str(c).strip().lower() for c in row]
        if "city" in low and any(c.startswith("gnc") for c in low):
            header_row = i
            break
    if header_row is None:
        raise SourceError(
            SOURCE,
            "expected a header row with 'City' and 'GNC_abs'/'GNC_rel(%)', found none in the first 20 rows",
            location=location,
        )
    headers = [str(c).strip().lower() for c in raw.iloc[header_row]]
    idx = {}
    for field, names in CONNECTIVITY_HEADERS.items():
        hit = next((headers.index(n) for n in names if n in headers), None)
        if hit is None:
            raise SourceError(SOURCE, f"expected a column {names[0]!r}, found headers {headers}", location=location)
        idx[field] = hit
    rows = []
    for r in raw.iloc[header_row + 1 :].to_numpy(dtype=object).tolist():
        city = str(r[idx["city"]]).strip()
        if not city:
            continue
        rows.append(
            {
                "rank": parse_number(
                    str(r[idx["rank"]]), source=SOURCE, location=location, city=city, field_name="Rank"
                ),
                "city": city,
                "country": str(r[idx["country"]]).strip(),
                "gnc_abs": parse_number(
                    str(r[idx["gnc_abs"]]), source=SOURCE, location=location, city=city, field_name="GNC_abs"
                ),
                "gnc_rel": parse_number(
                    str(r[idx["gnc_rel"]]), source=SOURCE, location=location, city=city, field_name="GNC_rel(%)"
                ),
            }
        )
    df = pd.DataFrame(rows)
    df["rank"] = df["rank"].astype("Int64")
    df.insert(3, "city_id", [registry.match(SPEC.name_column, c) if registry else None for c in df["city"]])
    return df


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    if req.kind == "gawc-tiers":
        return parse_tiers(body, req.url, registry)
    return parse_connectivity(body, req.url, registry)


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    """City metadata: tier and connectivity of every registry city (no index indicator)."""
    tiers = next(df for r, df in done.items() if r.kind == "gawc-tiers")
    conn = next((df for r, df in done.items() if r.kind == "gawc-connectivity"), None)
    t = tiers.dropna(subset=["city_id"]).drop_duplicates("city_id").set_index("city_id")
    out = pd.DataFrame(index=pd.Index(registry.ids, name="city_id"))
    out["tier"] = t["tier"].reindex(out.index)
    for col in ("rank", "gnc_abs", "gnc_rel"):  # NaN when the edition has no connectivity dataset
        name = f"gnc_{col}" if col == "rank" else col
        if conn is None:
            out[name] = np.nan
        else:
            c = conn.dropna(subset=["city_id"]).drop_duplicates("city_id").set_index("city_id")
            out[name] = c[col].reindex(out.index)
    out["edition"] = str(cfg.get("gawc_edition", cfg.get("edition")))  # GaWC's own edition
    out["connectivity_edition"] = str(cfg["connectivity_edition"]) if conn is not None else None
    out["report_tier_2020"] = registry.table["report_tier_2020"].reindex(out.index)
    return out.reset_index()


def tier_differences(meta: pd.DataFrame) -> pd.DataFrame:
    """Cities whose ingested tier differs from the tier printed in the 2020 report's Table 2."""
    d = meta[(meta["tier"].fillna("") != meta["report_tier_2020"].fillna(""))]
    return d[["city_id", "report_tier_2020", "tier", "edition"]].rename(
        columns={"report_tier_2020": "tier_printed_in_report", "tier": "tier_ingested"}
    )


class GawcEdition(BaseModel):
    """The pages of one GaWC edition (`gawc.editions.<year>`)."""

    model_config = ConfigDict(extra="forbid")
    tiers_url: str | None = None
    connectivity_url: str | None = None
    connectivity_from: str | None = None  # another edition's connectivity data set, when it has none

    @field_validator("connectivity_from", mode="before")
    @classmethod
    def _year_text(cls, v):
        return None if v is None else str(v)


class GawcSettings(OwnSettings):
    published_editions: list[int] = []
    editions: dict[str, GawcEdition] = {}
    gawc_edition: str | None = None  # without editions: the one GaWC edition the URLs below hold
    tiers_url: str | None = None
    connectivity_url: str | None = None

    @field_validator("editions", mode="before")
    @classmethod
    def _year_keys(cls, v):
        return text_keys(v)


class GaWC(Source):
    name = SOURCE
    settings_model = GawcSettings
    name_column = "gawc_names"
    registry_columns = ("gawc_names", "report_tier_2020")  # and the tier the 2020 report printed (Table 2)
    parse_kinds = {
        "gawc-tiers": "GaWC 'The World According to GaWC' tier page",
        "gawc-connectivity": "GaWC connectivity dataset (xlsx or CSV)",
    }
    feeds_indicators = False
    required = {"tiers_url": "the tier page of a GaWC edition, under editions.<year>.tiers_url"}

    def edition_config(self, cfg, edition, cadence):
        """GaWC publishes every few years (2016, 2018, 2020, 2024...): edition E uses the newest
        GaWC edition published up to E; `editions` maps each GaWC edition to its pages."""
        published = sorted(int(p) for p in cfg.get("published_editions") or [])
        editions = {str(k): v for k, v in (cfg.get("editions") or {}).items()}
        if not published and not editions:
            return cfg, VintagePolicy(str(cfg.get("gawc_edition", edition)))
        try:
            year = int(edition)
        except ValueError:
            raise EditionError(SOURCE, f"edition {edition!r} is not a year", location="data/sources.yaml") from None
        older = [p for p in published if p <= year]
        if not older:
            raise EditionError(
                SOURCE,
                f"no GaWC edition published up to {edition} (published: {published})",
                location="data/sources.yaml",
            )
        g = str(older[-1])
        if g not in editions:
            raise EditionError(
                SOURCE,
                f"edition {edition} needs GaWC {g} (the newest published up to {edition}), "
                f"but gawc.editions has no pages for it (known: {', '.join(sorted(editions))})",
                location="data/sources.yaml",
            )
        resolved = {**cfg, **editions[g], "gawc_edition": g}
        source_of_connectivity = str(resolved.get("connectivity_from") or g)
        if source_of_connectivity != g:  # no data set of this edition: an older one's, named everywhere
            older_pages = editions.get(source_of_connectivity) or {}
            if not older_pages.get("connectivity_url"):
                raise EditionError(
                    SOURCE,
                    f"gawc.editions.{g}.connectivity_from names GaWC {source_of_connectivity}, which has no "
                    "connectivity_url",
                    location="data/sources.yaml",
                )
            resolved["connectivity_url"] = older_pages["connectivity_url"]
        if resolved.get("connectivity_url"):
            resolved["connectivity_edition"] = source_of_connectivity
        return resolved, VintagePolicy(g, note=f"newest GaWC edition <= {edition}")

    def vintage_notes(self, cfg, parsed):
        g = str(cfg.get("gawc_edition", cfg.get("edition")))
        conn = cfg.get("connectivity_edition")
        if conn and conn != g:
            return [f"connectivity: GaWC {conn} data set (GaWC {g} published tiers only)"]
        if not conn:
            return [f"connectivity: none (GaWC {g} has no connectivity data set configured)"]
        return []

    def found_vintage(self, cfg, parsed):
        tiers = next((df for r, df in parsed.items() if r.kind == "gawc-tiers"), None)
        stated = tiers.attrs.get("stated_edition") if tiers is not None else None
        return stated or str(cfg.get("gawc_edition", cfg.get("edition")))

    def suites_for(self, cfg):
        specs = [SuiteSpec("gawc_tiers")]
        if cfg.get("connectivity_url"):
            specs.append(SuiteSpec("gawc_connectivity"))
        return tuple(specs)

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def parse_file(self, kind, body, location, registry):
        if kind == "gawc-tiers":
            return parse_tiers(body, location, registry)
        return parse_connectivity(body, location, registry)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        return {r.kind.replace("gawc-", ""): df for r, df in parsed.items()}

    def release_tables(self, snapshot: pd.DataFrame) -> list[ReleaseTable]:
        """The cities whose ingested tier differs from the tier the 2020 report printed (Table 2)."""
        headings = {"city_id": "City", "tier_printed_in_report": "Printed in the report"}
        headings |= {"tier_ingested": "Ingested", "edition": "Edition"}
        title = "GaWC tiers: ingested edition against the report's Table 2"
        return [ReleaseTable("gawc_tier_differences.csv", title, tier_differences(snapshot), headings)]

    def city_list(self, body: bytes, location: str) -> list[Listed]:
        """The cities of a connectivity sheet, with the country it prints."""
        t = parse_connectivity(body, location)
        return [
            Listed(self.name, i, r.city, r.city, str(r.country or "")) for i, r in enumerate(t.itertuples(), start=1)
        ]


SPEC = GaWC()
