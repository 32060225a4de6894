"""The whole index: per-dimension entropy-weight TOPSIS, dimension weights, final score, ranks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .entropy import entropy_weights
from .methodology import Methodology
from .topsis import minmax_normalize, rescale_50_100, topsis
from .weights import multiple_correlation_weights


class ScoringError(ValueError):
    """The indicator table cannot be scored as asked."""


@dataclass
class IndexResult:
    """Everything a release writes about the scores."""

    index: pd.DataFrame  # one row per city: final score, ranks, dimension scores and ranks
    indicators: pd.DataFrame  # long: city, dimension, indicator (categories), value, normalised, weight, ranks, imputed
    indicator_weights: pd.DataFrame  # dimension, indicator, weight
    dimension_weights: pd.Series  # dimension -> weight actually used
    dimension_weights_mode: str
    clusters: pd.DataFrame  # cluster -> final and dimension means
    coverage: pd.DataFrame  # indicator -> present, missing, cities, action
    methodology: dict
    warnings: list[str] = field(default_factory=list)


def rank_desc(s: pd.Series) -> pd.Series:
    """1 = best (highest); ties share the best rank; NaN stays NaN."""
    return s.rank(ascending=False, method="min").astype("Int64")


def _rank_by_direction(s: pd.Series, direction: int) -> pd.Series:
    return s.rank(ascending=direction < 0, method="min").astype("Int64")


def dimension_scores(values, directions, m: Methodology):
    """Entropy weights, closeness and [low, high] scores of one dimension (cities x indicators,
    a DataFrame or an array without missing values)."""
    X = np.asarray(values, dtype=float)
    entropy_matrix = X if m.entropy_input == "raw" else minmax_normalize(X, directions)
    try:
        w = entropy_weights(entropy_matrix, zero_rule=m.zero_rule, epsilon=m.epsilon)
    except ValueError as exc:
        cols = list(values.columns) if isinstance(values, pd.DataFrame) else f"{X.shape[1]} indicators"
        raise ScoringError(f"entropy weights of indicators {cols}: {exc}") from exc
    c = topsis(X, w, directions, normalization=m.topsis_normalization)
    s = rescale_50_100(c, m.scale_low, m.scale_high)
    return w, c, s


def dimension_matrix(X: np.ndarray, m: Methodology) -> tuple[np.ndarray, list[np.ndarray]]:
    """The kernel of the index: (cities x dimensions) scores in [low, high] of the indicator matrix X
    (cities x indicators, in the methodology's order) with the methodology's choices, and each
    dimension's entropy weights. Missing values follow the missing-value policy: imputed with the
    indicator's median, or the city left out of that dimension (NaN). `score_index` and the Monte
    Carlo of `scoring.uncertainty` both score through here."""
    X = np.asarray(X, dtype=float)
    out = np.full((X.shape[0], len(m.dimensions)), np.nan)
    weights = []
    start = 0
    for j, dim in enumerate(m.dimensions):
        k = len(dim.indicators)
        block = X[:, start : start + k]
        start += k
        if m.missing_policy == "impute_median" and np.isnan(block).any():
            block = np.where(np.isnan(block), np.nanmedian(block, axis=0), block)
        keep = ~np.isnan(block).any(axis=1)
        if keep.sum() < 3:
            raise ScoringError(f"dimension {dim.id}: fewer than 3 cities have all of {[i.id for i in dim.indicators]}")
        w, _, s = _dimension_scores(block[keep], [i.direction for i in dim.indicators], m, dim.indicators)
        out[keep, j] = s
        weights.append(w)
    return out, weights


def _dimension_scores(block: np.ndarray, directions, m: Methodology, indicators):
    try:
        return dimension_scores(block, directions, m)
    except ScoringError:
        raise
    except ValueError as exc:
        raise ScoringError(f"indicators {[i.id for i in indicators]}: {exc}") from exc


def score_index(values: pd.DataFrame, cities: pd.DataFrame, methodology: Methodology) -> IndexResult:
    """Score the index.

    values: one row per city (index = city_id), one column per indicator id.
    cities: the registry, indexed by city_id, with at least `domestic` (bool) and `cluster`.
    """
    m = methodology
    warnings: list[str] = []
    missing_cols = [i.id for i in m.indicators if i.id not in values.columns]
    if missing_cols:
        raise ScoringError(f"indicator table lacks columns {missing_cols}")
    unknown = sorted(set(values.index) - set(cities.index))
    if unknown:
        raise ScoringError(f"indicator table has cities not in the registry: {unknown}")
    values = values[[i.id for i in m.indicators]].astype(float)
    if len(values) < 3:
        raise ScoringError(f"need at least 3 cities to score, got {len(values)}")
    bad = ~np.isfinite(values.to_numpy()) & values.notna().to_numpy()
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ScoringError(f"infinite value for city {values.index[r]!r}, indicator {values.columns[c]!r}")

    coverage_rows = []
    imputed = pd.DataFrame(False, index=values.index, columns=values.columns)
    for ind in m.indicators:
        missing = values.index[values[ind.id].isna()].tolist()
        action = ""
        if missing:
            if m.missing_policy == "impute_median":
                median = values[ind.id].median()
                values.loc[missing, ind.id] = median
                imputed.loc[missing, ind.id] = True
                action = f"imputed with the median {median:.6g}"
            else:
                action = "city dropped from the dimension"
            warnings.append(f"{ind.id}: {len(missing)} cities missing ({', '.join(missing)}): {action}")
        coverage_rows.append(
            {
                "indicator": ind.id,
                "dimension": ind.dimension,
                "present": int(len(values) - len(missing)),
                "missing": len(missing),
                "missing_cities": ";".join(missing),
                "action": action,
            }
        )

    matrix, dim_weights = dimension_matrix(values.to_numpy(dtype=float), m)
    scores = pd.DataFrame(matrix, index=values.index, columns=m.dimension_ids)
    weight_rows = []
    normalised = pd.DataFrame(index=values.index, columns=values.columns, dtype=float)
    for dim, w in zip(m.dimensions, dim_weights, strict=True):
        cols = [i.id for i in dim.indicators]
        block = values[cols].dropna()
        normalised.loc[block.index, cols] = minmax_normalize(
            block.to_numpy(float), [i.direction for i in dim.indicators]
        )
        weight_rows += [
            {"dimension": dim.id, "indicator": c, "weight": float(wi)} for c, wi in zip(cols, w, strict=True)
        ]

    if m.weights_mode == "published":
        dim_w = pd.Series(m.published_weights)[m.dimension_ids]
    else:
        complete = scores.dropna()
        dim_w = pd.Series(multiple_correlation_weights(complete.to_numpy()), index=m.dimension_ids)
    W = scores.notna().mul(dim_w, axis=1)
    final = (scores.fillna(0.0) * dim_w).sum(axis=1) / W.sum(axis=1)

    domestic = cities.loc[values.index, "domestic"].astype(bool)
    index = pd.DataFrame({"final_score": final})
    index["rank_international"] = rank_desc(final)
    index["rank_domestic"] = rank_desc(final[domestic]).reindex(index.index)
    for dim_id in m.dimension_ids:
        index[f"{dim_id}_score"] = scores[dim_id]
        index[f"{dim_id}_rank_international"] = rank_desc(scores[dim_id])
        index[f"{dim_id}_rank_domestic"] = rank_desc(scores[dim_id][domestic]).reindex(index.index)
    index = index.sort_values(["rank_international", "final_score"], ascending=[True, False])
    index.index.name = "city_id"

    weight_of = {(r["dimension"], r["indicator"]): r["weight"] for r in weight_rows}
    # the long table's texts as categories (sorted, as pandas makes them from texts): ids and names
    # repeated on every row, held as texts, were most of its memory
    city = pd.Categorical(values.index, categories=values.index.sort_values())
    dimension = pd.CategoricalDtype(pd.Index(m.dimension_ids).sort_values())
    indicator = pd.CategoricalDtype(pd.Index([i.id for i in m.indicators]).sort_values())
    parts = []
    for ind in m.indicators:
        col = values[ind.id]
        parts.append(
            pd.DataFrame(
                {
                    "city_id": city,
                    "dimension": _repeated(ind.dimension, len(col), dimension),
                    "indicator": _repeated(ind.id, len(col), indicator),
                    "value": col.to_numpy(),
                    "normalised": normalised[ind.id].to_numpy(),
                    "weight": weight_of[(ind.dimension, ind.id)],
                    "direction": ind.direction,
                    "rank_international": _rank_by_direction(col, ind.direction).to_numpy(),
                    "rank_domestic": _rank_by_direction(col[domestic], ind.direction).reindex(col.index).to_numpy(),
                    "imputed": imputed[ind.id].to_numpy(dtype=bool),
                }
            )
        )
    indicators = pd.concat(parts, ignore_index=True)
    for c in ("rank_international", "rank_domestic"):
        indicators[c] = indicators[c].astype("Int64")

    clusters = cluster_means(index, cities)
    return IndexResult(
        index=index,
        indicators=indicators,
        indicator_weights=pd.DataFrame(weight_rows),
        dimension_weights=dim_w.astype(float),
        dimension_weights_mode=m.weights_mode,
        clusters=clusters,
        coverage=pd.DataFrame(coverage_rows),
        methodology=m.describe(),
        warnings=warnings,
    )


def _repeated(value: str, n: int, dtype: pd.CategoricalDtype) -> pd.Categorical:
    return pd.Categorical.from_codes(np.full(n, dtype.categories.get_loc(value), dtype=np.int8), dtype=dtype)


def cluster_means(index: pd.DataFrame, cities: pd.DataFrame) -> pd.DataFrame:
    """Plain means of member cities, for the final score and every dimension (as the report does)."""
    score_cols = ["final_score"] + [c for c in index.columns if c.endswith("_score") and c != "final_score"]
    cl = cities.reindex(index.index)["cluster"].fillna("")
    members = index[score_cols].assign(cluster=cl)
    members = members[members["cluster"] != ""]
    if members.empty:
        return pd.DataFrame(columns=["cluster", "members", *score_cols])
    out = members.groupby("cluster")[score_cols].mean()
    out.insert(0, "members", members.groupby("cluster").apply(lambda g: ";".join(g.index)))
    return out.reset_index()
