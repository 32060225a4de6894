"""TOPSIS against published worked examples (reference: mcda_worked_examples.md)."""

import numpy as np
import pytest

from scoring import rescale_50_100, topsis


def test_t1_tzeng_huang_2011_vector():
    c = topsis([[5, 8, 4], [7, 6, 8], [8, 8, 6], [7, 4, 6]], [0.3, 0.4, 0.3], [1, 1, 1], "vector")
    np.testing.assert_allclose(c, [0.5037, 0.6581, 0.7482, 0.3340], atol=1e-4)
    assert list((-c).argsort().argsort() + 1) == [3, 2, 1, 4]


def test_t2_opricovic_tzeng_2004_minmax_and_the_normalisation_flip():
    X = [[1, 3000], [2, 3750], [5, 4500]]
    np.testing.assert_allclose(topsis(X, [0.5, 0.5], [-1, 1], "minmax"), [0.500, 0.617, 0.500], atol=1e-3)
    vec = topsis(X, [0.5, 0.5], [-1, 1], "vector")
    np.testing.assert_allclose(vec, [0.7621, 0.7222, 0.2379], atol=1e-4)
    assert vec.argmax() == 0  # A1 first with vector normalisation, A2 with min-max


def test_t3_pymcdm_readme():
    X = [[4, 4], [1, 5], [3, 2], [4, 2]]
    np.testing.assert_allclose(topsis(X, [0.5, 0.5], [1, -1], "minmax"), [0.6126, 0.0, 0.7829, 1.0], atol=1e-4)
    np.testing.assert_allclose(topsis(X, [0.5, 0.5], [1, -1], "vector"), [0.6290, 0.0, 0.7739, 1.0], atol=1e-4)


def test_t4_ideal_and_anti_ideal_from_the_data():
    """scikit-criteria's test_TOPSIS matrix [[1, 0, 3], [0, 5, 6]] (published closeness without
    normalisation 0.1464 / 0.8536), through our two normalisations, against closed forms."""
    X = np.array([[1, 0, 3], [0, 5, 6]], dtype=float)
    # min-max: rows become [1, 0, 0] and [0, 1, 1]; ideal [1, 1, 1], anti-ideal [0, 0, 0]
    c = topsis(X, [1, 1, 1], [1, 1, 1], "minmax")
    np.testing.assert_allclose(c, [1 / (1 + np.sqrt(2)), np.sqrt(2) / (1 + np.sqrt(2))], rtol=1e-12)
    # vector: the third column becomes [3, 6] / sqrt(45), so the rows differ by sqrt(1 + 9/45) there
    v = topsis(X, [1, 1, 1], [1, 1, 1], "vector")
    r = np.sqrt(1.2)
    np.testing.assert_allclose(v, [1 / (1 + r), r / (1 + r)], rtol=1e-12)
    # the ideal of a cost column is its minimum: with column 3 a cost, the two rows swap places
    w = topsis(X, [1, 1, 1], [1, 1, -1], "vector")
    np.testing.assert_allclose(w, [r / (1 + r), 1 / (1 + r)], rtol=1e-12)


def test_d4_rank_reversal_when_an_alternative_is_dropped():
    from scoring import entropy_weights, minmax_normalize

    M = np.array([[7, 8, 19], [17, 5, 9], [12, 18, 3], [15, 18, 18], [6, 3, 12]], dtype=float)
    d = [1, 1, -1]
    w = entropy_weights(minmax_normalize(M, d))
    np.testing.assert_allclose(w, [0.3152, 0.3362, 0.3486], atol=1e-4)
    c = topsis(M, w, d, "minmax")
    np.testing.assert_allclose(c, [0.1867, 0.5471, 0.7820, 0.5612, 0.2334], atol=1e-4)
    M2 = np.delete(M, 3, axis=0)
    w2 = entropy_weights(minmax_normalize(M2, d))
    np.testing.assert_allclose(w2, [0.3790, 0.3871, 0.2338], atol=1e-4)
    c2 = topsis(M2, w2, d, "minmax")
    np.testing.assert_allclose(c2, [0.2142, 0.5415, 0.7427, 0.1551], atol=1e-4)
    assert c[4] > c[0] and c2[0] > c2[3]  # A5 and A1 swap although neither changed


def test_rescale_maps_best_to_100_and_worst_to_50():
    s = rescale_50_100([0.2, 0.5, 0.8])
    np.testing.assert_allclose(s, [50.0, 75.0, 100.0])


def test_rescale_of_a_constant_vector_is_a_clear_error():
    with pytest.raises(ValueError, match="same closeness"):
        rescale_50_100([0.4, 0.4, 0.4])


def test_bad_directions_and_weights_are_clear_errors():
    with pytest.raises(ValueError, match="directions"):
        topsis([[1, 2], [3, 4]], [0.5, 0.5], [1, 0])
    with pytest.raises(ValueError, match="weights given"):
        topsis([[1, 2], [3, 4]], [1.0], [1, 1])
    with pytest.raises(ValueError, match="normalization"):
        topsis([[1, 2], [3, 4]], [0.5, 0.5], [1, 1], "zscore")
