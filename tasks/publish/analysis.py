"""Glue between releases and the analyses of `scoring/`: audit, uncertainty, regressions."""

from __future__ import annotations

import pandas as pd
import yaml

from scoring import IndexResult, Methodology
from scoring.audit import audit_2020, city_dimension_scores, variant_comparison
from scoring.methodology import YAML_LOADER
from scoring.regression import report_regressions
from scoring.uncertainty import monte_carlo
from tasks import csvsafe
from tasks.settings import CONFIG_DIR

PUBLISHED = CONFIG_DIR / "published" / "report_2020.yaml"


def load_published() -> dict:
    return yaml.load(PUBLISHED.read_text(encoding="utf-8"), Loader=YAML_LOADER)


def real_numbeo_2020(fields=("pollution_index", "climate_index")) -> pd.DataFrame:
    """The real Numbeo 2020-edition values bundled with the sample (data/sample/values.csv)."""
    v = pd.read_csv(CONFIG_DIR / "sample" / "values.csv", dtype=str, keep_default_na=False)
    v = v[(v["edition"] == "2020") & (v["status"] == "real") & (v["vintage"] == "2020") & v["field"].isin(fields)]
    return v.pivot(index="city_id", columns="field", values="value").astype(float)[list(fields)].dropna()


def audit_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The audit of the printed figures, and the ecology variant comparison on real Numbeo data."""
    pub = load_published()
    checks = audit_2020(pub)
    printed = city_dimension_scores(pub)["ecology"].dropna()
    variants = variant_comparison(real_numbeo_2020(), [-1, 1], printed)
    variants.insert(0, "dimension", "ecology")
    return checks, variants


def raw_values(result: IndexResult) -> pd.DataFrame:
    """Indicator values as ingested (imputed ones back to NaN), cities x indicators."""
    ind = result.indicators
    vals = ind.assign(value=ind["value"].where(~ind["imputed"]))
    return vals.pivot(index="city_id", columns="indicator", values="value")


def default_draws(n_cities: int) -> int:
    """10,000 draws up to 2,000 cities, then fewer, so the rank table stays about 20 M entries."""
    return int(max(160, min(10_000, 20_000_000 // max(n_cities, 1))))


def release_analyses(result: IndexResult, methodology: Methodology, draws: int | None = None, seed: int = 2020) -> dict:
    """CSV files the release stores beside the index: audit, uncertainty, regressions."""
    files = {}
    draws = draws or default_draws(len(result.index))
    checks, variants = audit_tables()
    files["audit_2020.csv"] = checks.to_csv(index=False).encode()
    files["audit_2020_variants.csv"] = variants.to_csv(index=False).encode()
    values = raw_values(result)
    mc = monte_carlo(values, methodology, draws=draws, seed=seed)
    files["uncertainty.csv"] = mc.ranks.reset_index().to_csv(index=False, float_format="%.4f").encode()
    files["uncertainty_shares.csv"] = (
        mc.shares.assign(draws=mc.draws, seed=mc.seed, concentration=mc.concentration).to_csv(index=False).encode()
    )
    regs = report_regressions(result.indicators.pivot(index="city_id", columns="indicator", values="value"))
    files["regressions.csv"] = pd.DataFrame([r.summary() for r in regs]).to_csv(index=False).encode()
    files["regression_lines.csv"] = (
        pd.concat([r.line.assign(x_name=r.x_name, y_name=r.y_name) for r in regs]).to_csv(index=False).encode()
    )
    return files


def fidelity_files(edition: str, table: pd.DataFrame, coverage: pd.DataFrame) -> dict[str, bytes]:
    """`fidelity_<edition>.csv` when the report printed that edition (2020), else nothing."""
    from scoring.fidelity import fidelity_table, printed_scores

    pub = load_published()
    if str(edition) != str(pub["edition"]):
        return {}
    fid = fidelity_table(table.set_index("city_id"), printed_scores(pub), coverage)
    return {f"fidelity_{edition}.csv": csvsafe.to_csv(fid, index=False).encode()}


def printed_editions() -> list[str]:
    """Editions whose figures the report printed (what a release can be compared with)."""
    return [str(load_published()["edition"])]
