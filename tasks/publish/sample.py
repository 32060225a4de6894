"""Which sample values are real, proxy or illustrative (from data/sample/values.csv), per edition.

A proxy is a published figure of another scope or definition than the indicator asks for (a
country's value for its city, a rank for a score); its row says what it stands in for and how it was
transformed.

Which fields of values.csv stand behind an indicator is declared by each source (`sample_fields`)."""

from __future__ import annotations

import pandas as pd

from tasks.settings import CONFIG_DIR
from tasks.sources import all_sources

VALUES = CONFIG_DIR / "sample" / "values.csv"


def indicator_fields() -> dict[str, list[str]]:
    """indicator -> fields of values.csv it is computed from (all real => real), over every source."""

    out: dict[str, list[str]] = {}
    for spec in all_sources().values():
        out.update(spec.sample_fields)
    return out


def sample_values(path=None) -> pd.DataFrame:
    return pd.read_csv(path or VALUES, dtype=str, keep_default_na=False)


def sample_status(edition: str | None = None, path=None) -> pd.DataFrame:
    """city_id, indicator, status (real|proxy|illustrative), vintage, provenance, stands_for and
    transform of the bundled sample of one edition (default: every row, for a sample of one edition).
    An indicator computed from several fields is as weak as its weakest: illustrative if any is,
    else proxy if any is, else real."""
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
            statuses = {r.status for r in recs}
            status = next(s for s in ("illustrative", "proxy", "real") if s in statuses or s == "real")
            rows.append(
                {
                    "city_id": c,
                    "indicator": ind,
                    "status": status,
                    "vintage": ";".join(sorted({r.vintage for r in recs if r.vintage})),
                    "value_provenance": " | ".join(sorted({r.provenance for r in recs})),
                    "stands_for": " | ".join(sorted({getattr(r, "stands_for", "") for r in recs} - {""})),
                    "transform": " | ".join(sorted({getattr(r, "transform", "") for r in recs} - {""})),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


COLUMNS = ["city_id", "indicator", "status", "vintage", "value_provenance", "stands_for", "transform"]
