"""Both bundled editions published by `talent-index backfill --editions 2019,2020` (offline, through
the CLI, under one Prefect test server): each release at its policy's vintages, history across
editions, the report's chart of ranks across editions in a browser."""

import json
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest

from tasks.service.browser import headless_args

from .conftest import cli, latest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
POLICY_2019 = {
    "numbeo": ("2019", "2019"),
    "hurun": ("2019", "2019"),
    "gawc": ("2018", "2018"),
    "night_lights": ("none", "none"),  # the sample holds no composite: the GDP proxy
    "wdi": ("<= 2018", "2018"),
    "curated": ("<= 2019", "2018"),
}


def manifest(home: Path, rid: str) -> dict:
    return json.loads((home / "releases" / rid / "manifest.json").read_text())


def test_the_2020_release_holds_30_cities_and_its_inputs(backfilled):
    home, _ = backfilled
    rid = latest(home)
    path = home / "releases" / rid
    assert rid.startswith("2020-sample-")
    idx = pd.read_parquet(path / "index.parquet")
    assert len(idx) == 30 and sorted(idx["rank_international"]) == list(range(1, 31))
    assert sorted(idx["rank_domestic"].dropna().astype(int)) == list(range(1, 14))
    for col in ["city_id", "name_en", "name_zh", "final_score", "economy_score", "affordability_score"]:
        assert col in idx.columns
    assert idx["final_score"].between(50, 100).all()
    assert idx.set_index("city_id").loc["beijing", "name_zh"] == "北京"
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["sample"] is True and "not an official" in manifest["notice"]
    assert {i["source"] for i in manifest["inputs"]} == {"numbeo", "hurun", "gawc", "night_lights", "wdi", "curated"}
    from tasks.store.storage import sha256_file

    for i in manifest["inputs"]:
        assert sha256_file(home / i["path"]) == i["sha256"]  # stored relative to the data home
    assert manifest["edition"] == "2020" and manifest["vintage_fallbacks"] == []
    assert {i["source"]: (i["expected_vintage"], i["vintage"]) for i in manifest["inputs"]} == {
        "numbeo": ("2020", "2020"),
        "hurun": ("2020", "2020"),
        "gawc": ("2020", "2020"),
        "night_lights": ("none", "none"),
        "wdi": ("<= 2019", "2019"),
        "curated": ("<= 2020", "2020"),  # its newest publication: the CASS 2020-2021 ranks (Paris, Brussels)
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
    # only edition 2020 has printed figures to be compared with
    assert m20["fidelity"] == {"compared_with": "the published 2020 index", "file": "fidelity_2020.csv"}
    assert m19["fidelity"]["compared_with"] is None and not list((home / "releases" / first).glob("fidelity_*"))
    assert "nothing printed to compare edition 2019 with" in m19["fidelity"]["note"]
    html19 = (home / "releases" / first / "report" / "index.html").read_text()
    assert "nothing printed to compare edition 2019 with (the report printed 2020)" in html19
    res19 = cli("fidelity", first, env={"TALENT_INDEX_HOME": str(home)})
    assert res19.exit_code == 0 and "nothing printed to compare edition 2019 with" in res19.output
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


def test_releases_commands(backfilled):
    home, _ = backfilled
    env = {"TALENT_INDEX_HOME": str(home)}
    listed = cli("releases", "list", env=env)
    assert listed.exit_code == 0 and latest(home) in listed.output and "latest of edition" in listed.output
    shown = cli("releases", "show", env=env)
    assert shown.exit_code == 0 and "SAMPLE RELEASE" in shown.output and "北京" in shown.output
    verified = cli("releases", "verify", env=env)
    assert verified.exit_code == 0 and "matches" in verified.output
    missing = cli("releases", "show", "no-such-release", env=env)
    assert missing.exit_code == 1 and "no release 'no-such-release'" in missing.output


def test_the_chart_of_ranks_across_editions_loads_in_headless_chromium(backfilled, tmp_path, chromium_path):
    browser = chromium_path
    home, _ = backfilled
    page = home / "releases" / latest(home) / "report" / "index.html"
    flags = headless_args(tmp_path / "profile", "--virtual-time-budget=5000")
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dom.stdout[dom.stdout.index("<body") : dom.stdout.index(">", dom.stdout.index("<body"))]
    assert 'data-broken-images=""' in body and 'data-errors=""' in body
    section = dom.stdout[dom.stdout.index('<section id="history">') :]
    section = section[: section.index("</section>")]
    assert 'src="ranks_across_editions.svg"' in section and "editions 2019, 2020" in section
    svg = (page.parent / "ranks_across_editions.svg").read_text()
    ET.fromstring(svg)  # well-formed
    # the top 15 of 2020: one line each across both editions, a marker per edition, labelled at both ends
    assert svg.count("<polyline") == 15 and svg.count("<circle") == 30
    idx = pd.read_parquet(home / "releases" / latest(home) / "index.parquet").set_index("rank_international")
    assert f">1 {idx.loc[1, 'name_en']}</text>" in svg and f">15 {idx.loc[15, 'name_en']}</text>" in svg
