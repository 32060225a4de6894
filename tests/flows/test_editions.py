"""A living index: editions resolved per source, latest by ingest order, a relocatable data home,
history across editions — through the CLI, on the two bundled editions."""

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from .conftest import cli, latest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
POLICY_2019 = {
    "numbeo": ("2019", "2019"),
    "hurun": ("2019", "2019"),
    "gawc": ("2018", "2018"),
    "night_lights": ("2018", "2018"),
    "curated": ("<= 2019", "2018"),
}


def manifest(home: Path, rid: str) -> dict:
    return json.loads((home / "releases" / rid / "manifest.json").read_text())


def test_backfill_publishes_one_release_per_edition_with_each_input_at_its_policy_vintage(backfilled):
    home, res = backfilled
    ids = re.findall(r"published release (\S+) \(edition (\d{4})\)", res.output)
    assert [e for _, e in ids] == ["2019", "2020"]
    first, second = (rid for rid, _ in ids)
    assert latest(home) == second  # the newest edition
    m19 = manifest(home, first)
    assert m19["edition"] == "2019" and m19["vintage_fallbacks"] == [] and m19["previous_release"] is None
    assert {i["source"]: (i["expected_vintage"], i["vintage"]) for i in m19["inputs"]} == POLICY_2019
    m20 = manifest(home, second)
    assert m20["previous_release"] == first  # compared across editions
    # every input of the 2019 release comes from a snapshot of edition 2019
    assert {i["edition"] for i in m19["inputs"]} == {"2019"}
    hist = pd.read_parquet(home / "releases" / second / "history.parquet")
    assert hist.groupby("edition").size().to_dict() == {"2019": 30, "2020": 30}
    assert set(hist["release_id"]) == {first, second}
    idx19 = pd.read_parquet(home / "releases" / first / "index.parquet").set_index("city_id")
    h19 = hist[hist["edition"] == "2019"].set_index("city_id")
    assert (h19["rank_international"] == idx19["rank_international"]).all()
    assert (h19["innovation_rank_international"] == idx19["innovation_rank_international"]).all()
    html = (home / "releases" / second / "report" / "index.html").read_text()
    assert '<section id="history">' in html and 'src="ranks_across_editions.svg"' in html
    assert "Across editions: 2019 rank" in html  # a card's trajectory
    changes = (home / "releases" / second / "CHANGES.md").read_text()
    assert "Across editions: 2019 → 2020." in changes and "| moved by |" in changes


def test_diff_across_editions_names_the_dimensions_that_moved_a_city(backfilled):
    home, _ = backfilled
    first, second = sorted(p.name for p in (home / "releases").iterdir() if p.is_dir())
    res = cli("releases", "diff", first, second, env={"TALENT_INDEX_HOME": str(home)})
    assert res.exit_code == 0, res.output
    a = pd.read_parquet(home / "releases" / first / "index.parquet").set_index("city_id")
    b = pd.read_parquet(home / "releases" / second / "index.parquet").set_index("city_id")
    w = manifest(home, second)["dimension_weights"]["weights"]
    # the first city of the table: its biggest contribution change, recomputed here
    row = next(line for line in res.stdout.splitlines() if line.startswith("| New York |"))
    delta = {d: (b.loc["new-york", f"{d}_score"] - a.loc["new-york", f"{d}_score"]) * w[d] for d in w}
    top = max(delta, key=lambda d: abs(delta[d]))
    assert f"{top} {delta[top]:+.2f}" in row


def test_an_edition_nobody_recorded_is_refused_and_latest_does_not_move(home_copy):
    before = latest(home_copy)
    releases = sorted(p.name for p in (home_copy / "releases").iterdir())
    res = cli("refresh", "--offline", "--edition", "2031")
    assert res.exit_code == 1
    assert "no recordings for edition 2031" in res.output and "recorded editions: 2019, 2020" in res.output
    assert latest(home_copy) == before and sorted(p.name for p in (home_copy / "releases").iterdir()) == releases


def test_content_a_b_a_leaves_latest_with_a(home_copy, tmp_path):
    """A value goes bad (B, published with a warning), then the source is back to A: the last ingest
    is A, so LATEST holds A's values again (the release built from A is reused)."""
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    page = rec / "2020" / "numbeo" / "quality-of-life-rankings-2020.html"
    a = page.read_bytes()
    first = latest(home_copy)
    env = {"TALENT_INDEX_RECORDINGS": str(rec)}
    assert b">86.96<" in a  # Beijing's pollution index
    page.write_bytes(a.replace(b">86.96<", b">56.96<", 1))
    b_run = cli("refresh", "--offline", "--source", "numbeo", env=env)
    assert b_run.exit_code == 0, b_run.output
    b_release = latest(home_copy)
    assert b_release != first
    b_values = pd.read_parquet(home_copy / "releases" / b_release / "indicators.parquet")
    assert b_values.set_index(["city_id", "indicator"]).loc[("beijing", "pollution_index"), "value"] == 56.96
    page.write_bytes(a)
    a_run = cli("refresh", "--offline", "--source", "numbeo", env=env)
    assert a_run.exit_code == 0, a_run.output
    assert latest(home_copy) == first  # A's release, reused
    ind = pd.read_parquet(home_copy / "releases" / latest(home_copy) / "indicators.parquet")
    assert ind.set_index(["city_id", "indicator"]).loc[("beijing", "pollution_index"), "value"] == 86.96
    log = [json.loads(x) for x in (home_copy / "snapshots" / "numbeo" / "ingests.jsonl").read_text().splitlines()]
    assert [e["edition"] for e in log] == ["2019", "2020", "2020", "2020"]
    assert log[1]["snapshot_id"] == log[3]["snapshot_id"] != log[2]["snapshot_id"]


def test_a_copied_data_home_verifies_and_refreshes(home_copy, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "data"
    shutil.copytree(home_copy, moved, symlinks=True)
    shutil.rmtree(home_copy)  # nothing may still point at the old place
    monkeypatch.setenv("TALENT_INDEX_HOME", str(moved))
    for rid in sorted(p.name for p in (moved / "releases").iterdir() if p.is_dir()):
        res = cli("releases", "verify", rid)
        assert res.exit_code == 0 and "every file matches" in res.output, res.output
    before = latest(moved)
    again = cli("refresh", "--offline", "--source", "hurun")
    assert again.exit_code == 0, again.output
    assert f"unchanged inputs: release {before}" in again.output  # the copied snapshots were reused
    assert "hurun: snapshot" in again.output and "(unchanged, vintage 2020)" in again.output


def test_an_older_home_with_absolute_paths_is_refused_until_migrated(home_copy):
    # rewrite the home as the previous version wrote it: absolute paths, no logs, no format marker
    for prov in home_copy.glob("snapshots/*/*/*/provenance.json"):
        doc = json.loads(prov.read_text())
        doc["path"] = str(home_copy / doc["path"])
        for t in doc["tables"].values():
            t["path"] = str(home_copy / t["path"])
        prov.write_text(json.dumps(doc))
    for log in [
        *home_copy.glob("snapshots/*/ingests.jsonl"),
        home_copy / "releases" / "log.jsonl",
        home_copy / "FORMAT.json",
    ]:
        log.unlink()
    before = latest(home_copy)
    refused = cli("refresh", "--offline", "--source", "gawc")
    assert refused.exit_code == 1 and "talent-index home migrate" in refused.output
    migrated = cli("home", "migrate")
    assert migrated.exit_code == 0 and "now format 2" in migrated.output, migrated.output
    prov = json.loads(next(home_copy.glob("snapshots/numbeo/2020/*/provenance.json")).read_text())
    assert not prov["path"].startswith("/")
    again = cli("refresh", "--offline", "--source", "gawc")
    assert again.exit_code == 0, again.output
    assert latest(home_copy) == before and f"unchanged inputs: release {before}" in again.output


def test_a_vintage_fallback_is_refused_then_published_and_listed(home_copy, tmp_path):
    """The 2020 Hurun page states another year: refused with the expected and found vintage; with
    --allow-vintage-fallback the release lists it in its manifest and report."""
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    page = rec / "2020" / "hurun" / "global-unicorn-index-2020.html"
    page.write_text(page.read_text().replace("Hurun Global Unicorn Index 2020", "Hurun Global Unicorn Index 2019"))
    env = {"TALENT_INDEX_RECORDINGS": str(rec)}
    before = latest(home_copy)
    refused = cli("refresh", "--offline", "--source", "hurun", env=env)
    assert refused.exit_code == 1
    assert "[source hurun] edition 2020: expected vintage 2020, found 2019" in refused.output
    assert latest(home_copy) == before
    allowed = cli("refresh", "--offline", "--source", "hurun", "--allow-vintage-fallback", env=env)
    assert allowed.exit_code == 0, allowed.output
    assert "vintage fallback: hurun: expected 2020, used 2019" in allowed.output
    m = manifest(home_copy, latest(home_copy))
    assert [(f["source"], f["expected"], f["found"]) for f in m["vintage_fallbacks"]] == [("hurun", "2020", "2019")]
    html = (home_copy / "releases" / latest(home_copy) / "report" / "index.html").read_text()
    assert 'id="vintage-fallbacks"' in html and "hurun uses 2019 where its policy expects 2020" in html
