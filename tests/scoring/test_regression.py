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
