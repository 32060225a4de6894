"""Entropy weight method (熵权法).

p_ij = x_ij / sum_i x_ij ; e_j = -(1/ln n) sum_i p_ij ln p_ij ; d_j = 1 - e_j ; w_j = d_j / sum_k d_k

Works on a single matrix (n cities x m indicators) or a batch (..., n, m): the leading axes are
kept, which is what the Monte Carlo analysis uses.
"""

from __future__ import annotations

import numpy as np

ZERO_RULES = ("zero", "shift", "any_zero_full_information")


def entropies(X, zero_rule: str = "zero", epsilon: float = 1e-4) -> np.ndarray:
    """Entropy e_j of every column of a non-negative matrix (rows = alternatives).

    zero_rule:
      - ``zero``: 0·ln 0 := 0 (the textbook rule; scipy, scikit-criteria)
      - ``shift``: add ``epsilon`` to every value first (common in Chinese applied work)
      - ``any_zero_full_information``: pymcdm's rule, a column holding a zero gets e_j = 0
    A column that is all zero carries no information: e_j = 1.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim < 2:
        raise ValueError(f"entropy weights need a 2-D matrix (cities x indicators), got shape {X.shape}")
    n = X.shape[-2]
    if n < 2:
        raise ValueError(f"entropy weights need at least 2 alternatives (rows), got {n}")
    if zero_rule not in ZERO_RULES:
        raise ValueError(f"unknown zero_rule {zero_rule!r}; expected one of {ZERO_RULES}")
    col_sum = X.sum(axis=-2, keepdims=True)  # also the cheap validity check: NaN/inf propagate
    if not np.all(np.isfinite(col_sum)):
        raise ValueError("entropy weights need finite values: the matrix holds NaN or infinity")
    lowest = X.min()
    if lowest < 0:
        raise ValueError("entropy weights need non-negative values: the matrix holds a negative value")
    if lowest > 0 and zero_rule != "shift":  # fast path: no zero anywhere, so no 0·ln 0 to guard
        P = X / col_sum
        return np.clip(-np.einsum("...ij,...ij->...j", P, np.log(P)) / np.log(n), 0.0, 1.0)
    if zero_rule == "shift":
        X = X + epsilon
        col_sum = col_sum + n * epsilon
    empty = col_sum == 0
    P = np.divide(X, col_sum, out=np.zeros_like(X), where=~empty)
    logP = np.log(P, out=np.zeros_like(P), where=P > 0)  # 0·ln 0 := 0
    e = -np.einsum("...ij,...ij->...j", P, logP) / np.log(n)
    e = np.where(empty[..., 0, :], 1.0, e)
    if zero_rule == "any_zero_full_information":
        has_zero = np.any(X == 0, axis=-2) & ~empty[..., 0, :]
        e = np.where(has_zero, 0.0, e)
    return np.clip(e, 0.0, 1.0)


def entropy_weights(X, zero_rule: str = "zero", epsilon: float = 1e-4) -> np.ndarray:
    """Entropy weights of the columns of X; they sum to 1 (equal weights if no column varies)."""
    d = 1.0 - entropies(X, zero_rule=zero_rule, epsilon=epsilon)
    total = d.sum(axis=-1, keepdims=True)
    m = d.shape[-1]
    return np.where(total > 0, d / np.where(total > 0, total, 1.0), 1.0 / m)
