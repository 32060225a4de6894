"""OLS with a confidence band (section 3.3 charts)."""

import numpy as np
import pandas as pd
import pytest

from scoring.regression import ols_band, report_regressions


def test_known_line_and_band():
    rng = np.random.default_rng(4)
    x = pd.Series(np.linspace(0, 10, 30), name="rent_burden")
    y = pd.Series(5 - 2 * x + rng.normal(0, 0.5, 30), name="foreign_born_share")
    r = ols_band(x, y)
    slope, intercept = np.polyfit(x, y, 1)
    assert r.slope == pytest.approx(slope) and r.intercept == pytest.approx(intercept)
    assert r.slope == pytest.approx(-2, abs=0.1) and r.p_value < 1e-10 and r.r_squared > 0.95
    assert (r.line["lower"] < r.line["fit"]).all() and (r.line["fit"] < r.line["upper"]).all()
    width = r.line["upper"] - r.line["lower"]
    assert width.iloc[len(width) // 2] < width.iloc[0]  # narrowest near the mean of x


def test_the_same_figures_as_scipy_stats():
    """Slope, intercept, p-value and r squared as scipy.stats.linregress gives them, and the band's t
    quantile as scipy.stats.t.ppf (figures printed by scipy 1.17 for these data)."""
    rng = np.random.default_rng(4)
    x = pd.Series(np.linspace(0, 10, 30), name="rent_burden")
    y = pd.Series(5 - 2 * x + rng.normal(0, 3, 30), name="foreign_born_share")
    r = ols_band(x, y)
    assert r.slope == pytest.approx(-2.15515478109651, rel=1e-12)
    assert r.intercept == pytest.approx(5.349714333872712, rel=1e-12)
    assert r.p_value == pytest.approx(5.190077030309047e-11, rel=1e-9)
    assert r.r_squared == pytest.approx(0.7906084230484369, rel=1e-12)
    small = ols_band(pd.Series([0.3, 0.5, 0.7, 0.9], name="x"), pd.Series([40, 30, 20, 12.0], name="y"), grid=2)
    assert (small.slope, small.intercept) == (pytest.approx(-47.0), pytest.approx(53.7))
    assert small.p_value == pytest.approx(0.001355320252362402, rel=1e-9)
    # the band at x = 0.3: fit -/+ t(0.975, 2) * s * sqrt(1/n + (x - mean)^2 / Sxx)
    s = np.sqrt(((np.array([40, 30, 20, 12.0]) - (53.7 - 47.0 * np.array([0.3, 0.5, 0.7, 0.9]))) ** 2).sum() / 2)
    half = 4.302652729749462 * s * np.sqrt(1 / 4 + 0.3**2 / 0.2)
    assert small.line.loc[0, "upper"] - small.line.loc[0, "fit"] == pytest.approx(half, rel=1e-9)
    flat = ols_band(pd.Series([1.0, 2, 3], name="x"), pd.Series([5.0, 5, 5], name="y"))
    assert (flat.slope, flat.r_squared, flat.p_value) == (0.0, 0.0, 1.0)  # as linregress: r = 0 when y is constant


def test_the_three_report_regressions_and_errors():
    df = pd.DataFrame(
        {
            "rent_burden": [0.3, 0.5, 0.7, 0.9],
            "pollution_index": [20, 40, 60, 80],
            "monthly_income": [4000, 3000, 2500, 1000],
            "foreign_born_share": [40, 30, 20, 12],
        }
    )
    regs = report_regressions(df)
    assert [r.x_name for r in regs] == ["rent_burden", "pollution_index", "monthly_income"]
    assert regs[0].slope < 0 and regs[2].slope > 0
    with pytest.raises(ValueError, match="at least 3 cities"):
        ols_band(df["rent_burden"].head(2), df["foreign_born_share"].head(2))
