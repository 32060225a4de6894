"""Uncertainty and sensitivity of the ranking to the modelling choices (a JRC-style audit).

Design: a full factorial over the discrete choices (TOPSIS normalisation, entropy input, entropy
zero rule, missing-data policy: 16 combinations) crossed with Dirichlet draws of the dimension
weights around the chosen ones. Dimension scores depend only on the discrete choices, so they are
computed once per combination; each draw is then one weighted sum and a ranking, batched in numpy.
Because every weight draw meets every combination, the first-order share of the rank variance of
each choice is exact for this design: Var(E[rank | choice]) / Var(rank).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .index import dimension_matrix
from .methodology import Methodology
from .weights import multiple_correlation_weights

CHOICES = {
    "topsis_normalization": ("minmax", "vector"),
    "entropy_input": ("raw", "minmax"),
    "zero_rule": ("zero", "shift"),
    "missing_policy": ("impute_median", "drop_city"),
}


@dataclass
class UncertaintyResult:
    ranks: pd.DataFrame  # city: nominal rank, median, p05, p95, mean, std
    shares: pd.DataFrame  # factor -> first-order share of the rank variance
    draws: int
    seed: int
    concentration: float


def dimension_score_matrix(values: pd.DataFrame, m: Methodology) -> np.ndarray:
    """(cities x dimensions) scores for one set of discrete choices; NaN where a city is dropped."""
    return dimension_matrix(values[[i.id for i in m.indicators]].to_numpy(dtype=float), m)[0]


def _score_matrix(X: np.ndarray, m: Methodology, **choices: str) -> np.ndarray:
    """The index kernel (`scoring.index.dimension_matrix`) with some discrete choices changed."""
    return dimension_matrix(X, m.with_choices(**choices))[0]


def combinations(m: Methodology) -> list[dict]:
    return [dict(zip(CHOICES, combo, strict=True)) for combo in itertools.product(*CHOICES.values())]


THREADS = max(1, min(4, os.cpu_count() or 1))  # numpy sorts and partitions without holding the GIL
MIN_THREADED_VALUES = 200_000  # below this a sort is not worth a thread


def _in_threads(work, starts: list[int], size: int) -> None:
    """`work(start)` for each start, on THREADS threads when `size` values are worth it: each call
    writes its own rows or columns of an array made beforehand, so the results are the same."""
    if THREADS == 1 or len(starts) == 1 or size < MIN_THREADED_VALUES:
        for a in starts:
            work(a)
        return
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(work, starts))


def stable_descending(block: np.ndarray) -> np.ndarray:
    """`np.argsort(-block, axis=1, kind="stable")`, the same permutation: numpy's default sort (SIMD,
    not stable) orders the values, then each run of equal values (NaN included, which sorts last)
    takes its positions in index order, as the stable sort leaves them. Only rows with a tie pay
    for that second sort, of integers."""
    neg = -block
    order = np.argsort(neg, axis=1)
    ordered = np.take_along_axis(neg, order, axis=1)
    tie = ordered[:, 1:] == ordered[:, :-1]
    tie |= np.isnan(ordered[:, 1:]) & np.isnan(ordered[:, :-1])
    rows = np.flatnonzero(tie.any(axis=1))
    if len(rows):
        n = block.shape[1]
        run = np.zeros((len(rows), n), dtype=np.int64)  # which run of equal values each position holds
        np.cumsum(~tie[rows], axis=1, out=run[:, 1:])
        run *= n
        run += order[rows]
        run.sort(axis=1)  # by run, then by index within a run
        order[rows] = run % n
    return order


def rank_rows(final: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Rank 1 = highest, per row of a (draws x cities) array (ties broken by order; a city without a
    score, NaN, ranks last); into `out` (an integer array of that shape) when given."""
    rows_n = final.shape[0]
    ranks = np.empty(final.shape, dtype=np.intp) if out is None else out
    step = -(-rows_n // THREADS)
    places = np.arange(1, final.shape[1] + 1)

    def sort(a: int) -> None:
        order = stable_descending(final[a : a + step])
        np.put_along_axis(ranks[a : a + step], order, places[None, :], axis=1)

    _in_threads(sort, list(range(0, rows_n, step)), final.size)
    return ranks


CHUNK_VALUES = 1_000_000  # floats per block of temporaries (draws x cities): their peak, beside the rank table
MAX_RANK_TABLE_BYTES = 2**31  # the rank table of 10,000 draws x 50,000 cities


def _rank_stats(flat: np.ndarray, values_per_block: int | None = None) -> dict[str, np.ndarray]:
    """Median, 5th and 95th percentile, mean and variance of every column (city) of the (draws x
    cities) rank table, a block of cities at a time: the float temporaries stay near
    `values_per_block` values instead of the whole table's size (column by column, the same numbers)."""
    draws, n = flat.shape
    values_per_block = values_per_block or CHUNK_VALUES
    out = {k: np.empty(n, dtype=np.float64) for k in ("median", "p05", "p95", "mean", "var")}
    step = max(1, values_per_block // max(draws, 1))

    def block_stats(a: int) -> None:
        block = flat[:, a : a + step]
        out["median"][a : a + step] = np.median(block, axis=0)
        out["p05"][a : a + step] = np.percentile(block, 5, axis=0)
        out["p95"][a : a + step] = np.percentile(block, 95, axis=0)
        out["mean"][a : a + step] = block.mean(axis=0, dtype=np.float64)
        out["var"][a : a + step] = block.var(axis=0, dtype=np.float64)

    _in_threads(block_stats, list(range(0, n, step)), flat.size)
    return out


def monte_carlo(
    values: pd.DataFrame,
    methodology: Methodology,
    draws: int = 10_000,
    seed: int = 2020,
    concentration: float = 100.0,
    max_bytes: int = MAX_RANK_TABLE_BYTES,
) -> UncertaintyResult:
    """Median rank and 5-95% interval of every city, and each choice's share of the rank variance.

    values: cities x indicators, NaN where a value is missing (before any imputation).
    concentration: Dirichlet alpha = concentration x chosen weights (larger = closer to them).
    """
    m = methodology
    combos = combinations(m)
    X = values[[i.id for i in m.indicators]].to_numpy(dtype=float)
    K, n = len(combos), len(X)
    if draws < 1:
        raise ValueError(f"draws must be positive, got {draws}")
    n_weights = max(1, int(np.ceil(draws / K)))
    # every draw's ranks are kept for the medians and intervals, in the narrowest integer that holds
    # them (the statistics of the same integers are the same numbers)
    rank_type = np.dtype(np.uint16 if n < 2**16 else np.int32)
    need = K * n_weights * n * rank_type.itemsize
    if need > max_bytes:
        most = max_bytes // (n * rank_type.itemsize) // K * K
        raise ValueError(
            f"{draws:,} draws x {n:,} cities need {need / 2**30:.1f} GiB for the rank table; at most "
            f"{most:,} draws fit the {max_bytes / 2**30:.0f} GiB limit"
        )
    if m.weights_mode == "published":
        w0 = np.array([m.published_weights[x] for x in m.dimension_ids])
    else:
        nominal = dimension_score_matrix(values, m)
        w0 = multiple_correlation_weights(nominal[~np.isnan(nominal).any(axis=1)])
    rng = np.random.default_rng(seed)
    W = rng.dirichlet(concentration * w0 / w0.sum(), size=n_weights)  # (N, d)
    nominal_choice = {k: getattr(m, k) for k in CHOICES}
    k0 = combos.index(nominal_choice) if nominal_choice in combos else 0
    # ranks[k, i, c] for every combination k, weight draw i, city c; one combination's dimension
    # scores at a time (the scores of all of them are held by none), its weight draws in chunks so
    # the float temporaries stay near CHUNK_VALUES values whatever the number of cities
    ranks = np.empty((K, n_weights, n), dtype=rank_type)
    step = max(1, CHUNK_VALUES // n)
    for k, choice in enumerate(combos):
        S = _score_matrix(X, m, **choice)  # (n, d)
        present = ~np.isnan(S)
        np.copyto(S, 0.0, where=~present)  # the scores with 0 for a missing one
        Pf = present.astype(float)
        if k == k0:
            nominal_final = (S @ w0) / (present @ w0)
        for a in range(0, n_weights, step):
            w = W[a : a + step]
            with np.errstate(invalid="ignore"):  # 0/0: a city left in no dimension (drop_city) has no score
                final = np.einsum("cd,id->ic", S, w) / np.einsum("cd,id->ic", Pf, w)
            rank_rows(final, out=ranks[k, a : a + step])
    nominal_rank = rank_rows(nominal_final[None, :])[0]

    flat = ranks.reshape(-1, n)
    stats = _rank_stats(flat)
    total_var = stats["var"]
    shares = {}
    # weights: average over combinations for each weight draw
    shares["dimension_weights"] = ranks.mean(axis=0, dtype=np.float64).var(axis=0)
    for f, options in CHOICES.items():
        # each option's mean rank per city, summed combination by combination (indexing the rank
        # table with a mask would copy half of it); sums of integer ranks are exact in float64, so
        # the means are those of the whole selection at once
        cond = np.stack(
            [
                sum(ranks[k].sum(axis=0, dtype=np.float64) for k, c in enumerate(combos) if c[f] == o)
                / (sum(c[f] == o for c in combos) * n_weights)
                for o in options
            ]
        )  # (options, n)
        shares[f] = cond.var(axis=0)  # equal-size groups: variance of the conditional means
    total = total_var.sum()
    first_order = {f: float(v.sum() / total) if total > 0 else 0.0 for f, v in shares.items()}
    first_order["interactions"] = 1 - sum(first_order.values()) if total > 0 else 0.0
    share_rows = [{"factor": f, "first_order_share": v} for f, v in first_order.items()]
    table = pd.DataFrame(
        {
            "nominal_rank": nominal_rank,
            "median_rank": stats["median"],
            "p05_rank": stats["p05"],
            "p95_rank": stats["p95"],
            "mean_rank": stats["mean"],
            "std_rank": np.sqrt(stats["var"]),
        },
        index=values.index,
    )
    table.index.name = "city_id"
    return UncertaintyResult(
        ranks=table.sort_values(["median_rank", "nominal_rank"]),
        shares=pd.DataFrame(share_rows),
        draws=K * n_weights,
        seed=seed,
        concentration=concentration,
    )
