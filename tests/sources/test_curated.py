"""The curated table of report-sourced indicators and `talent-index curated check`."""

import pandas as pd
from typer.testing import CliRunner

from talent_index.cli import app

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent.parent
TABLE = ROOT / "data" / "curated" / "report_indicators_2020.csv"
runner = CliRunner()


def test_bundled_table_passes():
    res = runner.invoke(app, ["curated", "check", str(TABLE)])
    assert res.exit_code == 0 and "240 rows (133 values, 107 marked missing) for 30 cities pass" in res.output


def test_every_value_has_provenance():
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    assert len(t) == 240 and (t["publication"] != "").all() and (t["date_entered"] != "").all()
    assert set(t["status"]) == {"real", "proxy", "illustrative", "missing"}
    real = t[t["status"] == "real"]
    assert {k: len(v) for k, v in real.groupby("indicator")["city_id"]} == {
        "foreign_born_share": 11,
        "gdp": 24,
        "physician_density": 1,
        "rd_intensity": 4,
    }
    assert sorted(real.loc[real["indicator"] == "foreign_born_share", "city_id"]) == [
        "barcelona", "brussels", "london", "los-angeles", "new-york", "paris", "singapore", "stockholm", "toronto",
        "vienna", "washington-dc",
    ]  # fmt: skip
    assert (real.loc[real["indicator"].isin(["gdp", "foreign_born_share"]), "boundary"] != "").all()
    proxy = t[t["status"] == "proxy"]
    assert len(proxy) == 56 and (proxy["stands_for"] != "").all() and (proxy["table_or_page"] != "").all()
    missing = t[t["status"] == "missing"]
    assert len(missing) == 107 and (missing["value"] == "").all()


def test_bad_table_names_city_field_and_check(tmp_path):
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    t.loc[(t["city_id"] == "oslo") & (t["indicator"] == "foreign_born_share"), "unit"] = "fraction"
    t.loc[(t["city_id"] == "beijing") & (t["indicator"] == "rd_intensity"), "value"] = "250"
    t = t[~((t["city_id"] == "xian") & (t["indicator"] == "physician_density"))]
    bad = tmp_path / "bad.csv"
    t.to_csv(bad, index=False)
    res = runner.invoke(app, ["curated", "check", str(bad)])
    assert res.exit_code == 1
    assert "oslo:foreign_born_share unit 'fraction'" in res.output
    assert "expect_column_values_to_be_between(rd_intensity): beijing" in res.output
    assert "expect_table_row_count_to_equal(): observed 239" in res.output
    assert "3 failed checks" in res.output  # bounds, and the unit twice (value set, unit of the indicator)


def test_non_numeric_value_is_a_clear_error(tmp_path):
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    t.loc[0, "value"] = "n.a."
    bad = tmp_path / "bad.csv"
    t.to_csv(bad, index=False)
    res = runner.invoke(app, ["curated", "check", str(bad)])
    assert res.exit_code == 1 and "expected a number, found 'n.a.'" in res.output
    assert f"city {t.loc[0, 'city_id']}" in res.output and f"field {t.loc[0, 'indicator']}" in res.output
