"""Entropy weights against published worked examples (reference: mcda_worked_examples.md)."""

import numpy as np
import pytest

from scoring import entropies, entropy_weights

E1 = np.array(
    [
        [7, 312, 1891, 6613, 163],
        [72, 88, 728, 941804, 1078],
        [10, 252, 2594, 3466, 117471],
        [10, 145, 980, 2371, 86329],
        [65, 54, 350, 501, 29897],
        [29, 48, 380, 912, 34051],
        [7, 476, 3300, 78470, 2212],
        [70, 87, 650, 733, 819000],
        [4, 86, 591, 3015, 103],
        [12, 79, 579, 3240, 96098],
        [21, 45, 261, 1253, 453],
        [1, 72, 530, 4333, 0.104800],
    ]
)


def test_e1_pymcdm_elsayed_2017():
    np.testing.assert_allclose(entropy_weights(E1), [0.104991, 0.069124, 0.071373, 0.449937, 0.304575], atol=1e-6)
    np.testing.assert_allclose(entropies(E1), [0.807441, 0.873223, 0.869097, 0.174789, 0.441391], atol=1e-6)


def test_e2_scikit_criteria_simple_matrix():
    np.testing.assert_allclose(entropy_weights([[1, 2], [4, 16]]), [0.358889, 0.641111], atol=1e-5)
    np.testing.assert_allclose(entropies([[1, 2], [4, 16]]), [0.721928, 0.503258], atol=1e-6)


def test_e3_less_predictable_more_weight_and_constant_column_weighs_zero():
    X = [[1, 20, 300], [1, 20, 400], [1, 30, 500], [1, 30, 600], [1, 40, 700], [1, 40, 800]]
    w = entropy_weights(X)
    np.testing.assert_allclose(w, [0.0, 0.431878, 0.568122], atol=1e-6)
    assert w[0] < w[1] < w[2]


@pytest.mark.parametrize(
    "rule,expected",
    [
        ("zero", [0.9245, 0.0755]),
        ("any_zero_full_information", [0.9668, 0.0332]),
        ("shift", [0.9244, 0.0756]),
    ],
)
def test_d1_zero_rules(rule, expected):
    np.testing.assert_allclose(entropy_weights([[0, 2], [1, 3], [2, 4]], zero_rule=rule), expected, atol=1e-4)


def test_d2_min_max_with_two_alternatives_degenerates_to_equal_weights():
    from scoring import minmax_normalize

    R = minmax_normalize([[3, 10, 7], [5, 2, 9]], [1, -1, 1])
    np.testing.assert_allclose(entropy_weights(R), [1 / 3, 1 / 3, 1 / 3])


def test_weights_sum_to_one_and_batches_match_single_calls():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 10, size=(4, 30, 5))
    batched = entropy_weights(X)
    np.testing.assert_allclose(batched.sum(axis=-1), 1.0)
    for k in range(4):
        np.testing.assert_allclose(batched[k], entropy_weights(X[k]))


@pytest.mark.parametrize(
    "bad,msg",
    [
        ([[1, -2], [3, 4]], "non-negative"),
        ([[1, np.nan], [3, 4]], "finite"),
        ([[1, 2]], "at least 2"),
    ],
)
def test_bad_input_is_a_clear_error(bad, msg):
    with pytest.raises(ValueError, match=msg):
        entropy_weights(bad)
