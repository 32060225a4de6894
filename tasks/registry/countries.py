"""Country names as the sources print them -> ISO 3166 codes (pycountry, plus the aliases the
sources use that ISO does not know by that name). Shared by the source parsers and `cities build`."""

from __future__ import annotations

import re
from functools import lru_cache

import pycountry

from tasks.registry.cities import normalise_name

# Country names the sources print that ISO 3166 (pycountry) does not know by that name.
COUNTRY_ALIASES = {
    "u.s.": "US",
    "us": "US",
    "u.s.a.": "US",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "turkey": "TR",
    "ivory coast": "CI",
    "kosovo": "XK",
    "russia": "RU",
    "macedonia": "MK",
    "czechia": "CZ",
    "swaziland": "SZ",
    "burma": "MM",
}


@lru_cache(maxsize=4096)
def country_iso2(name: str, fuzzy: bool = True) -> str | None:
    """ISO 3166 alpha-2 of a country name as a source prints it, or None when unknown. `fuzzy`:
    also pycountry's fuzzy search (which matches subdivisions too: 'Salem' finds India)."""

    text = str(name or "").strip()
    if not text:
        return None
    tries = [text]
    m = re.match(r"^(.*?)\s*\((.*)\)\s*$", text)  # 'Hong Kong (China)': the territory, then the state
    if m:
        tries += [m.group(1), m.group(2)]
    for t in tries:
        alias = COUNTRY_ALIASES.get(normalise_name(t))
        if alias:
            return alias
        try:
            return pycountry.countries.lookup(t).alpha_2
        except LookupError:
            continue
    if not fuzzy:
        return None
    try:
        found = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    return found[0].alpha_2 if len(found) == 1 else None


def country_name(iso2: str) -> str:

    c = pycountry.countries.get(alpha_2=iso2)
    if c is None:
        return iso2
    return getattr(c, "common_name", None) or c.name
