"""Distance to the published 2020 index: the kernel on small cases, and a release's table against
an independent recomputation (scipy's Spearman, the printed figures read straight from the
transcription)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from scoring.fidelity import COLUMNS, fidelity_table, spearman
from tasks.settings import CONFIG_DIR


def test_spearman_small_cases():
    assert spearman(pd.Series([1, 2, 3, 4]), pd.Series([10, 30, 20, 40])) == pytest.approx(0.8)
    assert spearman(pd.Series([1, 2, 3]), pd.Series([3, 2, 1])) == pytest.approx(-1.0)
    assert math.isnan(spearman(pd.Series([1, 2, 3]), pd.Series([5, 5, 5])))


def test_table_on_three_cities():
    ours = pd.DataFrame({"final_score": [80.0, 70.0, 60.0], "economy_score": [50.0, 90.0, 70.0]}, index=["a", "b", "c"])
    printed = pd.DataFrame({"final": [81.0, 66.0, 61.0], "economy": [100.0, None, 80.0]}, index=["a", "b", "c"])
    cov = pd.DataFrame(
        {
            "city_id": ["a", "b", "c", "a"],
            "dimension": ["economy", "economy", "economy", "welfare"],
            "indicator": ["x", "x", "x", "y"],
            "status": ["real", "proxy", "illustrative", "imputed"],
        }
    )
    t = fidelity_table(ours, printed, cov).set_index("scope")
    assert list(t.reset_index().columns) == COLUMNS
    assert t.loc["final", "cities"] == 3 and t.loc["final", "spearman_rho"] == 1.0
    assert t.loc["final", "mae"] == pytest.approx((1 + 4 + 1) / 3, abs=1e-4)
    assert t.loc["final", "largest_differences"].startswith("b printed 66.00 ours 70.00")
    assert t.loc["economy", "cities"] == 2  # b has no printed economy score
    assert t.loc["economy", "mae"] == pytest.approx((50 + 10) / 2)
    assert (t.loc["economy", "share_real"], t.loc["economy", "share_proxy"]) == (pytest.approx(1 / 3, abs=1e-4),) * 2
    assert t.loc["final", "share_imputed"] == 0.25
    assert t.loc["economy", "inputs_by_indicator"] == "x: 1 real, 1 proxy, 1 illustrative"
    assert t.loc["final", "inputs_by_indicator"] == "x: 1 real, 1 proxy, 1 illustrative; y: 1 imputed"


def printed_independently() -> dict[str, dict[str, float]]:
    """scope -> city -> printed score, read from the transcription without scoring.audit."""
    pub = yaml.safe_load((CONFIG_DIR / "published" / "report_2020.yaml").read_text(encoding="utf-8"))
    out = {"final": {c: float(v[1]) for c, v in pub["final"].items()}}
    for dim, scopes in pub["dimension_scores"].items():
        d = out.setdefault(dim, {})
        for scope in ("international", "domestic"):  # an international figure wins over a domestic one
            for city, row in (scopes.get(scope) or {}).items():
                d.setdefault(city, float(row[1]))
        card = pub["beijing_card"].get(dim)
        if card and card[2] is not None:
            d.setdefault("beijing", float(card[2]))
    return out


def test_release_fidelity_equals_an_independent_recomputation(baseline):
    from scipy.stats import spearmanr  # here: imported at collection it costs every worker seconds

    release = next((baseline / "releases").glob("2020-*"))
    fid = pd.read_csv(release / "fidelity_2020.csv").set_index("scope")
    index = pd.read_parquet(release / "index.parquet").set_index("city_id")
    coverage = pd.read_csv(release / "coverage.csv")
    printed = printed_independently()
    assert set(fid.index) == {"final", "economy", "innovation", "openness", "ecology", "welfare", "affordability"}
    for scope, row in fid.iterrows():
        col = "final_score" if scope == "final" else f"{scope}_score"
        cities = sorted(printed[scope])
        ours = index.loc[cities, col]
        pub = pd.Series(printed[scope])[cities]
        assert row["cities"] == len(cities)
        assert row["spearman_rho"] == pytest.approx(spearmanr(pub, ours).statistic, abs=1e-4), scope
        assert row["mae"] == pytest.approx((ours - pub).abs().mean(), abs=1e-4), scope
        behind = coverage if scope == "final" else coverage[coverage["dimension"] == scope]
        assert row["share_proxy"] == pytest.approx((behind["status"] == "proxy").mean(), abs=1e-4)
    # what the sample reaches today; a change of data or method that moves it shows here
    assert fid.loc["final", "cities"] == 30
    assert fid.loc["final", "spearman_rho"] == pytest.approx(0.9155, abs=5e-4)
    assert fid.loc["final", "mae"] == pytest.approx(2.695, abs=5e-3)
