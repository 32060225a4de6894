"""The city registry (`data/cities.csv`) and name matching: parsers never fix names by hand."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .settings import CONFIG_DIR

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
    "numbeo_name",
    "numbeo_slug",
    "gawc_names",
    "hurun_names",
]


@lru_cache(maxsize=65536)
def normalise_name(name: str) -> str:
    """Case-, accent- and spacing-insensitive key ("Zürich" == "zurich", "Xi'An" == "xi'an")."""
    s = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    s = s.replace("\u2019", "'").lower()
    return re.sub(r"\s+", " ", s).strip()


@dataclass(frozen=True)
class Registry:
    table: pd.DataFrame  # indexed by city_id

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

    def match(self, source: str, name: str) -> str | None:
        """City id for a name as printed by `source` (numbeo, gawc, hurun), or None."""
        column, split = {"numbeo": ("numbeo_name", None), "gawc": ("gawc_names", ";"), "hurun": ("hurun_names", ";")}[
            source
        ]
        return self._lookup_cached(column, split).get(normalise_name(name))

    def _lookup_cached(self, column, split):
        cache = self.__dict__.setdefault("_cache", {})
        if (column, split) not in cache:
            cache[(column, split)] = self._lookup(column, split)
        return cache[(column, split)]

    def get(self, city_id: str) -> dict:
        """One city's registry row as a dict (cached: parsers ask for it once per page)."""
        rows = self.__dict__.setdefault("_rows", {})
        if not rows:
            rows.update(self.table.to_dict("index"))
        return rows[city_id]


def load_registry(path: str | Path | None = None) -> Registry:
    """The registry at `path`, else TALENT_INDEX_REGISTRY, else data/cities.csv."""
    import os

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
    dup = df["city_id"][df["city_id"].duplicated()].tolist()
    if dup:
        raise ValueError(f"city registry {path} has duplicate city ids {dup}")
    from .settings import safe_id

    for cid in df["city_id"]:
        try:
            safe_id(cid, "city id")
        except ValueError as exc:
            raise ValueError(f"city registry {path}: {exc}") from None
    df["domestic"] = df["domestic"].str.lower().map({"true": True, "false": False})
    if df["domestic"].isna().any():
        bad = df.loc[df["domestic"].isna(), "city_id"].tolist()
        raise ValueError(f"city registry {path}: 'domestic' must be true/false for {bad}")
    for col in ("lat", "lon", "boundary_radius_km"):
        df[col] = pd.to_numeric(df[col], errors="raise")
    return Registry(df.set_index("city_id"))
