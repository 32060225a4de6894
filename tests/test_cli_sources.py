"""`talent-index sources check` (the preflight) and `curated template` (a new edition's curated table)."""

import pandas as pd
from typer.testing import CliRunner

from talent_index.cli import app
from tasks.ingest.preflight import preflight

runner = CliRunner()


def test_the_preflight_of_2026_names_every_source_and_what_is_missing(monkeypatch):
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    plans = {p.source: p for p in preflight("2026")}
    assert list(plans) == ["numbeo", "hurun", "gawc", "night_lights", "wdi", "curated"]
    assert plans["wdi"].vintage == "<= 2025" and plans["wdi"].reads[0].startswith(
        "https://api.worldbank.org/v2/country/all/indicator/SH.MED.PHYS.ZS?format=json&date=2013:2025"
    )
    assert plans["numbeo"].reads == ["https://www.numbeo.com/quality-of-life/rankings.jsp?title=2026"]
    assert plans["hurun"].reads == [
        "https://www.hurun.net/en-US/Rank/HsRankDetails?num=E9A16F3H&pagetype=unicorn",
        "https://www.hurun.net/en-US/Rank/HsRankDetailsList?num=E9A16F3H&search=&offset=0&limit=200",
    ]
    assert plans["gawc"].vintage == "2024" and plans["gawc"].notes == [
        "connectivity: GaWC 2020 data set (GaWC 2024 published tiers only)"
    ]
    assert plans["night_lights"].vintage == "2025" and plans["night_lights"].missing == [
        "EARTHDATA_TOKEN is not set (a secret its requests carry: environment or Prefect Secret block); with "
        "--allow-vintage-fallback it is read as {'format': 'none'} instead"
    ]
    (curated,) = plans["curated"].missing
    assert curated.endswith(
        "data/curated/report_indicators_2026.csv does not exist: start it from the newest curated table with "
        "`talent-index curated template --edition 2026 -o data/curated/report_indicators_2026.csv`, update the values "
        "you can, then `talent-index curated check data/curated/report_indicators_2026.csv`"
    )
    assert [p for p in plans.values() if p.ready] == [plans["numbeo"], plans["hurun"], plans["gawc"], plans["wdi"]]
    res = runner.invoke(app, ["sources", "check", "--edition", "2026"])
    assert res.exit_code == 1
    assert "edition 2026 could not be published: night_lights, curated cannot run" in " ".join(res.output.split())


def test_the_preflight_of_a_year_without_a_hurun_list_and_of_the_offline_sample(monkeypatch):
    monkeypatch.setenv("EARTHDATA_TOKEN", "t")
    (hurun,) = preflight("2018", sources=["hurun"])
    assert hurun.missing and "no list of year 2018" in hurun.missing[0]
    res = runner.invoke(app, ["sources", "check", "--edition", "2020", "--offline"])
    assert res.exit_code == 0 and "edition 2020: every source can run" in res.output, res.output


def test_curated_template_carries_every_row_forward_with_its_own_vintage(tmp_path):
    out = tmp_path / "report_indicators_2026.csv"
    res = runner.invoke(app, ["curated", "template", "--edition", "2026", "-o", str(out)])
    assert res.exit_code == 0, res.output
    new = pd.read_csv(out, dtype=str, keep_default_na=False)
    old = pd.read_csv("data/curated/report_indicators_2020.csv", dtype=str, keep_default_na=False)
    assert len(new) == len(old) == 240 and set(new["carried_from"]) == {"2020"}
    same = ["city_id", "indicator", "value", "unit", "publication", "edition", "status"]
    assert new[same].equals(old[same])  # values and their own vintage kept
    assert new["note"].str.startswith("carried forward from the edition 2020 table").all()
    again = runner.invoke(app, ["curated", "template", "--edition", "2026", "-o", str(out)])
    assert again.exit_code == 1 and f"{out} exists: choose another --output, or --force" in again.output
    check = runner.invoke(app, ["curated", "check", str(out)])
    assert check.exit_code == 0, check.output
