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


def test_the_three_report_regressions_and_errors():
    df = pd.DataFrame({"rent_burden": [0.3, 0.5, 0.7, 0.9], "pollution_index": [20, 40, 60, 80],
                       "monthly_income": [4000, 3000, 2500, 1000], "foreign_born_share": [40, 30, 20, 12]})
    regs = report_regressions(df)
    assert [r.x_name for r in regs] == ["rent_burden", "pollution_index", "monthly_income"]
    assert regs[0].slope < 0 and regs[2].slope > 0
    with pytest.raises(ValueError, match="at least 3 cities"):
        ols_band(df["rent_burden"].head(2), df["foreign_born_share"].head(2))


@pytest.mark.parametrize("seed,n,noise", [(1, 30, 5.0), (2, 13, 40.0), (3, 5, 1.0), (5, 200, 100.0)])
def test_fit_and_band_agree_with_scipy_stats(seed, n, noise):
    from scipy import stats

    rng = np.random.default_rng(seed)
    x = pd.Series(rng.uniform(0, 50, n), name="pollution_index")
    y = pd.Series(30 + 0.3 * x + rng.normal(0, noise, n), name="foreign_born_share")
    r, ref = ols_band(x, y), stats.linregress(x, y)
    assert (r.slope, r.intercept, r.r_squared) == pytest.approx((ref.slope, ref.intercept, ref.rvalue**2), rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    s = np.sqrt(((y - ref.intercept - ref.slope * x) ** 2).sum() / (n - 2))
    half = stats.t.ppf(0.975, n - 2) * s * np.sqrt(1 / n + (r.line["x"] - x.mean()) ** 2 / ((x - x.mean()) ** 2).sum())
    np.testing.assert_allclose(r.line["upper"] - r.line["fit"], half, rtol=1e-10)


def test_a_perfect_line_has_p_value_zero():
    x = pd.Series([1.0, 2.0, 3.0, 4.0], name="monthly_income")
    r = ols_band(x, 2 * x + 1)
    assert (r.slope, r.intercept, r.r_squared, r.p_value) == pytest.approx((2.0, 1.0, 1.0, 0.0))
