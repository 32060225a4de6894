"""The curated table of report-sourced indicators and `talent-index curated check`."""

import pandas as pd
from typer.testing import CliRunner

from talent_index.cli import app

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent.parent
TABLE = ROOT / "data" / "curated" / "report_indicators_2020.csv"
runner = CliRunner()


def test_bundled_table_passes():
    res = runner.invoke(app, ["curated", "check", str(TABLE)])
    assert res.exit_code == 0 and "210 values for 30 cities pass" in res.output


def test_every_value_has_provenance():
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    assert len(t) == 210 and (t["publication"] != "").all() and (t["date_entered"] != "").all()
    assert set(t["status"]) == {"real", "proxy", "illustrative"}
    real = t[t["status"] == "real"]
    assert real.groupby("indicator")["city_id"].apply(sorted).to_dict() == {
        "foreign_born_share": ["brussels", "london", "los-angeles", "new-york", "singapore", "toronto"],
        "physician_density": ["beijing"],
        "rd_intensity": ["beijing", "shanghai", "shenzhen", "tianjin"],
    }
    proxy = t[t["status"] == "proxy"]
    assert len(proxy) == 121 and (proxy["stands_for"] != "").all() and (proxy["table_or_page"] != "").all()


def test_bad_table_names_city_field_and_check(tmp_path):
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    t.loc[(t["city_id"] == "oslo") & (t["indicator"] == "foreign_born_share"), "unit"] = "fraction"
    t.loc[(t["city_id"] == "paris") & (t["indicator"] == "rd_intensity"), "value"] = "250"
    t = t[~((t["city_id"] == "xian") & (t["indicator"] == "physician_density"))]
    bad = tmp_path / "bad.csv"
    t.to_csv(bad, index=False)
    res = runner.invoke(app, ["curated", "check", str(bad)])
    assert res.exit_code == 1
    assert "oslo:foreign_born_share unit 'fraction'" in res.output
    assert "expect_column_values_to_be_between(rd_intensity): paris" in res.output
    assert "expect_table_row_count_to_equal(): observed 209" in res.output
    assert "3 failed checks" in res.output  # bounds, and the unit twice (value set, unit of the indicator)


def test_non_numeric_value_is_a_clear_error(tmp_path):
    t = pd.read_csv(TABLE, dtype=str, keep_default_na=False)
    t.loc[0, "value"] = "n.a."
    bad = tmp_path / "bad.csv"
    t.to_csv(bad, index=False)
    res = runner.invoke(app, ["curated", "check", str(bad)])
    assert res.exit_code == 1 and "expected a number, found 'n.a.'" in res.output
    assert f"city {t.loc[0, 'city_id']}" in res.output and f"field {t.loc[0, 'indicator']}" in res.output
