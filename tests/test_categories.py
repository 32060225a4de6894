"""The gathered long table keeps its texts as categories (tasks/publish/categories.py): every
helper gives what plain pandas gives on texts, with categories still categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tasks.publish.categories import (
    concat,
    equals_text,
    filled,
    frame_with_categories,
    pivoted,
    sorted_categories,
    with_values,
)


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    return df.astype({c: object for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)})


def test_snapshots_become_one_frame_of_categories_with_missing_columns_empty():
    a = pa.table({"city_id": ["paris", "oslo"], "value": [1.5, 2.0]})
    b = pa.table({"city_id": ["oslo", "rome", None], "value": pa.array([3, 4, 5], pa.int64()), "status": ["real"] * 3})
    tables = [a, b]
    df = frame_with_categories(tables)
    assert tables == []  # the caller's list no longer holds the tables
    assert list(df.columns) == ["city_id", "value", "status"]
    assert isinstance(df["city_id"].dtype, pd.CategoricalDtype)
    assert df["city_id"].astype(object).tolist()[:4] == ["paris", "oslo", "oslo", "rome"]
    assert pd.isna(df["city_id"].iloc[4])
    assert df["value"].tolist() == [1.5, 2.0, 3.0, 4.0, 5.0]  # an integer column meets a float one as a float
    assert df["status"].isna().tolist() == [True, True, False, False, False]


def test_concat_keeps_categories_and_gives_the_values_pandas_gives():
    own = pd.DataFrame({"city_id": ["paris", "oslo"], "status": ["real", "illustrative"], "value": [1.0, 2.0]})
    own = own.astype({"city_id": "category", "status": "category"})
    added = pd.DataFrame({"city_id": ["rome", "paris"], "status": "proxy", "value": [3.0, 4.0], "graded": True})
    out = concat([own, added])
    assert isinstance(out["city_id"].dtype, pd.CategoricalDtype)
    assert isinstance(out["status"].dtype, pd.CategoricalDtype)
    assert list(out["status"].cat.categories) == ["illustrative", "real", "proxy"]
    expected = pd.concat([_plain(own), added], ignore_index=True)
    pd.testing.assert_frame_equal(_plain(out), expected.astype({"city_id": object, "status": object}))


def test_concat_leaves_a_column_as_pandas_makes_it_when_another_frame_holds_numbers_in_it():
    own = pd.DataFrame({"edition": pd.Categorical(["2019", "2020"])})
    added = pd.DataFrame({"edition": [2021]})
    out = concat([own, added])
    assert not isinstance(out["edition"].dtype, pd.CategoricalDtype)
    assert out["edition"].tolist() == ["2019", "2020", 2021]


def test_filled_and_with_values_add_the_categories_they_set():
    s = pd.Series(["a", None, "b"]).astype("category")
    with pytest.raises(TypeError):
        s.fillna("real")  # what pandas does without the helper
    assert filled(s, "real").astype(object).tolist() == ["a", "real", "b"]
    assert filled(pd.Series(["a", None]), "x").tolist() == ["a", "x"]  # texts as pandas fills them
    t = with_values(s, ["b", "proxy refused"])
    t.iloc[0] = "proxy refused"
    assert list(t.cat.categories) == ["a", "b", "proxy refused"]


def test_sorted_categories_are_those_pandas_makes_from_texts():
    texts = pd.Series(["zurich", "Oslo", None, "zurich", "ågård"], dtype="str")
    cat = pd.Series(pd.Categorical(texts.tolist(), categories=["zurich", "unused", "ågård", "Oslo"]))
    got = sorted_categories(cat)
    want = texts.astype("category")
    assert list(got.cat.categories) == list(want.cat.categories) == ["Oslo", "zurich", "ågård"]
    np.testing.assert_array_equal(got.cat.codes, want.cat.codes)


def test_pivoted_is_the_pivot_of_the_texts_whatever_the_categories():
    long = pd.DataFrame(
        {
            "city_id": ["rome", "oslo", "paris", "oslo", "rome"],
            "indicator": ["b", "b", "a", "a", "a"],
            "value": [1.5, 2.0, np.nan, 4.0, 5.0],
        }
    )
    expected = long.pivot(index="city_id", columns="indicator", values="value")
    # categories unsorted and one unused ("zurich", "c"): neither shows in the pivot
    cats = long.astype(
        {
            "city_id": pd.CategoricalDtype(["rome", "zurich", "paris", "oslo"]),
            "indicator": pd.CategoricalDtype(["c", "b", "a"]),
        }
    )
    out = pivoted(cats, "city_id", "indicator", "value")
    pd.testing.assert_frame_equal(out, expected)
    assert out.loc["paris", "b"] != out.loc["paris", "b"]  # an absent pair is NaN
    assert out.loc["rome", "a"] == 5.0
    pd.testing.assert_frame_equal(pivoted(long, "city_id", "indicator", "value"), expected)  # texts: pandas' own


def test_pivoted_refuses_a_pair_given_twice_as_pandas_does():
    long = pd.DataFrame({"city_id": ["oslo", "oslo"], "indicator": ["a", "a"], "value": [1.0, 2.0]}).astype(
        {"city_id": "category", "indicator": "category"}
    )
    with pytest.raises(ValueError, match="duplicate entries"):
        pivoted(long, "city_id", "indicator", "value")


def test_equals_text_compares_as_texts_whatever_the_categories_hold():
    years = pd.Series([2019, 2020, None, 2020], dtype="category")  # categories that are numbers
    assert equals_text(years, "2020").tolist() == [False, True, False, True]
    assert equals_text(years.astype(object), "2020").tolist() == (years.astype(object).astype(str) == "2020").tolist()
    assert equals_text(pd.Series(["2020", "2019"], dtype="category"), "2018").tolist() == [False, False]
