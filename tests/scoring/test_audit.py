"""The audit of the 2020 report's printed figures and the variant comparison."""

import pandas as pd
import pytest

from scoring import load_methodology
from tasks.publish.analysis import audit_checks, variant_table


@pytest.fixture(scope="module")
def tables(baseline):
    """The checks, and the variants scored on the real 2020 values of the baseline's 2020 release."""
    release = next(p for p in (baseline / "releases").iterdir() if p.name.startswith("2020-"))
    variants = variant_table(pd.read_csv(release / "coverage.csv"), load_methodology())
    assert variants is not None
    assert (release / "audit_2020_variants.csv").read_text() == variants.to_csv(index=False)  # what it published
    return audit_checks(), variants


def test_weighted_sum_discrepancies_are_reported(tables):
    checks, _ = tables
    ws = checks[checks["check"] == "final = weighted sum of dimension scores"].set_index("subject")
    assert ws.loc["beijing", "recomputed"] == pytest.approx(71.40, abs=0.005)
    assert ws.loc["beijing", "printed"] == 71.92 and not ws.loc["beijing", "agrees"]
    assert ws.loc["tianjin", "recomputed"] == pytest.approx(53.16, abs=0.005)
    assert ws.loc["tianjin", "printed"] == 53.67 and not ws.loc["tianjin", "agrees"]


def test_all_13_recomputable_cluster_means_agree(tables):
    checks, _ = tables
    clusters = checks[checks["check"] == "cluster mean"]
    assert len(clusters) == 13 and clusters["agrees"].all()
    assert clusters["difference"].abs().max() <= 0.005


def test_beijing_welfare_printed_twice_differently(tables):
    checks, _ = tables
    row = checks[checks["check"] == "same value printed twice"].iloc[0]
    assert (row["recomputed"], row["printed"], row["agrees"]) == (65.53, 65.54, False)


def test_ranks_follow_scores_and_best_is_100(tables):
    checks, _ = tables
    assert checks[checks["check"].str.contains("ranks follow")]["agrees"].all()
    assert checks[checks["check"] == "best city of a dimension scores 100"]["agrees"].sum() == 6


def test_variant_comparison_reproduces_the_evidence(tables):
    _, variants = tables
    v = variants.set_index("variant")
    best = v.loc["entropy on raw values + min-max TOPSIS"]
    assert (best["spearman_rho"], best["mae_points"]) == (0.986, 1.67)
    assert (best["cities_scored"], best["cities_compared"]) == (19, 12)
    textbook = v.loc["entropy on min-max values + min-max TOPSIS"]
    assert textbook["spearman_rho"] == pytest.approx(0.52, abs=0.01) and textbook["mae_points"] == pytest.approx(
        10.1, abs=0.05
    )
    assert v.loc["equal weights + vector TOPSIS", "spearman_rho"] == pytest.approx(0.94, abs=0.005)
    assert variants.iloc[0]["variant"] == "entropy on raw values + min-max TOPSIS"


def test_audit_command(capsys):
    from typer.testing import CliRunner

    from talent_index.cli import app

    res = CliRunner().invoke(app, ["audit-2020", "--csv"])
    assert res.exit_code == 0
    assert "final = weighted sum of dimension scores,beijing,71.3952,71.92,-0.5248,False" in res.stdout


def test_the_variants_need_real_values_of_the_printed_edition(tables):
    """A release of another edition holds none: no variant table, rather than one on other years."""
    coverage = pd.DataFrame(
        {
            "city_id": ["beijing", "beijing", "shanghai", "shanghai", "london", "london"],
            "indicator": ["pollution_index", "climate_index"] * 3,
            "value": [50.0, 60.0, 40.0, 70.0, 30.0, 80.0],
            "status": "real",
            "vintage": "2026",
        }
    )
    assert variant_table(coverage, load_methodology()) is None
    assert variant_table(coverage.assign(vintage="2020"), load_methodology()) is not None


def test_audit_command_scores_the_variants_on_the_latest_2020_release(baseline, monkeypatch):
    from typer.testing import CliRunner

    from talent_index.cli import app

    monkeypatch.setenv("TALENT_INDEX_HOME", str(baseline))  # read only
    res = CliRunner().invoke(app, ["audit-2020"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    assert "real values of release 2020-sample-2026-11-26" in res.stdout
    assert "entropy on raw values + min-max TOPSIS" in res.stdout
