"""The whole offline refresh under a Prefect test server: release, idempotence, blocked release."""

import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first_release(backfilled, tmp_path_factory):
    """A copy of the backfilled home (editions 2019 and 2020, through the CLI) for this module."""
    home = tmp_path_factory.mktemp("refresh") / "home"
    shutil.copytree(backfilled[0], home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALENT_INDEX_HOME", str(home))
        rid = (home / "releases" / "LATEST").read_text().strip()
        yield home, {"release": {"release_id": rid, "sample": True}}


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_offline_refresh_publishes_a_30_city_sample_release(first_release):
    home, out = first_release
    rel = out["release"]
    path = home / "releases" / rel["release_id"]
    assert (home / "releases" / "LATEST").read_text().strip() == rel["release_id"]
    assert rel["release_id"].startswith("2020-sample-") and rel["sample"]
    idx = pd.read_parquet(path / "index.parquet")
    assert len(idx) == 30 and sorted(idx["rank_international"]) == list(range(1, 31))
    assert sorted(idx["rank_domestic"].dropna().astype(int)) == list(range(1, 14))
    for col in ["city_id", "name_en", "name_zh", "final_score", "economy_score", "affordability_score"]:
        assert col in idx.columns
    assert idx["final_score"].between(50, 100).all()
    assert idx.set_index("city_id").loc["beijing", "name_zh"] == "北京"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["sample"] is True and "not an official" in manifest["notice"]
    assert {i["source"] for i in manifest["inputs"]} == {"numbeo", "hurun", "gawc", "night_lights", "curated"}
    from tasks.storage import sha256_file

    for i in manifest["inputs"]:
        assert sha256_file(home / i["path"]) == i["sha256"]  # stored relative to the data home
    assert manifest["edition"] == "2020" and manifest["vintage_fallbacks"] == []
    assert {i["source"]: (i["expected_vintage"], i["vintage"]) for i in manifest["inputs"]} == {
        "numbeo": ("2020", "2020"),
        "hurun": ("2020", "2020"),
        "gawc": ("2020", "2020"),
        "night_lights": ("2019", "2019"),
        "curated": ("<= 2020", "2019"),
    }
    assert manifest["methodology"]["version"] == "1.0.0" and len(manifest["methodology"]["sha256"]) == 64
    assert manifest["dimension_weights"]["weights"]["innovation"] == 0.27
    status = manifest["coverage"]["values_by_status"]
    assert status["real"] > 100 and status["illustrative"] > 100 and sum(status.values()) == 30 * 17
    assert (path / "SAMPLE.txt").exists()
    indicators = pd.read_parquet(path / "indicators.parquet")
    assert len(indicators) == 30 * 17
    docs = list(home.glob("runs/*/data-docs/index.html"))
    assert len(docs) == 2  # GX Data Docs of every validation of each refresh (one per edition), in the run's folder
    for d in docs:
        pages = list(d.parent.glob("validations/**/*.html"))
        assert len(pages) >= 8 and any("numbeo" in str(p) for p in pages)


def test_second_run_with_unchanged_inputs_reuses_everything(first_release):
    from flows.refresh import refresh

    home, out = first_release
    raw_before = _files(home / "raw")
    snaps_before = _files(home / "snapshots")
    again = refresh(mode="offline")
    assert again["release"]["release_id"] == out["release"]["release_id"] and again["release"]["reused"]
    assert _files(home / "raw") == raw_before
    assert _files(home / "snapshots") == snaps_before
    assert sorted(p.name for p in (home / "releases").iterdir() if p.is_dir()) == [
        out["release"]["release_id"].replace("2020-", "2019-", 1),
        out["release"]["release_id"],
    ]


def test_negative_pollution_blocks_the_release_and_keeps_latest(first_release, tmp_path, monkeypatch, recordings):
    from talent_index.cli import app

    home, out = first_release
    latest = (home / "releases" / "LATEST").read_text()
    snaps_before = {p: p.read_bytes() for p in _files(home / "snapshots")}
    rec = tmp_path / "rec"
    shutil.copytree(recordings, rec)
    page = rec / "2020" / "numbeo" / "quality-of-life-rankings-2020.html"
    html = page.read_text()
    assert ">86.96<" in html  # Beijing's pollution index
    page.write_text(html.replace(">86.96<", ">-86.96<", 1))
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    result = CliRunner().invoke(app, ["refresh", "--offline", "--source", "numbeo"])
    assert result.exit_code == 1
    message = result.output
    assert "source numbeo" in message and "suite numbeo" in message
    assert "expect_column_values_to_be_between(pollution_index)" in message and "beijing" in message
    assert "Traceback" not in message
    assert (home / "releases" / "LATEST").read_text() == latest
    assert {p: p.read_bytes() for p in _files(home / "snapshots")} == snaps_before


def test_releases_commands(first_release):
    from talent_index.cli import app

    _, out = first_release
    runner = CliRunner()
    listed = runner.invoke(app, ["releases", "list"])
    assert listed.exit_code == 0 and out["release"]["release_id"] in listed.output
    shown = runner.invoke(app, ["releases", "show"])
    assert shown.exit_code == 0 and "SAMPLE RELEASE" in shown.output and "北京" in shown.output
    verified = runner.invoke(app, ["releases", "verify"])
    assert verified.exit_code == 0 and "matches" in verified.output
    missing = runner.invoke(app, ["releases", "show", "no-such-release"])
    assert missing.exit_code == 1 and "no release 'no-such-release'" in missing.output
