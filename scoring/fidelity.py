"""Distance of a release to the figures the 2020 report printed: per scope (the final score and
each dimension), the cities both have, Spearman's rho of the scores, the mean absolute difference in
points, the largest differences, the share of real / proxy / illustrative / imputed inputs behind
the scope, and per indicator how many of its values are each.

Pure functions: the printed figures come in as the transcription `data/published/report_2020.yaml`
(`scoring.audit.city_dimension_scores` reads its dimension figures), the release's scores and
coverage as tables.
"""

from __future__ import annotations

import pandas as pd

from .audit import DIMENSIONS, city_dimension_scores, spearman

STATUSES = ("real", "proxy", "illustrative", "imputed")
COLUMNS = [
    "scope",
    "cities",
    "spearman_rho",
    "mae",
    "largest_differences",
    *[f"share_{s}" for s in STATUSES],
    "inputs_by_indicator",
]


def printed_scores(pub: dict) -> pd.DataFrame:
    """city_id x (final, economy, …): every score the report printed (NaN where it printed none)."""
    final = pd.Series({c: float(v[1]) for c, v in pub["final"].items()}, name="final")
    dims = city_dimension_scores(pub)
    return pd.concat([final, dims], axis=1)


def inputs_by_indicator(coverage: pd.DataFrame) -> str:
    """'night_lights: 24 proxy, 6 imputed; economic_sustainability: 20 proxy, 10 illustrative': what
    each indicator of a scope stands on (why a dimension is near or far from the print)."""
    parts = []
    for ind, g in coverage.groupby("indicator", sort=False):
        counts = g["status"].value_counts()
        parts.append(f"{ind}: " + ", ".join(f"{int(counts[s])} {s}" for s in STATUSES if s in counts))
    return "; ".join(parts)


def fidelity_table(ours: pd.DataFrame, printed: pd.DataFrame, coverage: pd.DataFrame, largest: int = 3) -> pd.DataFrame:
    """One row per scope.

    ours: indexed by city_id, with `final_score` and `<dimension>_score` columns (a release's index).
    printed: `printed_scores()`.
    coverage: city_id, dimension, indicator, status (a release's coverage table).
    """
    rows = []
    for scope in ["final", *DIMENSIONS]:
        col = "final_score" if scope == "final" else f"{scope}_score"
        if col not in ours or scope not in printed:
            continue
        both = pd.concat([printed[scope].rename("printed"), ours[col].rename("ours")], axis=1, join="inner").dropna()
        diff = (both["ours"] - both["printed"]).abs().sort_values(ascending=False, kind="stable")
        behind = coverage if scope == "final" else coverage[coverage["dimension"] == scope]
        shares = behind["status"].value_counts(normalize=True)
        rows.append(
            {
                "scope": scope,
                "cities": len(both),
                "spearman_rho": round(spearman(both["printed"], both["ours"]), 4) if len(both) > 2 else float("nan"),
                "mae": round(float(diff.mean()), 4) if len(both) else float("nan"),
                "largest_differences": "; ".join(
                    f"{c} printed {both.at[c, 'printed']:.2f} ours {both.at[c, 'ours']:.2f}"
                    for c in diff.index[:largest]
                ),
                **{f"share_{s}": round(float(shares.get(s, 0.0)), 4) for s in STATUSES},
                "inputs_by_indicator": inputs_by_indicator(behind),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
