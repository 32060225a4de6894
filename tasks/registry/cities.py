"""The city registry (`data/cities.csv`) and name matching: parsers never fix names by hand.

The registry holds what every city has (`REQUIRED`) plus, per source that prints city names, the
columns that source declares (`Source.registry_columns`: `numbeo_name`, `gawc_names`...). A column
named `<...>_name`, `<...>_names` or `<...>_slug` holds a source's spellings (several separated by
`;`): a spelling may stand for one city only, whichever source it belongs to."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.csvsafe import unescape_frame
from tasks.settings import CONFIG_DIR, safe_id

REGISTRY_PATH = CONFIG_DIR / "cities.csv"
REQUIRED = [
    "city_id",
    "name_en",
    "name_zh",
    "country",
    "iso2",
    "domestic",
    "cluster",
    "lat",
    "lon",
    "boundary_radius_km",
]
# A source's spellings of city names: checked for names standing for two cities.
NAME_COLUMN = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*_(?:name|names|slug)$")


@lru_cache(maxsize=65536)
def normalise_name(name: str) -> str:
    """Case-, accent- and spacing-insensitive key ("Zürich" == "zurich", "Xi'An" == "xi'an")."""
    name = str(name)
    if name.isascii():  # most names: nothing to decompose (the same key, several times faster)
        return " ".join(name.lower().split())
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    s = s.replace("\u2019", "'").lower()
    return re.sub(r"\s+", " ", s).strip()


@dataclass(frozen=True)
class Listed:
    """A city as one source's own list prints it (read by the source, for `cities build`)."""

    source: str
    line: int
    printed: str  # the whole cell as printed ("New York, NY, United States")
    city: str  # the city part ("New York")
    country: str  # as printed ("United States", "U.S.", "")
    admin1: str = ""  # a US state as Numbeo prints it ("NY")


@dataclass(frozen=True)
class Registry:
    table: pd.DataFrame  # indexed by city_id
    path: str = ""  # where it was read from (for messages)

    def require(self, columns, who: str) -> None:
        """Refuse a registry without the columns `who` (a source) reads, in one line."""
        missing = [c for c in columns if c not in self.table.columns]
        if missing:
            raise ValueError(
                f"city registry {self.path or '(in memory)'} lacks the column(s) {', '.join(missing)} that {who} "
                "reads: add them (empty where the source does not list a city)"
            )

    @property
    def ids(self) -> list[str]:
        return list(self.table.index)

    def _lookup(self, column: str, split: str | None = None) -> dict[str, str]:
        out: dict[str, str] = {}
        for cid, value in self.table[column].items():
            names = str(value).split(split) if split else [value]
            for n in names:
                if str(n).strip():
                    out[normalise_name(n)] = cid
        return out

    def match(self, column: str, name: str) -> str | None:
        """City id for a name as a source prints it, from the registry column of that source's
        spellings (`;`-separated), or None."""
        if column not in self.table.columns:
            raise ValueError(f"the city registry has no column {column!r} (the spellings a source matches names with)")
        return self._lookup_cached(column, ";").get(normalise_name(name))

    def match_zh(self, name: str) -> str | None:
        """City id for a Chinese name ("北京", "北京市"), from the registry's `name_zh`."""
        cache = self.__dict__.setdefault("_zh", {})
        if not cache:
            for cid, value in self.table["name_zh"].items():
                if str(value).strip():
                    cache[str(value).strip().removesuffix("市")] = cid
        return cache.get(str(name).strip().removesuffix("市"))

    def _lookup_cached(self, column, split):
        cache = self.__dict__.setdefault("_cache", {})
        if (column, split) not in cache:
            cache[(column, split)] = self._lookup(column, split)
        return cache[(column, split)]

    def __getstate__(self) -> dict:  # pickled for worker processes: the table, not the lookups
        return {"table": self.table, "path": self.path}

    def forget_lookups(self) -> None:
        """Drop the lookups built for the sources read so far (name -> city id, rows): one source's
        are no use to the next one, and for a large registry they hold several Python objects per
        city. They are built again when asked for."""
        for cache in ("_cache", "_zh", "_rows"):
            self.__dict__.pop(cache, None)

    def get(self, city_id: str) -> Mapping[str, Any]:
        """One city's registry row, read-only: its values are Python's own (str, float, bool), read
        from columns each turned into a list once, when a parser first asks for it (parsers ask once
        per page; a dict per city would hold the whole registry again as Python objects)."""
        rows = self.__dict__.get("_rows")
        if rows is None:
            rows = self.__dict__["_rows"] = _Rows(self.table)
        return _Row(rows, rows.position[city_id])


class _Rows:
    """The registry's columns as lists, made when first read; `position`: city_id -> row number."""

    def __init__(self, table: pd.DataFrame):
        self.table = table
        self.position = {cid: i for i, cid in enumerate(table.index)}
        self.columns: dict[str, list] = {}

    def column(self, name: str) -> list:
        values = self.columns.get(name)
        if values is None:
            values = self.columns[name] = self.table[name].tolist()
        return values


class _Row(Mapping[str, Any]):
    """One registry row of `_Rows` (what `Registry.get` returns)."""

    __slots__ = ("_rows", "_i")

    def __init__(self, rows: _Rows, i: int):
        self._rows, self._i = rows, i

    def __getitem__(self, name: str) -> Any:
        if name not in self._rows.table.columns:
            raise KeyError(name)
        return self._rows.column(name)[self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows.table.columns)

    def __len__(self) -> int:
        return len(self._rows.table.columns)


def load_registry(path: str | Path | None = None) -> Registry:
    """The registry at `path`, else TALENT_INDEX_REGISTRY, else data/cities.csv."""

    path = Path(path) if path else Path(os.environ.get("TALENT_INDEX_REGISTRY", REGISTRY_PATH))
    return _load(str(path))


@lru_cache(maxsize=8)
def _load(path: str) -> Registry:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except OSError as exc:
        raise ValueError(f"cannot read the city registry {path}: {exc.strerror}") from exc
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"city registry {path} lacks columns {missing}")

    df = unescape_frame(df)  # a name written inert for spreadsheets ('=...) is matched as the source prints it
    if df.empty:
        raise ValueError(f"city registry {path} has no cities (only a header): add at least 3 rows to score")
    dup = df["city_id"][df["city_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"city registry {path} has duplicate city ids {dup}")

    for cid in df["city_id"]:
        try:
            safe_id(cid, "city id")
        except ValueError as exc:
            raise ValueError(f"city registry {path}: {exc}") from None
    df["domestic"] = df["domestic"].str.lower().map({"true": True, "false": False})
    if df["domestic"].isna().any():
        bad = df.loc[df["domestic"].isna(), "city_id"].tolist()
        raise ValueError(f"city registry {path}: 'domestic' must be true/false for {bad}")
    bounds = {"lat": (-90, 90), "lon": (-180, 180), "boundary_radius_km": (0.1, 500)}
    for col, (lo, hi) in bounds.items():
        numbers = pd.to_numeric(df[col], errors="coerce")
        bad = df[numbers.isna() | ~numbers.between(lo, hi)]
        if len(bad):
            r = bad.iloc[0]
            raise ValueError(
                f"city registry {path} line {bad.index[0] + 2}, city {r['city_id']}, column {col}: expected a number "
                f"between {lo} and {hi} (decimal degrees, west and south negative), found {r[col]!r}"
            )
        df[col] = numbers
    _check_source_names(df, path)
    return Registry(df.set_index("city_id"), path)


def name_columns(columns) -> list[str]:
    """The columns holding sources' spellings of city names (`NAME_COLUMN`)."""
    return [c for c in columns if NAME_COLUMN.match(str(c))]


def _check_source_names(df: pd.DataFrame, path: str) -> None:
    """A name or slug a source uses may stand for one registry city only (else its values would go
    to whichever city came last)."""
    for column in name_columns(df.columns):
        owner: dict[str, str] = {}
        for cid, value in zip(df["city_id"], df[column], strict=True):
            for name in str(value).split(";"):
                key = normalise_name(name)
                if not key:
                    continue
                if key in owner and owner[key] != cid:
                    raise ValueError(
                        f"city registry {path}: {column} {name.strip()!r} names both {owner[key]} and {cid}; a "
                        "source's spelling must name one city (add the country or state as the source writes it)"
                    )
                owner[key] = cid
