"""score_index on constructed data: ranks, weights, clusters, missing-value policies."""

import numpy as np
import pandas as pd
import pytest

from scoring import MethodologyError, ScoringError, entropy_weights, load_methodology, score_index, topsis


@pytest.fixture(scope="module")
def methodology():
    return load_methodology()


@pytest.fixture()
def data(methodology):
    rng = np.random.default_rng(42)
    ids = [f"c{i:02d}" for i in range(12)]
    values = pd.DataFrame(
        rng.uniform(1, 100, size=(12, len(methodology.indicators))),
        index=ids,
        columns=[i.id for i in methodology.indicators],
    )
    cities = pd.DataFrame(
        {"domestic": [i < 5 for i in range(12)], "cluster": ["a", "a", "b", "b", "b"] + [""] * 7}, index=ids
    )
    return values, cities


def test_methodology_file_matches_the_report(methodology):
    assert methodology.dimension_ids == ["economy", "innovation", "openness", "ecology", "welfare", "affordability"]
    assert len(methodology.indicators) == 17
    assert methodology.published_weights == {
        "economy": 0.13,
        "innovation": 0.27,
        "openness": 0.15,
        "ecology": 0.15,
        "welfare": 0.16,
        "affordability": 0.14,
    }
    costs = sorted(i.id for i in methodology.indicators if i.direction < 0)
    assert costs == ["commute_index", "cost_of_living_index", "house_price_index", "pollution_index", "rent_burden"]
    assert (methodology.entropy_input, methodology.topsis_normalization) == ("raw", "minmax")
    assert len(methodology.sha256) == 64


def test_dimension_score_is_entropy_topsis_rescaled(data, methodology):
    values, cities = data
    res = score_index(values, cities, methodology)
    eco = values[["pollution_index", "climate_index"]].to_numpy()
    w = entropy_weights(eco)
    c = topsis(eco, w, [-1, 1], "minmax")
    expected = 50 + 50 * (c - c.min()) / (c.max() - c.min())
    np.testing.assert_allclose(res.index.loc[values.index, "ecology_score"], expected)
    got_w = res.indicator_weights.set_index("indicator")["weight"]
    np.testing.assert_allclose(got_w[["pollution_index", "climate_index"]], w)


def test_final_score_ranks_and_clusters(data, methodology):
    values, cities = data
    res = score_index(values, cities, methodology)
    idx = res.index
    dims = methodology.dimension_ids
    weighted = sum(idx[f"{d}_score"] * methodology.published_weights[d] for d in dims)
    np.testing.assert_allclose(idx["final_score"], weighted)
    assert list(idx["rank_international"]) == list(range(1, 13))
    dom = idx[cities.loc[idx.index, "domestic"]]
    assert sorted(dom["rank_domestic"].tolist()) == [1, 2, 3, 4, 5]
    assert idx.loc[~cities.loc[idx.index, "domestic"], "rank_domestic"].isna().all()
    for d in dims:
        assert idx[f"{d}_score"].max() == pytest.approx(100) and idx[f"{d}_score"].min() == pytest.approx(50)
    a = res.clusters.set_index("cluster").loc["a"]
    assert a["final_score"] == pytest.approx(idx.loc[["c00", "c01"], "final_score"].mean())
    assert a["members"] == ";".join(sorted(["c00", "c01"], key=list(idx.index).index))


def test_indicator_ranks_follow_direction(data, methodology):
    values, cities = data
    res = score_index(values, cities, methodology)
    pol = res.indicators[res.indicators["indicator"] == "pollution_index"].set_index("city_id")
    assert pol.loc[values["pollution_index"].idxmin(), "rank_international"] == 1  # lower pollution is better
    cli = res.indicators[res.indicators["indicator"] == "climate_index"].set_index("city_id")
    assert cli.loc[values["climate_index"].idxmax(), "rank_international"] == 1


def test_missing_value_imputed_with_flag(data, methodology):
    values, cities = data
    values.loc["c03", "unicorns"] = np.nan
    res = score_index(values, cities, methodology)
    row = res.indicators.set_index(["city_id", "indicator"]).loc[("c03", "unicorns")]
    assert row["imputed"] and row["value"] == pytest.approx(values["unicorns"].median())
    cov = res.coverage.set_index("indicator").loc["unicorns"]
    assert cov["missing"] == 1 and cov["missing_cities"] == "c03"
    assert any("unicorns" in w for w in res.warnings)


def test_missing_value_drop_city_renormalises_weights(data, methodology):
    values, cities = data
    values.loc["c03", "unicorns"] = np.nan
    res = score_index(values, cities, methodology.with_choices(missing_policy="drop_city"))
    assert np.isnan(res.index.loc["c03", "innovation_score"])
    w = {d: methodology.published_weights[d] for d in methodology.dimension_ids if d != "innovation"}
    expected = sum(res.index.loc["c03", f"{d}_score"] * v for d, v in w.items()) / sum(w.values())
    assert res.index.loc["c03", "final_score"] == pytest.approx(expected)


def test_computed_weights_mode(data, methodology):
    values, cities = data
    res = score_index(values, cities, methodology.with_choices(weights_mode="computed"))
    assert res.dimension_weights_mode == "computed"
    assert res.dimension_weights.sum() == pytest.approx(1.0)
    assert not np.allclose(res.dimension_weights.to_numpy(), list(methodology.published_weights.values()))


def test_bad_inputs_name_what_is_wrong(data, methodology):
    values, cities = data
    with pytest.raises(ScoringError, match="lacks columns.*night_lights"):
        score_index(values.drop(columns="night_lights"), cities, methodology)
    values.loc["c01", "safety_index"] = np.inf
    with pytest.raises(ScoringError, match="c01.*safety_index"):
        score_index(values, cities, methodology)
    with pytest.raises(MethodologyError, match="normalization"):
        methodology.with_choices(topsis_normalization="zscore")


def test_indicator_table_holds_its_texts_as_sorted_categories(data, methodology):
    """City, dimension and indicator are categories whose categories are sorted (as pandas makes them
    from texts), one row per city and indicator in the methodology's order."""
    values, cities = data
    ind = score_index(values, cities, methodology).indicators
    assert all(isinstance(ind[c].dtype, pd.CategoricalDtype) for c in ("city_id", "dimension", "indicator"))
    assert list(ind["city_id"].cat.categories) == sorted(values.index)
    assert list(ind["indicator"].cat.categories) == sorted(i.id for i in methodology.indicators)
    n = len(values)
    assert ind["city_id"].astype(str).tolist()[:n] == list(values.index)
    assert ind["indicator"].astype(str).tolist()[::n] == [i.id for i in methodology.indicators]
    assert ind["dimension"].astype(str).tolist()[::n] == [i.dimension for i in methodology.indicators]
