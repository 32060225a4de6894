"""Which sample values are real and which illustrative (from data/sample/values.csv)."""

from __future__ import annotations

import pandas as pd

from .settings import CONFIG_DIR

# indicator -> fields of values.csv it is computed from (all real => real)
FIELDS = {
    "pollution_index": ["pollution_index"], "climate_index": ["climate_index"],
    "cost_of_living_index": ["cost_of_living_index"], "commute_index": ["traffic_commute_time_index"],
    "house_price_index": ["property_price_to_income_ratio"], "safety_index": ["safety_index"],
    "monthly_income": ["monthly_net_salary_eur"], "rent_burden": ["monthly_net_salary_eur", "rent_1br_centre_eur"],
    "unicorns": ["unicorns"], "night_lights": ["peak_radiance"],
}


def sample_status(path=None) -> pd.DataFrame:
    """city_id, indicator, status (real|illustrative), vintage, provenance of the bundled sample."""
    v = pd.read_csv(path or CONFIG_DIR / "sample" / "values.csv", dtype=str, keep_default_na=False)
    by = {(r.city_id, r.field): r for r in v.itertuples()}
    cities = sorted(set(v["city_id"]))
    curated = sorted(set(v.loc[v["source"] == "curated", "field"]))
    rows = []
    for ind in list(FIELDS) + curated:
        fields = FIELDS.get(ind, [ind])
        for c in cities:
            recs = [by.get((c, f)) for f in fields]
            if any(r is None for r in recs):
                continue
            real = all(r.status == "real" for r in recs)
            rows.append({"city_id": c, "indicator": ind, "status": "real" if real else "illustrative",
                         "vintage": ";".join(sorted({r.vintage for r in recs if r.vintage})),
                         "value_provenance": " | ".join(sorted({r.provenance for r in recs}))})
    return pd.DataFrame(rows)
