"""Simple OLS with a 95% confidence band, for the report's section 3.3 scatter plots."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit


@dataclass
class Regression:
    x_name: str
    y_name: str
    n: int
    slope: float
    intercept: float
    p_value: float
    r_squared: float
    line: pd.DataFrame  # x, fit, lower, upper (confidence band of the mean)
    points: pd.DataFrame

    def summary(self) -> dict:
        return {
            "x": self.x_name,
            "y": self.y_name,
            "n": self.n,
            "slope": self.slope,
            "intercept": self.intercept,
            "p_value": self.p_value,
            "r_squared": self.r_squared,
        }


def ols_band(x: pd.Series, y: pd.Series, level: float = 0.95, grid: int = 50) -> Regression:
    df = pd.concat({"x": x, "y": y}, axis=1).dropna()
    n = len(df)
    if n < 3:
        raise ValueError(f"regression of {y.name} on {x.name} needs at least 3 cities with both values, got {n}")
    if df["x"].nunique() < 2:
        raise ValueError(f"regression of {y.name} on {x.name}: {x.name} does not vary")

    X, Y = df["x"].to_numpy(float), df["y"].to_numpy(float)
    dx, dy = X - X.mean(), Y - Y.mean()
    sxx, sxy, syy = (dx**2).sum(), (dx * dy).sum(), (dy**2).sum()
    slope = sxy / sxx
    intercept = Y.mean() - slope * X.mean()
    r = 0.0 if syy == 0 else float(np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0))
    tiny = 1e-20  # as scipy.stats.linregress: |r| = 1 gives p = 0, not a division by zero
    t_slope = r * np.sqrt((n - 2) / ((1.0 - r + tiny) * (1.0 + r + tiny)))
    p_value = 2 * stdtr(n - 2, -abs(t_slope))  # two-sided test of a zero slope
    resid = Y - (intercept + slope * X)
    s = np.sqrt((resid**2).sum() / (n - 2))
    xs = np.linspace(X.min(), X.max(), grid)
    fit = intercept + slope * xs
    se = s * np.sqrt(1 / n + (xs - X.mean()) ** 2 / sxx)
    t = stdtrit(n - 2, 0.5 + level / 2)
    line = pd.DataFrame({"x": xs, "fit": fit, "lower": fit - t * se, "upper": fit + t * se})
    return Regression(
        x_name=str(x.name),
        y_name=str(y.name),
        n=n,
        slope=float(slope),
        intercept=float(intercept),
        p_value=float(p_value),
        r_squared=r**2,
        line=line,
        points=df.reset_index(),
    )


REPORT_REGRESSIONS = [("rent_burden", "negative"), ("pollution_index", "negative"), ("monthly_income", "positive")]


def report_regressions(values: pd.DataFrame, y: str = "foreign_born_share") -> list[Regression]:
    """International-talent share against rent burden, pollution index and monthly income (§3.3)."""
    return [ols_band(values[x], values[y]) for x, _ in REPORT_REGRESSIONS]
