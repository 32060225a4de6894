"""Glue between releases and the analyses of `scoring/`: audit, uncertainty, regressions.

The audit's variant comparison scores one dimension the report printed (`AUDITED_DIMENSION`) under
each method variant, on the real values a release holds of the printed edition's vintage: a release
of another edition has none, and carries no variant table (`talent-index audit-2020` then reads
the latest release of the printed edition)."""

from __future__ import annotations

import pandas as pd
import yaml

from scoring import IndexResult, Methodology
from scoring.audit import audit_2020, city_dimension_scores, variant_comparison
from scoring.fidelity import fidelity_table, printed_scores
from scoring.methodology import YAML_LOADER
from scoring.regression import report_regressions
from scoring.uncertainty import monte_carlo
from tasks import csvsafe
from tasks.publish.categories import equals_text, pivoted
from tasks.settings import CONFIG_DIR

PUBLISHED = CONFIG_DIR / "published" / "report_2020.yaml"
AUDITED_DIMENSION = "ecology"  # the one dimension whose every indicator has real values of 2020
MIN_CITIES = 3  # fewer real values than this: no variant comparison


def load_published() -> dict:
    return yaml.load(PUBLISHED.read_text(encoding="utf-8"), Loader=YAML_LOADER)


def audit_checks() -> pd.DataFrame:
    """What the report's own printed figures allow to recompute (needs no data)."""
    return audit_2020(load_published())


def variant_values(coverage: pd.DataFrame, methodology: Methodology) -> pd.DataFrame:
    """Cities x indicators of the audited dimension: the release's real values whose vintage is the
    printed edition (a city lacking one of them is left out)."""
    pub = load_published()
    ids = [i.id for i in methodology.indicators if i.dimension == AUDITED_DIMENSION]
    c = coverage[
        coverage["indicator"].isin(ids)
        & (coverage["status"] == "real")
        & equals_text(coverage["vintage"], str(pub["edition"]))
    ]
    wide = c.pivot_table(index="city_id", columns="indicator", values="value", aggfunc="first")
    return wide.reindex(columns=ids).dropna().astype(float)


def variant_table(coverage: pd.DataFrame, methodology: Methodology) -> pd.DataFrame | None:
    """Which method variant reproduces the printed scores of the audited dimension best, on the
    release's real values (None when it has fewer than MIN_CITIES)."""
    values = variant_values(coverage, methodology)
    if len(values) < MIN_CITIES:
        return None
    directions = [methodology.indicator(i).direction for i in values.columns]
    printed = city_dimension_scores(load_published())[AUDITED_DIMENSION].dropna()
    variants = variant_comparison(values, directions, printed)
    variants.insert(0, "dimension", AUDITED_DIMENSION)
    return variants


def raw_values(result: IndexResult) -> pd.DataFrame:
    """Indicator values as ingested (imputed ones back to NaN), cities x indicators."""
    ind = result.indicators[["city_id", "indicator", "value", "imputed"]]
    return pivoted(ind.assign(value=ind["value"].where(~ind["imputed"])), "city_id", "indicator", "value")


def default_draws(n_cities: int) -> int:
    """10,000 draws up to 2,000 cities, then fewer, so the rank table stays about 20 M entries."""
    return int(max(160, min(10_000, 20_000_000 // max(n_cities, 1))))


def release_analyses(
    result: IndexResult,
    methodology: Methodology,
    coverage: pd.DataFrame,
    draws: int | None = None,
    seed: int = 2020,
) -> dict:
    """CSV files the release stores beside the index: audit, uncertainty, regressions."""
    files = {}
    draws = draws or default_draws(len(result.index))
    files["audit_2020.csv"] = audit_checks().to_csv(index=False).encode()
    variants = variant_table(coverage, methodology)
    if variants is not None:
        files["audit_2020_variants.csv"] = variants.to_csv(index=False).encode()
    values = raw_values(result)
    mc = monte_carlo(values, methodology, draws=draws, seed=seed)
    files["uncertainty.csv"] = mc.ranks.reset_index().to_csv(index=False, float_format="%.4f").encode()
    files["uncertainty_shares.csv"] = (
        mc.shares.assign(draws=mc.draws, seed=mc.seed, concentration=mc.concentration).to_csv(index=False).encode()
    )
    regs = report_regressions(pivoted(result.indicators, "city_id", "indicator", "value"))
    files["regressions.csv"] = pd.DataFrame([r.summary() for r in regs]).to_csv(index=False).encode()
    files["regression_lines.csv"] = (
        pd.concat([r.line.assign(x_name=r.x_name, y_name=r.y_name) for r in regs]).to_csv(index=False).encode()
    )
    return files


def fidelity_files(edition: str, table: pd.DataFrame, coverage: pd.DataFrame) -> dict[str, bytes]:
    """`fidelity_<edition>.csv` when the report printed that edition (2020), else nothing."""

    pub = load_published()
    if str(edition) != str(pub["edition"]):
        return {}
    fid = fidelity_table(
        table.set_index("city_id"), printed_scores(pub), coverage[["city_id", "dimension", "indicator", "status"]]
    )
    return {f"fidelity_{edition}.csv": csvsafe.to_csv(fid, index=False).encode()}


def printed_editions() -> list[str]:
    """Editions whose figures the report printed (what a release can be compared with)."""
    return [str(load_published()["edition"])]
