"""TOPSIS closeness with min-max or vector normalisation; batched over leading axes."""

from __future__ import annotations

import numpy as np

NORMALIZATIONS = ("minmax", "vector")


def _directions(directions, m: int) -> np.ndarray:
    d = np.asarray(directions, dtype=float).reshape(-1)
    if d.shape[0] != m:
        raise ValueError(f"{d.shape[0]} directions given for {m} indicators")
    if not np.all(np.isin(d, (-1.0, 1.0))):
        raise ValueError(f"directions must be +1 (benefit) or -1 (cost), got {d.tolist()}")
    return d


def minmax_normalize(X, directions) -> np.ndarray:
    """(x - min)/(max - min) for benefit, (max - x)/(max - min) for cost; a constant column -> 0."""
    X = np.asarray(X, dtype=float)
    d = _directions(directions, X.shape[-1])
    lo = X.min(axis=-2, keepdims=True)
    hi = X.max(axis=-2, keepdims=True)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    R = np.where(d > 0, (X - lo) / safe, (hi - X) / safe)
    return np.where(span > 0, R, 0.0)


def vector_normalize(X) -> np.ndarray:
    """x / sqrt(sum x^2) per column (Hwang & Yoon); direction is handled by the ideal points."""
    X = np.asarray(X, dtype=float)
    norm = np.sqrt((X**2).sum(axis=-2, keepdims=True))
    return np.divide(X, norm, out=np.zeros_like(X), where=norm > 0)


def topsis(X, weights, directions, normalization: str = "minmax") -> np.ndarray:
    """Closeness C_i = D-_i / (D+_i + D-_i) in [0, 1] of every row of X.

    X: (..., n, m) values; weights: (..., m); directions: m values of +1 (benefit) / -1 (cost).
    With min-max normalisation the values are already direction-adjusted, so the ideal is the
    column maximum; with vector normalisation the ideal of a cost column is its minimum.
    A city that is both at the ideal and the anti-ideal (every column constant) gets 0.5.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim < 2:
        raise ValueError(f"TOPSIS needs a 2-D matrix (cities x indicators), got shape {X.shape}")
    m = X.shape[-1]
    d = _directions(directions, m)
    w = np.asarray(weights, dtype=float)
    if w.shape[-1] != m:
        raise ValueError(f"{w.shape[-1]} weights given for {m} indicators")
    if normalization == "minmax":
        # Flip cost columns (x -> -x) so every column is "more is better"; then the weighted min-max
        # value R lies in [0, w_j], the ideal is w_j (0 for a constant column) and the anti-ideal 0.
        Xd = X * d
        lo = Xd.min(axis=-2, keepdims=True)
        span = Xd.max(axis=-2, keepdims=True) - lo
        if not np.all(np.isfinite(span)):
            raise ValueError("TOPSIS needs finite values: the matrix holds NaN or infinity")
        wb = np.broadcast_to(w[..., None, :], span.shape)
        scale = np.divide(wb, span, out=np.zeros(span.shape), where=span > 0)
        R = (Xd - lo) * scale
        ideal = np.where(span > 0, wb, 0.0)
        G = ideal - R
        d_plus = np.sqrt(np.einsum("...ij,...ij->...i", G, G))
        d_minus = np.sqrt(np.einsum("...ij,...ij->...i", R, R))
    elif normalization == "vector":
        if not np.all(np.isfinite(X.sum(axis=-2))):
            raise ValueError("TOPSIS needs finite values: the matrix holds NaN or infinity")
        V = vector_normalize(X) * w[..., None, :]
        vmax = V.max(axis=-2, keepdims=True)
        vmin = V.min(axis=-2, keepdims=True)
        ideal = np.where(d > 0, vmax, vmin)
        anti = np.where(d > 0, vmin, vmax)
        d_plus = np.sqrt(((V - ideal) ** 2).sum(axis=-1))
        d_minus = np.sqrt(((V - anti) ** 2).sum(axis=-1))
    else:
        raise ValueError(f"unknown normalization {normalization!r}; expected one of {NORMALIZATIONS}")
    total = d_plus + d_minus
    return np.divide(d_minus, total, out=np.full_like(total, 0.5), where=total > 0)


def rescale_50_100(c, low: float = 50.0, high: float = 100.0) -> np.ndarray:
    """Map closeness to [low, high]: best city -> high, worst -> low (over the last axis)."""
    c = np.asarray(c, dtype=float)
    if not np.all(np.isfinite(c)):
        raise ValueError("cannot rescale: the closeness values hold NaN or infinity")
    cmin = c.min(axis=-1, keepdims=True)
    cmax = c.max(axis=-1, keepdims=True)
    span = cmax - cmin
    if np.any(span == 0):
        raise ValueError(
            "cannot rescale to [50, 100]: every city has the same closeness "
            "(no indicator of the dimension varies between cities)"
        )
    return low + (high - low) * (c - cmin) / span
