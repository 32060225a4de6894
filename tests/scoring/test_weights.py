"""Multiple-correlation-coefficient weights (复相关系数法)."""

import numpy as np
import pytest

from scoring import multiple_correlation_weights, multiple_correlations, rescale_50_100


def test_r_equals_the_inverse_correlation_formula():
    rng = np.random.default_rng(7)
    S = rng.normal(size=(30, 6))
    S[:, 1] += 0.8 * S[:, 0]
    R = multiple_correlations(S)
    inv = np.linalg.inv(np.corrcoef(S, rowvar=False))
    np.testing.assert_allclose(R, np.sqrt(1 - 1 / np.diag(inv)), atol=1e-10)


def test_d3_weights_unchanged_by_rescaling_to_50_100():
    rng = np.random.default_rng(3)
    C = rng.uniform(size=(30, 6))
    S = np.column_stack([rescale_50_100(C[:, j]) for j in range(6)])
    w_raw = multiple_correlation_weights(C)
    np.testing.assert_allclose(w_raw, multiple_correlation_weights(S), atol=1e-12)
    np.testing.assert_allclose(w_raw.sum(), 1.0)


def test_redundant_dimension_weighs_less():
    rng = np.random.default_rng(11)
    base = rng.normal(size=(40, 3))
    S = np.column_stack([base, base[:, 0] + 0.05 * rng.normal(size=40)])
    w = multiple_correlation_weights(S)
    assert w[3] < w[1] and w[0] < w[2]


def test_too_few_rows_is_a_clear_error():
    with pytest.raises(ValueError, match="more rows than columns"):
        multiple_correlations(np.ones((3, 4)))
