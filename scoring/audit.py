"""Audit of the 2020 report: recompute what can be recomputed from its own printed figures.

Pure functions over the transcription in `data/published/report_2020.yaml`; the result is a table
of agreements and discrepancies. Discrepancies are reported, never fitted away.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .entropy import entropy_weights
from .topsis import minmax_normalize, rescale_50_100, topsis

DIMENSIONS = ["economy", "innovation", "openness", "ecology", "welfare", "affordability"]
ROUNDING = 0.005  # printed to two decimals


def _row(check, subject, recomputed, printed, tol=ROUNDING, note=""):
    diff = None if recomputed is None or printed is None else float(recomputed) - float(printed)
    return {
        "check": check,
        "subject": subject,
        "recomputed": None if recomputed is None else round(float(recomputed), 4),
        "printed": printed,
        "difference": None if diff is None else round(diff, 4),
        "agrees": bool(diff is not None and abs(diff) <= tol + 1e-9),
        "note": note,
    }


def city_dimension_scores(pub: dict) -> pd.DataFrame:
    """Every printed dimension score by city (international figures first, then domestic, then the card)."""
    rows: dict[tuple[str, str], float] = {}
    for dim, scopes in pub["dimension_scores"].items():
        for scope in ("international", "domestic"):
            for city, (_, score, _fig) in scopes.get(scope, {}).items():
                rows.setdefault((city, dim), float(score))
    for key, (_, _, score) in pub["beijing_card"].items():
        if key in DIMENSIONS and score is not None:
            rows.setdefault(("beijing", key), float(score))
    s = pd.Series(rows)
    s.index = pd.MultiIndex.from_tuples(s.index, names=["city_id", "dimension"])
    return s.unstack("dimension").reindex(columns=DIMENSIONS)


def audit_2020(pub: dict) -> pd.DataFrame:
    weights = pub["dimension_weights"]
    final = {c: float(v[1]) for c, v in pub["final"].items()}
    rank = {c: int(v[0]) for c, v in pub["final"].items()}
    dims = city_dimension_scores(pub)
    rows = [_row("weights sum to 1", "dimension weights", sum(weights.values()), 1.0, tol=1e-9)]

    # 1. cluster means from member cities (final and every dimension), where every member is printed
    derived = {}
    for cid, cl in pub["clusters"].items():
        members = cl["members"]
        for col, printed in cl["scores"].items():
            vals = [final.get(m) if col == "final" else dims.get(col, pd.Series(dtype=float)).get(m) for m in members]
            if all(v is not None and not pd.isna(v) for v in vals):
                rows.append(_row("cluster mean", f"{cid}.{col}", float(np.mean(vals)), printed))  # type: ignore[arg-type]
            elif sum(v is None or pd.isna(v) for v in vals) == 1:
                missing = members[[v is None or pd.isna(v) for v in vals].index(True)]
                known = [v for v in vals if v is not None and not pd.isna(v)]
                derived[(missing, col)] = printed * len(members) - sum(known)

    # 2. a derived city (e.g. Tianjin from the Jing-Jin-Ji means) checked against its printed final
    derived_cities = sorted({c for c, _ in derived})
    for city in derived_cities:
        if (city, "final") in derived and city in final:
            rows.append(
                _row(
                    "city value derived from cluster mean",
                    f"{city}.final",
                    derived[(city, "final")],
                    final[city],
                    tol=0.01,
                    note="2 x cluster mean - other member",
                )
            )

    # 3. final score = sum of weight x printed dimension scores
    full = {c: dims.loc[c].to_dict() for c in dims.index if dims.loc[c].notna().all()}
    for city in derived_cities:
        known = dims.loc[city].to_dict() if city in dims.index else {}
        by_dim = {d: derived.get((city, d), known.get(d)) for d in DIMENSIONS}
        if all(v is not None and not pd.isna(v) for v in by_dim.values()) and city not in full:
            full[city] = by_dim
    for city, vals in sorted(full.items()):
        ws = sum(weights[d] * vals[d] for d in DIMENSIONS)
        how = "dimension scores derived from cluster means" if city in derived_cities else "printed dimension scores"
        rows.append(
            _row(
                "final = weighted sum of dimension scores",
                city,
                ws,
                final.get(city),
                note=f"{how}; printed weights are rounded, but an offset this large is not rounding",
            )
        )

    # 4. printed ranks follow printed scores
    order = sorted(final, key=lambda c: -final[c])
    bad = [c for i, c in enumerate(order, start=1) if rank[c] != i and final[c] != final[order[i - 2]]]
    rows.append(
        {
            "check": "final ranks follow final scores",
            "subject": "Table 3",
            "recomputed": len(order) - len(bad),
            "printed": len(order),
            "difference": -len(bad),
            "agrees": not bad,
            "note": ", ".join(bad),
        }
    )
    for dim, scopes in pub["dimension_scores"].items():
        for scope, cities in scopes.items():
            items = sorted(cities.items(), key=lambda kv: kv[1][0])
            scores = [float(v[1]) for _, v in items]
            ok = all(a >= b for a, b in itertools.pairwise(scores))
            rows.append(
                {
                    "check": "dimension ranks follow scores",
                    "subject": f"{dim} ({scope})",
                    "recomputed": ok,
                    "printed": True,
                    "difference": None,
                    "agrees": ok,
                    "note": "",
                }
            )
            if scope == "international" and items[0][1][0] == 1:
                rows.append(
                    _row("best city of a dimension scores 100", f"{dim}: {items[0][0]}", 100.0, float(items[0][1][1]))
                )

    # 5. the same figure printed twice
    card_welfare = pub["beijing_card"]["welfare"][2]
    other = pub.get("other_printings", {}).get("beijing_welfare_fig11")
    if other is not None:
        rows.append(
            _row("same value printed twice", "beijing.welfare (Fig. 4 vs Fig. 11)", card_welfare, other, tol=0.0)
        )
    # 6. Beijing's card ranks agree with the rankings
    card_final = pub["beijing_card"]["talent_retention_index"]
    rows.append(_row("city card agrees with Table 3", "beijing.final", card_final[2], final["beijing"], tol=0.0))
    return pd.DataFrame(rows)


VARIANTS = [
    ("entropy on raw values + min-max TOPSIS", "raw", "minmax"),
    ("entropy on raw values + vector TOPSIS", "raw", "vector"),
    ("equal weights + vector TOPSIS", "equal", "vector"),
    ("entropy on min-max values + vector TOPSIS", "minmax", "vector"),
    ("entropy on min-max values + min-max TOPSIS", "minmax", "minmax"),
]


def spearman(a: pd.Series, b: pd.Series) -> float:
    """Spearman's rho: Pearson's correlation of the ranks (ties get their mean rank)."""
    ra, rb = a.rank(method="average"), b.rank(method="average")
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def variant_comparison(values: pd.DataFrame, directions, printed: pd.Series, low=50.0, high=100.0) -> pd.DataFrame:
    """Which normalisation variant reproduces the printed scores of one dimension best.

    values: cities x indicators (real source values, only the cities that have them);
    printed: the report's scores of that dimension for the cities it prints.
    Scores are computed on all cities in `values`, compared on those also in `printed`.
    """

    X = values.to_numpy(dtype=float)
    common = [c for c in values.index if c in printed.index]
    rows = []
    for name, entropy_input, norm in VARIANTS:
        if entropy_input == "equal":
            w = np.full(X.shape[1], 1.0 / X.shape[1])
        else:
            w = entropy_weights(X if entropy_input == "raw" else minmax_normalize(X, directions))
        s = pd.Series(rescale_50_100(topsis(X, w, directions, norm), low, high), index=values.index)
        both = pd.concat({"ours": s[common], "printed": printed[common]}, axis=1).dropna()
        rho = spearman(both["ours"], both["printed"])
        mae = float((s[common] - printed[common]).abs().mean())
        rows.append(
            {
                "variant": name,
                "entropy_input": entropy_input,
                "topsis_normalization": norm,
                "cities_scored": len(values),
                "cities_compared": len(common),
                "spearman_rho": round(float(rho), 3),
                "mae_points": round(mae, 2),
            }
        )
    return (
        pd.DataFrame(rows).sort_values(["spearman_rho", "mae_points"], ascending=[False, True]).reset_index(drop=True)
    )
