"""The GX runner: large value sets are precomputed, with the same failures as GX's own check."""

import pandas as pd
import pytest

from tasks.validate import LARGE_VALUE_SET, run_suite

SUITE = {
    "name": "t",
    "expectations": [  # GX's own severity and suite parameters
        {
            "type": "expect_column_values_to_be_in_set",
            "kwargs": {"column": "city_id", "value_set": {"$PARAMETER": "ids"}},
            "severity": "critical",
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "v", "min_value": 0, "max_value": 10},
            "severity": "warning",
        },
    ],
}


@pytest.mark.parametrize("dtype", ["str", "object", "category"])
@pytest.mark.parametrize("n_ids", [20, LARGE_VALUE_SET * 4])
def test_in_set_failures_are_the_same_for_small_and_large_sets(n_ids, dtype):
    """Whatever the column's type (Arrow text, Python objects, categories): a large set is looked up
    through Arrow, a small one by GX, with the same failures."""
    ids = [f"c{i:04d}" for i in range(n_ids)]
    df = pd.DataFrame({"city_id": [ids[0], "atlantis", None, ids[1], "lemuria"], "v": [1.0, 2.0, 3.0, 11.0, 4.0]})
    df["city_id"] = df["city_id"].astype(dtype)
    rep = run_suite(df, SUITE, source="test", params={"ids": ids})
    assert [(r.expectation, r.column, r.severity, r.offending) for r in rep.results if not r.success] == [
        ("expect_column_values_to_be_in_set", "city_id", "error", ["atlantis", "lemuria"]),
        ("expect_column_values_to_be_between", "v", "warning", [ids[1]]),
    ]
    assert "__city_id_in_set" not in df.columns  # the caller's frame is left alone


def test_data_docs_are_rendered_once_for_all_pending_validations(tmp_path):
    from tasks.gx_adapter import render_data_docs

    docs = tmp_path / "data-docs"
    df = pd.DataFrame({"city_id": ["c0001", "c0002"], "v": [1.0, 12.0]})
    suite = {**SUITE, "expectations": SUITE["expectations"][1:]}
    for source in ("alpha", "beta"):
        rep = run_suite(df, {**suite, "name": source}, source=source, docs_dir=docs)
        assert [r.offending for r in rep.results] == [["c0002"]]
    assert not (docs / "index.html").exists()  # nothing rendered per validation
    assert render_data_docs(docs) == docs / "index.html"
    suites = sorted(p.relative_to(docs).parts[1].rsplit("-", 1)[0] for p in docs.glob("validations/**/*.html"))
    assert suites == ["alpha", "beta"]  # one validation page each
    assert sorted(p.stem.rsplit("-", 1)[0] for p in docs.glob("expectations/*.html")) == ["alpha", "beta"]
    index = (docs / "index.html").read_text()
    assert "alpha" in index and "beta" in index
    assert render_data_docs(docs) is None  # nothing pending any more


def test_a_suite_parameter_nobody_supplied_is_named():
    from tasks.errors import PipelineError

    df = pd.DataFrame({"city_id": ["c0001"], "v": [1.0]})
    with pytest.raises(PipelineError, match=r"suite 't': suite parameters \['ids'\] were not supplied"):
        run_suite(df, SUITE, source="test", params={})


def test_every_failing_row_is_listed_with_its_value_and_passing_checks_keep_their_observed_values():
    """A suite that passes is validated once with GX's BASIC results (observed values, counts); one
    with a failed check again with COMPLETE results, which list every failing row, not BASIC's
    first 20."""
    ids = [f"c{i:03d}" for i in range(45)]
    df = pd.DataFrame({"city_id": ids, "v": [11.0 + i for i in range(45)]})
    suite = {
        "name": "t",
        "expectations": [
            *SUITE["expectations"],
            {"type": "expect_table_row_count_to_equal", "kwargs": {"value": 45}},
            {"type": "expect_column_max_to_be_between", "kwargs": {"column": "v", "min_value": 0, "max_value": 100}},
        ],
    }
    failed = run_suite(df, suite, source="test", params={"ids": ids})
    between = next(r for r in failed.results if r.expectation == "expect_column_values_to_be_between")
    assert between.offending == ids and between.values == [str(11.0 + i) for i in range(45)]
    passed = run_suite(df.assign(v=5.0), suite, source="test", params={"ids": ids})
    observed = {r.expectation: r.observed for r in passed.results}
    assert passed.success and observed["expect_table_row_count_to_equal"] == 45
    assert observed["expect_column_max_to_be_between"] == 5.0


def test_a_second_pass_runs_the_failing_expectations_only_and_a_repeated_validation_none(monkeypatch):
    """GX runs the suite once (BASIC), then its failing expectations alone (COMPLETE); the same table,
    suite and parameters validated again in this process are not run through GX at all."""
    from great_expectations.datasource.fluent.interfaces import Batch

    runs: list[tuple[str, list[str]]] = []
    real = Batch.validate

    def counted(self, expect, *args, **kwargs):
        runs.append((kwargs["result_format"], [e.expectation_type for e in expect.expectations]))
        return real(self, expect, *args, **kwargs)

    monkeypatch.setattr(Batch, "validate", counted)
    ids = [f"c{i:03d}" for i in range(5)]
    df = pd.DataFrame({"city_id": ids, "v": [1.0, 2.0, 30.0, 4.0, 50.0], "w": [0.5] * 5})
    suite = {
        "name": "memo",
        "expectations": [
            *SUITE["expectations"],
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "w"}},
        ],
    }
    first = run_suite(df, suite, source="test", params={"ids": ids})
    assert runs == [
        (
            "BASIC",
            [
                "expect_column_values_to_be_in_set",
                "expect_column_values_to_be_between",
                "expect_column_values_to_not_be_null",
            ],
        ),
        ("COMPLETE", ["expect_column_values_to_be_between"]),
    ]
    between = next(r for r in first.results if r.expectation == "expect_column_values_to_be_between")
    assert (between.offending, between.values) == (["c002", "c004"], ["30.0", "50.0"])
    again = run_suite(df.copy(), suite, source="test", params={"ids": ids})
    assert len(runs) == 2 and [r.as_dict() for r in again.results] == [r.as_dict() for r in first.results]
    # GX's fingerprint of a table leaves its column names and dtypes out; the key does not
    renamed = run_suite(df.rename(columns={"v": "w", "w": "v"}), suite, source="test", params={"ids": ids})
    assert len(runs) == 3 and renamed.success
    # nor int64 from int32, which have one fingerprint
    typed = {
        "name": "typed",
        "expectations": [{"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "n", "type_": "int64"}}],
    }
    n = pd.DataFrame({"city_id": ids, "n": [1, 2, 3, 4, 5]})
    assert run_suite(n, typed, source="test").success
    assert not run_suite(n.astype({"n": "int32"}), typed, source="test").success
    assert len(runs) == 6


def test_a_module_loaded_on_first_use_runs_when_an_attribute_is_used(tmp_path, monkeypatch):
    import sys

    from tasks.gx_adapter import load_on_first_use

    (tmp_path / "probe_pkg").mkdir()
    (tmp_path / "probe_pkg" / "__init__.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('ran').touch()\nVALUE = 42\n"
    )
    (tmp_path / "probe_pkg" / "sub.py").write_text("SUB = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    load_on_first_use("probe_pkg")
    import probe_pkg
    import probe_pkg.sub  # a submodule imports without its package running

    assert not (tmp_path / "probe_pkg" / "ran").exists() and probe_pkg.sub.SUB == 7
    assert probe_pkg.VALUE == 42  # the first attribute it lacks: the package runs
    assert (tmp_path / "probe_pkg" / "ran").exists()
    real = sys.modules["probe_pkg"]
    assert real is not probe_pkg and type(real).__name__ == "module" and real.VALUE == 42
    load_on_first_use("probe_pkg")  # loaded already: left as it is
    assert sys.modules.pop("probe_pkg") is real
    sys.modules.pop("probe_pkg.sub")
