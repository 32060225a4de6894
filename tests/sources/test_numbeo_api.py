"""Numbeo API mode on recorded JSON; the key never leaves the environment."""

import json

import pytest

from tasks.errors import FetchError, SourceError
from tasks.sources import numbeo

FIX = __import__("pathlib").Path(__file__).resolve().parent.parent / "fixtures" / "numbeo_api"


def test_parse_api_indices_and_prices():
    ind = numbeo.parse_api_indices((FIX / "indices_beijing.json").read_bytes(), "api")
    v = ind.set_index("indicator")["value"]
    assert v["pollution_index"] == 86.96 and v["cost_of_living_index"] == 44.89
    assert v["traffic_commute_time_index"] == 45.15
    prices = numbeo.parse_api_prices((FIX / "prices_beijing.json").read_bytes(), "api").set_index("item")
    assert prices.loc["Average Monthly Net Salary (After Tax)", "value"] == 1137.26
    assert prices.loc["Apartment (1 bedroom) in City Centre", "currency"] == "EUR"


def test_api_error_is_clear():
    with pytest.raises(SourceError, match="the API answered with an error: wrong api_key"):
        numbeo.parse_api_indices(
            b'{"error": "wrong api_key"}', "https://www.numbeo.com/api/indices?api_key=${NUMBEO_API_KEY}"
        )


def _api_recordings(tmp_path, registry, cfg):
    rec = tmp_path / "rec"
    (rec / "2020" / "numbeo").mkdir(parents=True)
    index = {}
    ind = json.loads((FIX / "indices_beijing.json").read_text())
    pr = json.loads((FIX / "prices_beijing.json").read_text())
    for req in numbeo.api_plan(cfg, registry):
        body = ind if req.kind == "numbeo-api-indices" else pr
        name = f"{req.kind}-{req.city_id}.json"
        (rec / "2020" / "numbeo" / name).write_text(json.dumps({**body, "name": req.city_id}))
        index[req.url] = {"source": "numbeo", "file": f"numbeo/{name}", "status": 200, "headers": {}}
    (rec / "2020" / "index.json").write_text(json.dumps(index))
    return rec


def test_api_mode_through_the_subflow_core(tmp_path, registry, data_home, monkeypatch):
    from tasks.ingest.core import fetch_and_parse, tidy_source
    from tasks.sources import load_sources_config

    cfg = load_sources_config()["numbeo"]
    cfg = {**cfg, "api": {**cfg["api"], "enabled": True}}
    rec = _api_recordings(tmp_path, registry, cfg)
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    fetched = fetch_and_parse("numbeo", cfg, "offline", registry)
    assert len(fetched.parsed) == 60
    assert all("${NUMBEO_API_KEY}" in r["url"] for r in fetched.raws)
    tidy, extras = tidy_source("numbeo", cfg, registry, fetched)
    assert len(tidy) == 240 and "ranking" not in extras
    t = tidy.set_index(["city_id", "indicator"])["value"]
    assert t[("oslo", "rent_burden")] == pytest.approx(946.89 / 1137.26)


def test_missing_key_is_a_clear_error(monkeypatch, data_home):
    from tasks.http import Fetcher, HttpPolicy

    monkeypatch.delenv("NUMBEO_API_KEY", raising=False)
    f = Fetcher(source="numbeo", mode="online", policy=HttpPolicy(allowed_domains=("numbeo.com",), obey_robots=False))
    with pytest.raises(FetchError, match="environment variable NUMBEO_API_KEY is not set"):
        f.get("https://www.numbeo.com/api/indices?api_key=${NUMBEO_API_KEY}&query=Beijing")


def test_the_api_serves_current_figures_so_an_annual_edition_refuses_it(tmp_path, registry, data_home, monkeypatch):
    """The API has no January edition: with the annual policy (ranking of year E) its figures are
    the wrong vintage, refused unless the run allows a fallback, which is then recorded."""
    from tasks.errors import VintageMismatch
    from tasks.ingest.core import ingest
    from tasks.sources import load_sources_config

    monkeypatch.setenv("NUMBEO_API_KEY", "k" * 12)
    cfg = load_sources_config(edition="2020")["numbeo"]
    cfg = {**cfg, "api": {**cfg["api"], "enabled": True}}
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(_api_recordings(tmp_path, registry, cfg)))
    with pytest.raises(VintageMismatch, match="edition 2020: expected vintage 2020, found current"):
        ingest("numbeo", cfg, "offline", registry)
    assert not (data_home / "snapshots" / "numbeo").exists()
    allowed = ingest("numbeo", cfg, "offline", registry, allow_vintage_fallback=True)
    assert allowed.vintage == {
        "edition": "2020",
        "expected": "2020",
        "found": "current",
        "ok": False,
        "note": "",
        "fallback": True,
    }
    assert allowed.snapshot["ingest"]["vintage_ok"] is False
