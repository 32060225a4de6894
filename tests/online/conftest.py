"""The sources of edition 2026 on the loopback internet (tests/online/internet.py), at their real
hosts and paths: robots.txt of every host, Numbeo's 2026 ranking and city pages, Hurun's rank page
(setting a cookie) and its paged JSON API (answering only with that cookie and the site's XHR
headers), GaWC's 2024 page and the 2020 connectivity sheet, LAADS' v2 listing of the 2025 VNP46A4
composite and its HDF5 tiles (behind a bearer token; any other token gets Earthdata's login page),
the World Bank's API for the three WDI series.

The pages are made from the bundled 2020 recordings and test fixtures (every value as labelled
there: real, proxy or illustrative); what differs for 2026 is what the sources' URLs and pages
say of their year."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.online.internet import Answer, Internet

ROOT = Path(__file__).resolve().parents[2]
REC = ROOT / "data" / "recordings" / "2020"
TOKEN = "loopback-earthdata-token"
COOKIE = "HurunSession=loopback"
LIVE_TOTAL = 1602  # the 2026 list's live total per the public R client (headline 1,603)
ROBOTS = b"User-agent: *\nDisallow: /admin/\n"


def _recorded(url_part: str) -> tuple[str, bytes]:
    index = json.loads((REC / "index.json").read_text())
    url = next(u for u in index if url_part in u)
    return url, (REC / index[url]["file"]).read_bytes()


def _numbeo(net: Internet, cfg: dict) -> None:
    from tasks.sources import numbeo

    index = json.loads((REC / "index.json").read_text())
    for url, entry in index.items():
        if entry["source"] != "numbeo":
            continue
        body = (REC / entry["file"]).read_bytes()
        if "rankings.jsp" in url:
            url = numbeo.ranking_url(cfg)
            body = body.replace(b"Index by City 2020", b"Index by City 2026")
        net.add(url, Answer(body=body))


def hurun_rows() -> list[dict]:
    """The 2026 list: the sample's companies (counts per index city as in 2020) and illustrative
    companies elsewhere, up to the live total, as the API's rows without their prefix."""
    from tasks.sources.hurun import API_PREFIX

    rows = []
    for offset in (0, 200):
        doc = json.loads((REC / "hurun" / f"api-WE53FEER-{offset}.json").read_text())
        rows += [{k.removeprefix(API_PREFIX): v for k, v in r.items()} for r in doc["rows"]]
    rng = np.random.default_rng(2026)
    while len(rows) < LIVE_TOTAL:
        k = len(rows)
        rows.append(
            {
                "ComName_En": f"Illustrative Unicorn {k}",
                "Wealth_USD": round(float(rng.uniform(1.0, 12.0)), 1),
                "ComHeadquarters_En": f"Elsewhere {k % 97}",
                "ComHeadquarters_Cn": "",
            }
        )
    rows.sort(key=lambda r: (-r["Wealth_USD"], r["ComName_En"]))
    for i, r in enumerate(rows, start=1):
        r.update({"Year": 2026, "Ranking": i, "ID": 2026_00000 + i, "ListID": 2026})
    return rows


def _hurun(net: Internet, cfg: dict, raw: dict) -> list[str]:
    from tasks.sources.hurun import rank_page_url, render_answers

    offered = [(f"{k} Global Unicorn Index", v["num"]) for k, v in sorted(raw["lists"].items(), reverse=True)]
    answers = render_answers(cfg, hurun_rows(), offered)
    api = []
    for url, (body, ctype) in answers.items():
        if url == rank_page_url(cfg):
            net.add(url, Answer(body=body, content_type=ctype, headers={"Set-Cookie": f"{COOKIE}; Path=/"}))
            continue
        api.append(url)

        def xhr_only(headers, body=body, ctype=ctype):
            if COOKIE not in headers.get("cookie", "") or headers.get("x-requested-with") != "XMLHttpRequest":
                return Answer(403, b"<html><title>Forbidden</title></html>")
            return Answer(body=body, content_type=ctype)

        net.add(url, xhr_only)
    return api


def _laads(net: Internet, cfg: dict, registry) -> list[str]:
    from tasks.sources import night_lights as nl
    from tests.sources.raster_helpers import tile_bytes

    year = "2025"
    needed = sorted({t for ts in nl.city_tiles(registry).values() for t in ts})
    rng = np.random.default_rng(2025)
    content = []
    login = Answer(body=b"<!DOCTYPE html><html><head><title>Earthdata Login</title></head><body>Sign in</body></html>")
    for tile in needed:
        name = f"VNP46A4.A{year}001.{tile}.002.2026032101234.h5"
        body = tile_bytes(rng.integers(0, 3000, size=(240, 240)), rng.choice([0, 1, 2, 255], size=(240, 240)))
        url = cfg["file_url"].format(year=year, name=name)
        content.append({"name": name, "size": len(body), "downloadsLink": url, "checksum": "", "processingDate": ""})

        def bearer(headers, body=body):
            if headers.get("authorization") != f"Bearer {TOKEN}":
                return login
            return Answer(body=body, content_type="application/x-hdf5")

        net.add(url, bearer)
    listing = nl.listing_requests(cfg, year)[0].url
    net.add(listing, Answer(body=json.dumps({"content": content}).encode(), content_type="application/json"))
    return needed


def _wdi(net: Internet, cfg: dict, registry) -> None:
    """The World Bank API's answers for edition 2026's request, holding the country figures of the
    2020 recordings (their own years, 2018-2019: older than the policy's limit for 2026, so the
    release lists them as vintage fallbacks)."""
    from tasks.sources import wdi

    figures: dict = {}
    index = json.loads((REC / "index.json").read_text())
    for url, entry in index.items():
        if entry["source"] == "wdi":
            name = next(n for n, s in cfg["series"].items() if f"/indicator/{s['code']}?" in url)
            for r in wdi.parse_page((REC / entry["file"]).read_bytes(), url).itertuples():
                figures.setdefault((name, r.iso3), []).append((r.year, r.value))
    for url, (body, ctype) in wdi.render_answers(cfg, registry, figures).items():
        net.add(url, Answer(body=body, content_type=ctype))


@pytest.fixture(scope="module")
def internet(tmp_path_factory, registry):
    """The loopback internet with edition 2026 of every source, serving while the module runs;
    `net.api` lists the Hurun API's URLs, `net.tiles` the VNP46A4 tiles served."""
    from tasks.sources import load_sources_raw, resolve_source

    raw = load_sources_raw()
    cfg = {s: resolve_source(s, raw[s], "2026", "annual", "online") for s in raw}
    net = Internet()
    _numbeo(net, cfg["numbeo"])
    net.api = _hurun(net, cfg["hurun"], raw["hurun"])
    net.add(cfg["gawc"]["tiers_url"], Answer(body=(ROOT / "tests/fixtures/gawc/world-cities-2024.html").read_bytes()))
    url, body = _recorded("da31.xlsx")
    net.add(url, Answer(body=body, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
    net.tiles = _laads(net, cfg["night_lights"], registry)
    _wdi(net, cfg["wdi"], registry)
    for host in sorted(net.hosts):
        net.add(f"https://{host}/robots.txt", Answer(body=ROBOTS, content_type="text/plain"))
    stop = net.serve()
    yield net
    stop()


@pytest.fixture(scope="module")
def online_env(internet, tmp_path_factory):
    """Everything an online run of edition 2026 needs beyond the internet: the Earthdata token, the
    curated table of 2026 (`curated template`, every row carried forward from 2020) and a sources
    configuration naming it (only the curated table's local path differs from data/sources.yaml)."""
    from typer.testing import CliRunner

    from talent_index.cli import app

    tmp = tmp_path_factory.mktemp("online")
    curated = tmp / "report_indicators_2026.csv"
    res = CliRunner().invoke(app, ["curated", "template", "--edition", "2026", "-o", str(curated)])
    assert res.exit_code == 0, res.output
    sources = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    sources["curated"]["url"] = f"file://{tmp}/report_indicators_{{edition}}.csv"
    (tmp / "sources.yaml").write_text(yaml.safe_dump(sources, sort_keys=False, allow_unicode=True))
    return {"EARTHDATA_TOKEN": TOKEN, "TALENT_INDEX_SOURCES": str(tmp / "sources.yaml")}, tmp


@pytest.fixture()
def online(internet, online_env, monkeypatch, tmp_path):
    """This test's process on the loopback internet: hosts resolved to it, its CA trusted, the
    fetcher's waits (rate limit, backoff) instant, the 2026 environment set."""
    import tasks.http

    internet.resolve_here(monkeypatch, tmp_path / "ca.pem")
    monkeypatch.setattr(tasks.http, "pause", lambda seconds: None)
    env, _ = online_env
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return internet


def copy_home(src: Path, dst: Path, drop_raw: str) -> Path:
    """A copy of a data home without one source's raw responses (a rerun would reuse them)."""
    shutil.copytree(src, dst, symlinks=True)
    shutil.rmtree(dst / "raw" / drop_raw, ignore_errors=True)
    return dst
