"""The GX runner: large value sets are precomputed, with the same failures as GX's own check."""

import pandas as pd
import pytest

from tasks.validate import LARGE_VALUE_SET, run_suite

SUITE = {"name": "t", "expectations": [
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "city_id", "value_set": "${ids}"},
     "meta": {"severity": "error"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "v", "min_value": 0, "max_value": 10},
     "meta": {"severity": "warning"}}]}


@pytest.mark.parametrize("n_ids", [20, LARGE_VALUE_SET * 4])
def test_in_set_failures_are_the_same_for_small_and_large_sets(n_ids):
    ids = [f"c{i:04d}" for i in range(n_ids)]
    df = pd.DataFrame({"city_id": [ids[0], "atlantis", None, ids[1], "lemuria"], "v": [1.0, 2.0, 3.0, 11.0, 4.0]})
    rep = run_suite(df, SUITE, source="test", params={"ids": ids})
    assert [(r.expectation, r.column, r.severity, r.offending) for r in rep.results if not r.success] == [
        ("expect_column_values_to_be_in_set", "city_id", "error", ["atlantis", "lemuria"]),
        ("expect_column_values_to_be_between", "v", "warning", [ids[1]])]
    assert "__city_id_in_set" not in df.columns  # the caller's frame is left alone
