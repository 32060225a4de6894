"""One module per source, each with the same functions: plan, parse, tidy (and its suites)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ..settings import CONFIG_DIR
from . import curated, gawc, hurun, night_lights, numbeo

SOURCES = {m.SOURCE: m for m in (numbeo, hurun, gawc, night_lights, curated)}
# Which sources feed indicators (gawc is city metadata only).
INDICATOR_SOURCES = ("numbeo", "hurun", "night_lights", "curated")


def load_sources_config(path: str | Path | None = None) -> dict:
    import os

    path = Path(path) if path else Path(os.environ.get("TALENT_INDEX_SOURCES", CONFIG_DIR / "sources.yaml"))
    doc = yaml.safe_load(path.read_text())
    defaults = doc.pop("defaults", {})
    out = {}
    for name, cfg in doc.items():
        if name not in SOURCES:
            raise ValueError(f"{path}: unknown source {name!r}; known: {sorted(SOURCES)}")
        merged = {**defaults, **cfg}
        merged["http"] = {**defaults.get("http", {}), **cfg.get("http", {})}
        out[name] = merged
    return out
