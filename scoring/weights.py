"""Dimension weights by the multiple-correlation-coefficient method (复相关系数法)."""

from __future__ import annotations

import numpy as np


def multiple_correlations(S) -> np.ndarray:
    """R_j: multiple correlation of column j regressed (OLS with intercept) on all other columns."""
    S = np.asarray(S, dtype=float)
    n, k = S.shape
    if k < 2:
        raise ValueError("multiple correlation needs at least 2 columns")
    if n <= k:
        raise ValueError(f"multiple correlation needs more rows than columns: {n} rows, {k} columns")
    if not np.all(np.isfinite(S)):
        raise ValueError("multiple correlation needs finite values: the matrix holds NaN or infinity")
    R = np.empty(k)
    for j in range(k):
        y = S[:, j]
        sst = ((y - y.mean()) ** 2).sum()
        if sst == 0:
            raise ValueError(f"column {j} is constant: its multiple correlation is undefined")
        A = np.column_stack([np.ones(n), np.delete(S, j, axis=1)])
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        sse = ((y - A @ coef) ** 2).sum()
        R[j] = np.sqrt(max(0.0, 1.0 - sse / sst))
    return R


def multiple_correlation_weights(S, eps: float = 1e-10) -> np.ndarray:
    """w_j proportional to 1/R_j: a dimension well explained by the others is redundant, weighs less."""
    R = multiple_correlations(S)
    inv = 1.0 / np.maximum(R, eps)
    return inv / inv.sum()
