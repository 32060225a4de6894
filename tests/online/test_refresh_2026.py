"""The annual deployment's flow, online, for edition 2026, on the loopback internet: it publishes a
release of edition 2026; a Hurun page answering 500 until the retries are spent, an expired
Earthdata token and a `num` the API does not know each fail the run naming the page, with nothing
published and the home left byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import COOKIE, LIVE_TOTAL, TOKEN, copy_home

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
HURUN_API = "https://www.hurun.net/en-US/Rank/HsRankDetailsList?num=E9A16F3H&search=&offset={}&limit=200"


def annual_parameters(home: Path, **more) -> dict:
    """The annual deployment's parameters (prefect.yaml), for edition 2026 and this data home."""
    doc = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    dep = next(d for d in doc["deployments"] if d["name"] == "annual-full-refresh")
    assert dep["parameters"]["mode"] == "online"
    return {**dep["parameters"], "edition": "2026", "data_home": str(home), **more}


def run(home: Path, monkeypatch, **more) -> dict:
    from flows.refresh import refresh

    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))  # restored after the test (the flow sets it too)
    return refresh(**annual_parameters(home, **more))


def state(home: Path) -> dict:
    """Every file under releases/ with its bytes (nothing published must leave it identical)."""
    root = home / "releases"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def published(internet, online_env, prefect_harness, tmp_path_factory):
    """One online run of edition 2026 into a new data home: (home, result)."""
    with pytest.MonkeyPatch.context() as mp:
        import tasks.http

        internet.resolve_here(mp, tmp_path_factory.mktemp("ca") / "ca.pem")
        mp.setattr(tasks.http, "pause", lambda seconds: None)
        for k, v in online_env[0].items():
            mp.setenv(k, v)
        home = tmp_path_factory.mktemp("online-2026") / "home"
        return home, run(home, mp)


def test_the_annual_flow_publishes_edition_2026_online(published, internet):
    home, result = published
    rel = result["release"]
    assert rel["edition"] == "2026" and not rel["sample"] and not rel["reused"]
    m = json.loads((home / "releases" / rel["release_id"] / "manifest.json").read_text())
    inputs = {i["source"]: i for i in m["inputs"]}
    assert {s: (i["expected_vintage"], i["vintage"], i["ingest_mode"]) for s, i in inputs.items()} == {
        "numbeo": ("2026", "2026", "online"),
        "hurun": ("2026", "2026", "online"),
        "gawc": ("2024", "2024", "online"),
        "night_lights": ("2025", "2025", "online"),
        "wdi": ("<= 2025", "2019", "online"),
        "curated": ("<= 2026", "2020", "online"),
    }
    assert inputs["gawc"]["vintage_notes"] == ["connectivity: GaWC 2020 data set (GaWC 2024 published tiers only)"]
    # the curated table of 2026 is the 2020 one carried forward: every value listed as a fallback
    carried = [f for f in m["vintage_fallbacks"] if f["source"] == "curated"]
    assert len(carried) == 1 and carried[0]["edition_used"] == "2020" and len(carried[0]["values"]) == 30 * 8
    # the World Bank's figures (2018-2019) are older than the policy's limit for 2026 (2020): listed too
    (old,) = [f for f in m["vintage_fallbacks"] if f["source"] == "wdi"]
    assert old["reason"].startswith("48 country figures older than 2020 (max_age 5)") and len(old["values"]) == 48
    hits = [s for s in internet.seen if s.host == "api.worldbank.org" and s.path != "/robots.txt"]
    assert len(hits) == 3 and all("/country/all/indicator/" in s.path and "date=2013:2025" in s.path for s in hits)
    report = (home / "releases" / rel["release_id"] / "report" / "index.html").read_text()
    assert "connectivity: GaWC 2020 data set (GaWC 2024 published tiers only)" in report
    assert "240 values carried forward from the edition 2020 table" in report
    # Hurun: the rank page first (its cookie), then every page of the API with the site's headers
    pages = [HURUN_API.format(o) for o in range(0, LIVE_TOTAL, 200)]
    assert len(pages) == 9
    for url in pages:
        (hit,) = internet.hits(url)
        assert hit.status == 200 and COOKIE in hit.headers["cookie"]
        assert hit.headers["x-requested-with"] == "XMLHttpRequest"
        assert hit.headers["referer"] == "https://www.hurun.net/en-US/Rank/HsRankDetails?num=E9A16F3H&pagetype=unicorn"
    companies = result["sources"]["hurun"]
    assert companies["responses"] == 10 and companies["vintage"]["found"] == "2026"
    # night lights: the v2 listing, then every tile with the token
    tiles = [s for s in internet.seen if s.path.endswith(".h5")]
    assert len(tiles) == len(internet.tiles) and {s.headers["authorization"] for s in tiles} == {f"Bearer {TOKEN}"}
    assert {s.host for s in internet.seen if s.path == "/robots.txt"} == internet.hosts
    index = json.loads((home / "releases" / rel["release_id"] / "manifest.json").read_text())["coverage"]
    assert index["cities"] == 30


def test_a_hurun_page_failing_until_the_retries_are_spent_fails_the_run_naming_it(
    published, online, monkeypatch, tmp_path
):
    from tests.online.internet import Answer

    home = copy_home(published[0], tmp_path / "home", drop_raw="hurun")
    before = state(home)
    page3 = HURUN_API.format(400)
    with (
        online.replaced([page3], Answer(500, b"<html><title>500 Internal Server Error</title></html>")),
        pytest.raises(Exception, match=r"no release published") as info,
    ):
        run(home, monkeypatch, sources=["hurun"])
    assert f"hurun: [source hurun, {page3}] HTTP 500 after 5 attempts" in str(info.value)
    assert [h.status for h in online.hits(page3)][-5:] == [500] * 5
    assert state(home) == before


def test_an_expired_earthdata_token_names_it(published, online, monkeypatch, tmp_path):
    home = copy_home(published[0], tmp_path / "home", drop_raw="night_lights")
    before = state(home)
    monkeypatch.setenv("EARTHDATA_TOKEN", "expired")
    with pytest.raises(Exception, match=r"no release published") as info:
        run(home, monkeypatch, sources=["night_lights"])
    assert (
        "Earthdata token missing, expired or licence not accepted (EARTHDATA_TOKEN): the tile download answered an "
        "HTML page, not an HDF5 file" in str(info.value)
    )
    assert state(home) == before


def test_a_num_the_api_does_not_know_is_an_error_not_zero_unicorns(published, online, monkeypatch, tmp_path):
    from tests.online.internet import Answer

    home = copy_home(published[0], tmp_path / "home", drop_raw="hurun")
    before = state(home)
    empty = Answer(body=b'{"total": 0, "rows": []}', content_type="application/json")
    with online.replaced(online.api, empty), pytest.raises(Exception, match=r"no release published") as info:
        run(home, monkeypatch, sources=["hurun"])
    assert (
        f"[source hurun, {HURUN_API.format(0)}, field total] the API lists no company for num=E9A16F3H (total 0)"
        in str(info.value)
    )
    assert state(home) == before


def test_sources_discover_hurun_reads_the_rank_pages_select(online, data_home, tmp_path):
    from typer.testing import CliRunner

    from talent_index.cli import app

    res = CliRunner().invoke(app, ["sources", "discover", "hurun"])
    assert res.exit_code == 0, res.output
    assert "E9A16F3H" in res.output and "88XF2NJ5" in res.output and "not configured" not in res.output
    assert online.hits("https://www.hurun.net/en-US/Rank/HsRankDetails?num=E9A16F3H&pagetype=unicorn")
    # a saved page offering a list the configuration does not know: printed with what to add
    page = tmp_path / "rank.html"
    page.write_text(
        '<select id="exampleFormControlSelect1"><option value="/en-US/Rank/HsRankDetails?pagetype=unicorn&num=NEW27X">'
        "2027 Global Unicorn Index</option></select>"
    )
    res = CliRunner().invoke(app, ["sources", "discover", "hurun", "--file", str(page)])
    assert res.exit_code == 0, res.output
    assert 'not configured: 2027 Global Unicorn Index — add under hurun.lists: "2027": {num: NEW27X, year: 2027' in (
        " ".join(res.output.split())
    )


def test_without_the_token_a_run_allowing_fallbacks_reads_no_composite_and_gdp_stands_in(
    published, online, monkeypatch, tmp_path
):
    home = copy_home(published[0], tmp_path / "home", drop_raw="night_lights")
    monkeypatch.delenv("EARTHDATA_TOKEN")
    tiles_before = sum(s.path.endswith(".h5") for s in online.seen)
    result = run(home, monkeypatch, sources=["night_lights"], allow_vintage_fallback=True)
    rel = result["release"]
    m = json.loads((home / "releases" / rel["release_id"] / "manifest.json").read_text())
    (lights,) = [f for f in m["vintage_fallbacks"] if f["source"] == "night_lights"]
    assert (lights["expected"], lights["found"]) == ("2025", "none")
    (note,) = next(i for i in m["inputs"] if i["source"] == "night_lights")["vintage_notes"]
    assert note.startswith(
        "no night-light composite read (EARTHDATA_TOKEN not set and the run allows vintage fallbacks"
    )
    import pandas as pd

    ind = pd.read_parquet(home / "releases" / rel["release_id"] / "indicators.parquet")
    assert ind[ind["indicator"] == "night_lights"]["status"].value_counts().to_dict() == {"proxy": 24, "imputed": 6}
    assert sum(s.path.endswith(".h5") for s in online.seen) == tiles_before  # not a request without the token
