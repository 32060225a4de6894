"""GaWC: "The World According to GaWC" tier page and the connectivity dataset (city metadata)."""

from __future__ import annotations

import io
import re

import pandas as pd

from ..cities import Registry
from ..errors import SourceError
from .base import Request, check_not_blocked, parse_number, soup

SOURCE = "gawc"
PARSER_VERSION = "1"
SUITES = {"tiers": "gawc_tiers", "connectivity": "gawc_connectivity"}

TIERS = ["Alpha++", "Alpha+", "Alpha", "Alpha-", "Beta+", "Beta", "Beta-", "Gamma+", "Gamma", "Gamma-",
         "High Sufficiency", "Sufficiency"]
_TIER_KEYS = {re.sub(r"\s+", "", t.lower()): t for t in TIERS}


def tier_of(text: str) -> str | None:
    """'Alpha ++' / 'ALPHA−' / 'High sufficiency' -> canonical tier name, else None."""
    key = re.sub(r"\s+", "", text.replace("\u2212", "-").replace("\u2013", "-").lower()).rstrip(":")
    key = key.replace("cities", "").replace("city", "")
    return _TIER_KEYS.get(key)


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    return [Request("gawc-tiers", cfg["tiers_url"]), Request("gawc-connectivity", cfg["connectivity_url"])]


def parse_tiers(body: bytes, url: str, registry: Registry | None = None) -> pd.DataFrame:
    """Cities under tier headings -> tier, city, city_id (document order)."""
    doc = soup(body, SOURCE, url)
    for s in doc(["script", "style"]):
        s.decompose()
    rows, tier = [], None
    for text in doc.stripped_strings:
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
    if not rows:
        check_not_blocked(doc, SOURCE, url, "cities listed under GaWC tier headings")
        raise SourceError(SOURCE, f"expected cities under tier headings {TIERS[:3]}…, found none", location=url)
    df = pd.DataFrame(rows)
    df["city_id"] = [registry.match("gawc", c) if registry else None for c in df["city"]]
    return df


CONNECTIVITY_HEADERS = {"rank": ["rank"], "city": ["city"], "country": ["country"],
                        "gnc_abs": ["gnc_abs", "gnc abs", "gnc (abs)"], "gnc_rel": ["gnc_rel(%)", "gnc_rel", "gnc rel (%)", "gnc_rel (%)"]}


def parse_connectivity(body: bytes, location: str, registry: Registry | None = None) -> pd.DataFrame:
    """The connectivity sheet (xlsx, or CSV) -> rank, city, country, city_id, gnc_abs, gnc_rel."""
    try:
        if body[:2] == b"PK":
            raw = pd.read_excel(io.BytesIO(body), header=None, dtype=str).fillna("")
        else:
            raw = pd.read_csv(io.BytesIO(body), header=None, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a layout problem for the user
        raise SourceError(SOURCE, f"expected an xlsx or CSV sheet, could not read it: {exc}", location=location) from exc
    header_row = None
    for i, row in raw.head(20).iterrows():
        low = [str(c).strip().lower() for c in row]
        if "city" in low and any(c.startswith("gnc") for c in low):
            header_row = i
            break
    if header_row is None:
        raise SourceError(SOURCE, "expected a header row with 'City' and 'GNC_abs'/'GNC_rel(%)', found none "
                                  "in the first 20 rows", location=location)
    headers = [str(c).strip().lower() for c in raw.iloc[header_row]]
    idx = {}
    for field, names in CONNECTIVITY_HEADERS.items():
        hit = next((headers.index(n) for n in names if n in headers), None)
        if hit is None:
            raise SourceError(SOURCE, f"expected a column {names[0]!r}, found headers {headers}", location=location)
        idx[field] = hit
    rows = []
    for r in raw.iloc[header_row + 1:].to_numpy(dtype=object).tolist():
        city = str(r[idx["city"]]).strip()
        if not city:
            continue
        rows.append({
            "rank": parse_number(str(r[idx["rank"]]), source=SOURCE, location=location, city=city, field_name="Rank"),
            "city": city,
            "country": str(r[idx["country"]]).strip(),
            "gnc_abs": parse_number(str(r[idx["gnc_abs"]]), source=SOURCE, location=location, city=city, field_name="GNC_abs"),
            "gnc_rel": parse_number(str(r[idx["gnc_rel"]]), source=SOURCE, location=location, city=city, field_name="GNC_rel(%)"),
        })
    df = pd.DataFrame(rows)
    df["rank"] = df["rank"].astype("Int64")
    df.insert(3, "city_id", [registry.match("gawc", c) if registry else None for c in df["city"]])
    return df


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    if req.kind == "gawc-tiers":
        return parse_tiers(body, req.url, registry)
    return parse_connectivity(body, req.url, registry)


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    """City metadata: tier and connectivity of every registry city (no index indicator)."""
    tiers = next(df for r, df in done.items() if r.kind == "gawc-tiers")
    conn = next(df for r, df in done.items() if r.kind == "gawc-connectivity")
    t = tiers.dropna(subset=["city_id"]).drop_duplicates("city_id").set_index("city_id")
    c = conn.dropna(subset=["city_id"]).drop_duplicates("city_id").set_index("city_id")
    out = pd.DataFrame(index=pd.Index(registry.ids, name="city_id"))
    out["tier"] = t["tier"].reindex(out.index)
    for col in ("rank", "gnc_abs", "gnc_rel"):
        out[f"gnc_{col}" if col == "rank" else col] = c[col].reindex(out.index)
    out["edition"] = str(cfg.get("edition"))
    out["report_tier_2020"] = registry.table["report_tier_2020"].reindex(out.index)
    return out.reset_index()


def tier_differences(meta: pd.DataFrame) -> pd.DataFrame:
    """Cities whose ingested tier differs from the tier printed in the 2020 report's Table 2."""
    d = meta[(meta["tier"].fillna("") != meta["report_tier_2020"].fillna(""))]
    return d[["city_id", "report_tier_2020", "tier", "edition"]].rename(
        columns={"report_tier_2020": "tier_printed_in_report", "tier": "tier_ingested"})
