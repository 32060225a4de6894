"""Refreshes through the CLI (offline, under one Prefect test server), each on a private copy of
the baseline home: idempotence, a blocked release, editions, latest by ingest order, a relocated
and an older data home, vintage fallbacks, and a source added without touching any other file."""

import json
import shutil
from html import escape
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from .conftest import cli, latest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def manifest(home: Path, rid: str) -> dict:
    return json.loads((home / "releases" / rid / "manifest.json").read_text())


def _files(folder):
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_second_run_with_unchanged_inputs_reuses_everything(home_copy):
    from flows.refresh import refresh

    home, rid = home_copy, latest(home_copy)
    raw_before = _files(home / "raw")
    snaps_before = _files(home / "snapshots")
    again = refresh(mode="offline")
    assert again["release"]["release_id"] == rid and again["release"]["reused"]
    # the flow returns each snapshot's record without its per-response lists (provenance.json has them)
    snap = again["sources"]["numbeo"]["snapshot"]
    assert snap["reused"] and "inputs" not in snap and "validation" not in snap
    on_disk = json.loads((home / snap["path"]).with_name("provenance.json").read_text())
    assert (
        on_disk["snapshot_id"] == snap["snapshot_id"]
        and len(on_disk["inputs"]) == again["sources"]["numbeo"]["responses"]
    )
    assert _files(home / "raw") == raw_before
    assert _files(home / "snapshots") == snaps_before
    assert [p.name for p in (home / "releases").iterdir() if p.is_dir()] == [rid]


def test_negative_pollution_blocks_the_release_and_keeps_latest(home_copy, tmp_path, monkeypatch, recordings):
    from talent_index.cli import app

    home = home_copy
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
    assert [e["edition"] for e in log] == ["2020", "2020", "2020"]
    assert log[0]["snapshot_id"] == log[2]["snapshot_id"] != log[1]["snapshot_id"]


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
    """The 2020 GaWC tier page states another edition: refused with the expected and found vintage;
    with --allow-vintage-fallback the release lists it in its manifest and report."""
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    page = rec / "2020" / "gawc" / "world2020t.html"
    page.write_text(page.read_text().replace("The World According to GaWC 2020", "The World According to GaWC 2018"))
    env = {"TALENT_INDEX_RECORDINGS": str(rec)}
    before = latest(home_copy)
    refused = cli("refresh", "--offline", "--source", "gawc", env=env)
    assert refused.exit_code == 1
    assert "[source gawc] edition 2020: expected vintage 2020, found 2018" in refused.output
    assert latest(home_copy) == before
    allowed = cli("refresh", "--offline", "--source", "gawc", "--allow-vintage-fallback", env=env)
    assert allowed.exit_code == 0, allowed.output
    assert "vintage fallback: gawc: expected 2020, used 2018" in allowed.output
    m = manifest(home_copy, latest(home_copy))
    assert [(f["source"], f["expected"], f["found"]) for f in m["vintage_fallbacks"]] == [("gawc", "2020", "2018")]
    html = (home_copy / "releases" / latest(home_copy) / "report" / "index.html").read_text()
    assert 'id="vintage-fallbacks"' in html and "gawc uses 2018 where its policy expects 2020" in html


def test_the_example_source_is_refreshed_end_to_end_and_scored(home_copy, tmp_path, registry):
    """tasks/sources/example.py, the checked-in example of the whole Source contract, added with no
    change to any other module: an entry in a copy of the sources configuration, its recording, its
    names column in a copy of the registry, the methodology taking the climate index from it."""
    from tasks.errors import PipelineError
    from tasks.ingest.core import ingest
    from tasks.sources import read_city_list, resolve_source

    url = "https://climate.example.org/list-{edition}.csv"
    config = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    config["example"] = {"module": "tasks.sources.example", "url": url, "http": {"allowed_domains": ["example.org"]}}
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    # the registry gains the column of the example's spellings ("Vienna, Austria"): data, not code
    cities = pd.read_csv(ROOT / "data" / "cities.csv", dtype=str, keep_default_na=False)
    cities["example_names"] = cities["name_en"] + ", " + cities["country"]
    cities.to_csv(tmp_path / "cities.csv", index=False)
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "data" / "recordings", rec)
    climate = {cid: 40 + i for i, cid in enumerate(registry.ids)}
    printed = dict(zip(cities["city_id"], cities["example_names"], strict=True))
    (rec / "2020" / "example").mkdir()
    (rec / "2020" / "example" / "list-2020.csv").write_text(
        "city,climate,year\n"
        + "".join(f'"{printed[c]}",{v},2020\n' for c, v in climate.items())
        + '"Atlantis, Nowhere",99,2020\n'
    )
    index = json.loads((rec / "2020" / "index.json").read_text())
    index[url.format(edition=2020)] = {
        "source": "example",
        "file": "example/list-2020.csv",
        "status": 200,
        "headers": {},
    }
    (rec / "2020" / "index.json").write_text(json.dumps(index))
    methodology = (ROOT / "scoring" / "methodology.yaml").read_text()
    changed = methodology.replace(
        'direction: "+", unit: index, source: numbeo}', 'direction: "+", unit: index, source: example}', 1
    )
    assert changed.count("source: example") == 1
    assert "climate_index" in changed.split("source: example")[0].splitlines()[-1]
    (tmp_path / "methodology.yaml").write_text(changed)
    env = {
        "TALENT_INDEX_SOURCES": str(tmp_path / "sources.yaml"),
        "TALENT_INDEX_RECORDINGS": str(rec),
        "TALENT_INDEX_METHODOLOGY": str(tmp_path / "methodology.yaml"),
        "TALENT_INDEX_REGISTRY": str(tmp_path / "cities.csv"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        cfg = resolve_source("example", config["example"], "2020")
        with pytest.raises(PipelineError, match=r"lacks the column\(s\) example_names that source example reads"):
            ingest("example", cfg, "offline", registry)  # the bundled registry has no example names
        listed = read_city_list("example", rec / "2020" / "example" / "list-2020.csv")  # for `cities build`
        assert (len(listed.items), listed.items[0].country) == (31, cities["country"][0])

    parsed = cli("parse", "example-csv", str(rec / "2020" / "example" / "list-2020.csv"), env=env)
    assert parsed.exit_code == 0 and parsed.stdout.startswith("city,climate,year"), parsed.output
    res = cli("refresh", "--offline", "--source", "example", env=env)
    assert res.exit_code == 0, res.output
    assert "example: snapshot" in res.output and "published release" in res.output
    rid = latest(home_copy)
    folder = home_copy / "releases" / rid
    m = manifest(home_copy, rid)
    assert {"source": "example", "expected_vintage": "2020", "vintage": "2020"}.items() <= next(
        i for i in m["inputs"] if i["source"] == "example"
    ).items()
    ind = pd.read_parquet(folder / "indicators.parquet")
    got = ind[ind["indicator"] == "climate_index"].set_index("city_id")["value"].to_dict()
    assert got == {c: float(v) for c, v in climate.items()}  # Atlantis is no registry city
    # what the source adds to the release, declared by it alone: a table and a note, in the report
    mildest = pd.read_csv(folder / "example_mildest.csv")
    assert list(mildest["city_id"]) == list(registry.ids[-3:][::-1])
    assert [t["file"] for t in m["source_tables"] if t["source"] == "example"] == ["example_mildest.csv"]
    html = (folder / "report" / "index.html").read_text()
    assert (
        "Example: the three mildest climates" in html
        and escape(printed[registry.ids[-1]]).replace("&#x27;", "&#39;") in html
    )
    assert 'id="note-example">Example: 30 climate values come from the example source' in html
    log = (home_copy / "snapshots" / "example" / "ingests.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["edition"] == "2020"
