"""Which sample values are real and which illustrative (from data/sample/values.csv), per edition.

Which fields of values.csv stand behind an indicator is declared by each source (`sample_fields`)."""

from __future__ import annotations

import pandas as pd

from .settings import CONFIG_DIR

VALUES = CONFIG_DIR / "sample" / "values.csv"


def indicator_fields() -> dict[str, list[str]]:
    """indicator -> fields of values.csv it is computed from (all real => real), over every source."""
    from .sources import all_sources

    out: dict[str, list[str]] = {}
    for spec in all_sources().values():
        out.update(spec.sample_fields)
    return out


def sample_values(path=None) -> pd.DataFrame:
    return pd.read_csv(path or VALUES, dtype=str, keep_default_na=False)


def sample_status(edition: str | None = None, path=None) -> pd.DataFrame:
    """city_id, indicator, status (real|illustrative), vintage, provenance of the bundled sample of
    one edition (default: every row, for a sample of one edition)."""
    v = sample_values(path)
    if edition is not None and "edition" in v.columns:
        v = v[v["edition"] == str(edition)]
    by = {(r.city_id, r.field): r for r in v.itertuples()}
    cities = sorted(set(v["city_id"]))
    rows = []
    for ind, fields in indicator_fields().items():
        for c in cities:
            found = [by.get((c, f)) for f in fields]
            recs = [r for r in found if r is not None]
            if len(recs) < len(found):
                continue
            real = all(r.status == "real" for r in recs)
            rows.append(
                {
                    "city_id": c,
                    "indicator": ind,
                    "status": "real" if real else "illustrative",
                    "vintage": ";".join(sorted({r.vintage for r in recs if r.vintage})),
                    "value_provenance": " | ".join(sorted({r.provenance for r in recs})),
                }
            )
    return pd.DataFrame(rows, columns=["city_id", "indicator", "status", "vintage", "value_provenance"])
