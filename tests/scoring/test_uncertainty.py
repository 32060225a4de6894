"""Monte Carlo over the modelling choices: determinism, consistency with score_index, shares."""

import numpy as np
import pandas as pd
import pytest

from scoring import load_methodology, score_index
from scoring.uncertainty import CHOICES, combinations, dimension_score_matrix, monte_carlo


@pytest.fixture(scope="module")
def setup():
    m = load_methodology()
    rng = np.random.default_rng(9)
    ids = [f"c{i:02d}" for i in range(30)]
    values = pd.DataFrame(rng.uniform(1, 100, (30, 17)), index=ids, columns=[i.id for i in m.indicators])
    cities = pd.DataFrame({"domestic": [i < 13 for i in range(30)], "cluster": [""] * 30}, index=ids)
    return m, values, cities


@pytest.mark.parametrize("combo", combinations(load_methodology()), ids=lambda c: "-".join(c.values()))
def test_monte_carlo_kernel_is_score_index_s_for_every_combination(setup, combo):
    m, values, cities = setup
    v = values.copy()
    v.iloc[4, 2] = np.nan
    mm = m.with_choices(**combo)
    res = score_index(v, cities, mm)
    expected = res.index.loc[v.index, [f"{d}_score" for d in m.dimension_ids]].to_numpy()
    np.testing.assert_allclose(dimension_score_matrix(v, mm), expected, atol=1e-9, equal_nan=True)


def test_fixed_seed_is_deterministic_and_seed_matters(setup):
    m, values, _ = setup
    a = monte_carlo(values, m, draws=1600, seed=1)
    b = monte_carlo(values, m, draws=1600, seed=1)
    c = monte_carlo(values, m, draws=1600, seed=2)
    pd.testing.assert_frame_equal(a.ranks, b.ranks)
    pd.testing.assert_frame_equal(a.shares, b.shares)
    assert not a.ranks["mean_rank"].equals(c.ranks["mean_rank"].reindex(a.ranks.index))


def test_rank_table_and_shares(setup):
    m, values, cities = setup
    v = values.copy()
    v.iloc[[3, 7], 5] = np.nan  # missing values make the missing-data policy matter
    res = monte_carlo(v, m, draws=10_000, seed=3)
    assert res.draws == 10_000
    r = res.ranks
    assert (r["p05_rank"] <= r["median_rank"]).all() and (r["median_rank"] <= r["p95_rank"]).all()
    assert r["p05_rank"].min() >= 1 and r["p95_rank"].max() <= 30
    nominal = score_index(v, cities, m).index["rank_international"]
    assert (r["nominal_rank"] == nominal.reindex(r.index).astype(int)).all()
    shares = res.shares.set_index("factor")["first_order_share"]
    assert set(shares.index) == set(CHOICES) | {"dimension_weights", "interactions"}
    assert shares.sum() == pytest.approx(1.0)
    assert shares["dimension_weights"] > 0.05 and shares["missing_policy"] > 0
    assert (shares.drop("interactions") >= 0).all()


def test_no_weight_uncertainty_when_concentration_is_huge(setup):
    m, values, _ = setup
    res = monte_carlo(values, m, draws=160, seed=0, concentration=1e9)
    assert res.shares.set_index("factor").loc["dimension_weights", "first_order_share"] < 1e-3


def test_a_city_without_a_score_ranks_last():
    from scoring.uncertainty import rank_rows

    assert rank_rows(np.array([[0.2, np.nan, 0.9, 0.5]])).tolist() == [[3, 4, 1, 2]]


def test_ranks_sorted_in_threads_are_those_of_one_sort(monkeypatch):
    """Rows of draws are ranked on several threads (numpy sorts without the GIL): the same ranks,
    ties and missing scores included, as one sort of the whole table."""
    import scoring.uncertainty as u

    final = np.round(np.random.default_rng(4).random((41, 10_000)), 3)  # many ties
    final[:, ::97] = np.nan
    monkeypatch.setattr(u, "THREADS", 3)
    threaded = u.rank_rows(final)
    order = np.argsort(-final, axis=1, kind="stable")
    expected = np.empty_like(order)
    np.put_along_axis(expected, order, np.arange(1, final.shape[1] + 1)[None, :], axis=1)
    assert np.array_equal(threaded, expected)
    assert threaded[0, 1] == 1 + int((final[0] > final[0, 1]).sum())  # rank 1 = highest, no earlier tie
    assert threaded[0, 0] == 10_000 - int(np.isnan(final[0, 1:]).sum())  # the first missing score: after every score
    monkeypatch.setattr(u, "THREADS", 1)
    assert np.array_equal(u.rank_rows(final), threaded)
    into = np.zeros(final.shape, dtype=np.uint16)  # the Monte Carlo's narrow rank table
    assert u.rank_rows(final, out=into) is into and np.array_equal(into, threaded)


def test_rank_statistics_by_blocks_of_cities_are_the_whole_tables(monkeypatch):
    import scoring.uncertainty as u
    from scoring.uncertainty import _rank_stats

    monkeypatch.setattr(u, "THREADS", 2)  # the blocks on two threads

    flat = np.random.default_rng(1).integers(1, 700, size=(640, 700)).astype(np.int32)
    blocks = _rank_stats(flat, values_per_block=640 * 33)  # 33 cities a block, the last one shorter
    assert np.array_equal(blocks["median"], np.median(flat, axis=0))
    assert np.array_equal(blocks["p05"], np.percentile(flat, 5, axis=0))
    assert np.array_equal(blocks["p95"], np.percentile(flat, 95, axis=0))
    assert np.array_equal(blocks["mean"], flat.mean(axis=0, dtype=np.float64))
    assert np.array_equal(np.sqrt(blocks["var"]), flat.std(axis=0, dtype=np.float64))


def test_the_rank_table_limit_counts_two_bytes_a_rank_below_65536_cities(setup):
    """Ranks of fewer than 65,536 cities are kept as 16-bit integers: 1,600 draws x 30 cities take
    96,000 bytes, and a smaller limit names how many draws fit."""
    m, values, _ = setup
    with pytest.raises(ValueError, match=r"1,600 draws x 30 cities need .* at most 832 draws fit"):
        monte_carlo(values, m, draws=1600, seed=1, max_bytes=50_000)
    assert monte_carlo(values, m, draws=1600, seed=1, max_bytes=96_000).draws == 1600


def test_the_fast_descending_sort_is_the_stable_one():
    """`stable_descending` (numpy's SIMD sort, then each run of equal values in index order) gives
    the stable sort's permutation on rows with ties, missing scores, signed zeros and infinities."""
    from scoring.uncertainty import stable_descending

    rng = np.random.default_rng(7)
    a = np.round(rng.normal(size=(60, 500)), 1)  # about 60 distinct values: long runs of ties
    a[rng.random(a.shape) < 0.1] = np.nan
    a[rng.random(a.shape) < 0.05] = -0.0
    a[rng.random(a.shape) < 0.05] = 0.0
    a[rng.random(a.shape) < 0.02] = np.inf
    a[rng.random(a.shape) < 0.02] = -np.inf
    a[0] = rng.random(500)  # a row without ties
    expected = np.argsort(-a, axis=1, kind="stable")
    assert not np.array_equal(np.argsort(-a, axis=1), expected)  # the plain sort alone differs
    assert np.array_equal(stable_descending(a), expected)
    assert stable_descending(np.array([[1.0, 2.0, 2.0, np.nan, 0.0, np.nan]])).tolist() == [[1, 2, 0, 4, 3, 5]]
