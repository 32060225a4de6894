"""Releases without Prefect: immutability, atomic publish, ids, diff, the report in a browser."""

import base64
import gzip
import json
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from flows.publish import publish_scored
from scoring import load_methodology
from tasks.errors import StorageError
from tasks.publish.gather import gather_inputs, score
from tasks.registry.cities import Registry
from tasks.report.html import build_report
from tasks.service.browser import headless_args
from tasks.store.releases import read_manifest, verify_release

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
SECTIONS = [
    "ranking",
    "dimensions",
    "radar",
    "contributions",
    "cards",
    "clusters",
    "regressions",
    "uncertainty",
    "coverage",
    "audit",
    "changes",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory, baseline):
    """The baseline's snapshots of every source (no release yet), for this module."""
    home = tmp_path_factory.mktemp("rel") / "home"
    shutil.copytree(baseline / "snapshots", home / "snapshots")
    shutil.copy2(baseline / "FORMAT.json", home / "FORMAT.json")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TALENT_INDEX_HOME", str(home))
        yield home


def publish(registry, methodology=None, today="2026-11-26", fail_at=None, values_hook=None):
    m = methodology or load_methodology()
    inputs = gather_inputs(registry, m)
    inputs.values = inputs.values.loc[registry.ids]
    if values_hook:
        values_hook(inputs.values)
    result = score(inputs, registry, m)
    if fail_at:
        os.environ["TALENT_INDEX_FAIL_AT"] = fail_at
    try:
        return publish_scored(result, inputs, registry, m, draws=320, today=today)[0]
    finally:
        os.environ.pop("TALENT_INDEX_FAIL_AT", None)


def test_release_contents_and_report_sections(home, registry):
    m = publish(registry)
    path = home / "releases" / m["release_id"]
    for f in [
        "index.parquet",
        "index.csv",
        "indicators.parquet",
        "manifest.json",
        "CHANGES.md",
        "coverage.csv",
        "methodology.yaml",
        "report/index.html",
        "report/radar_top10.svg",
        "report/contributions.svg",
    ]:
        assert (path / f).exists(), f
    idx = pd.read_csv(path / "index.csv")
    for d in ["economy", "innovation", "openness", "ecology", "welfare", "affordability"]:
        assert {f"{d}_score", f"{d}_rank_international", f"{d}_rank_domestic"} <= set(idx.columns)
    ind = pd.read_parquet(path / "indicators.parquet")
    assert {"value", "normalised", "weight", "rank_international", "rank_domestic", "status"} <= set(ind.columns)
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["package_versions"]["prefect"] == "3.9.1" and manifest["package_versions"]["pandas"] == "3.1.1"
    assert "report/index.html" in manifest["files"] and verify_release(m["release_id"]) == []
    html = (path / "report" / "index.html").read_text()
    for s in SECTIONS:
        assert f'<section id="{s}">' in html
    assert "北京" in html and "SAMPLE RELEASE" in html and html.count('class="card" id="card-') == 30
    assert "71.92" in html  # the audit's Beijing row
    beijing = html[html.index("<h3>Beijing · 北京") :]
    beijing = beijing[: beijing.index('class="card" id="card-')]
    cells = dict(re.findall(r"<tr><td>([^<]+)</td><td>.</td><td class=\"num\">([^<]+)</td>", beijing))
    unicorns = ind[(ind["city_id"] == "beijing") & (ind["indicator"] == "unicorns")]["value"].iloc[0]
    assert cells["Unicorn companies"] == f"{unicorns:,.0f}" and "." not in cells["Unicorn companies"]
    assert cells["International students"] == "0.7395"  # the QS rank score standing in (a proxy)
    assert re.fullmatch(r"\d+\.\d{2}", cells["Pollution index"])
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html


def test_unchanged_rerun_reuses_and_changed_inputs_get_a_new_id(home, registry):
    first = publish(registry)
    again = publish(registry)
    assert again["reused"] and again["release_id"] == first["release_id"]
    changed = publish(registry, methodology=load_methodology().with_choices(topsis_normalization="vector"))
    assert not changed["reused"] and changed["release_id"] == "2020-sample-2026-11-26-2"
    assert (home / "releases" / "LATEST").read_text().strip() == "2020-sample-2026-11-26-2"
    changes = (home / "releases" / changed["release_id"] / "CHANGES.md").read_text()
    assert "against 2020-sample-2026-11-26" in changes and "| Beijing |" in changes


def test_interrupted_publish_leaves_nothing_and_latest_unchanged(home, registry):
    before = sorted(p.name for p in (home / "releases").iterdir())
    latest = (home / "releases" / "LATEST").read_text()
    with pytest.raises(StorageError, match="simulated failure"):
        publish(
            registry, methodology=load_methodology().with_choices(zero_rule="shift"), fail_at="release-before-rename"
        )
    assert sorted(p.name for p in (home / "releases").iterdir()) == before
    assert (home / "releases" / "LATEST").read_text() == latest


def test_diff_command(home, registry):
    from typer.testing import CliRunner

    from talent_index.cli import app

    res = CliRunner().invoke(app, ["releases", "diff", "2020-sample-2026-11-26", "2020-sample-2026-11-26-2"])
    assert res.exit_code == 0
    assert "# Changes in 2020-sample-2026-11-26-2 (against 2020-sample-2026-11-26)" in res.stdout
    head = res.stdout.split("## Changed inputs")[0]
    assert "- methodology topsis_normalization: minmax → vector" in head  # the choice the second release changed
    assert "- code_version" not in head and "- methodology:" not in head  # same code, same methodology file
    assert "No input snapshot changed." in res.stdout


def test_small_release_renders_every_section(home, registry, tmp_path):
    small = Registry(registry.table.loc[["beijing", "shanghai", "london", "paris", "tokyo", "vienna"]])
    m = publish(small, today="2026-11-27")
    html = (home / "releases" / m["release_id"] / "report" / "index.html").read_text()
    for s in SECTIONS:
        assert f'<section id="{s}">' in html
    assert html.count('class="card" id="card-') == 6
    idx = pd.read_parquet(home / "releases" / m["release_id"] / "index.parquet")
    assert sorted(idx["rank_international"]) == [1, 2, 3, 4, 5, 6]


def test_report_command_rebuilds_elsewhere(home, tmp_path):
    from typer.testing import CliRunner

    from talent_index.cli import app

    res = CliRunner().invoke(app, ["report", "2020-sample-2026-11-26", "--output", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    # built from the release's files alone: the same report as the one published inside the release
    published = home / "releases" / "2020-sample-2026-11-26" / "report"
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted(p.name for p in published.iterdir())
    for f in published.iterdir():
        assert (tmp_path / "r" / f.name).read_bytes() == f.read_bytes(), f.name


def test_report_in_headless_chromium(home, tmp_path, chromium_path):
    browser = chromium_path
    rid = (home / "releases" / "LATEST").read_text().strip()
    page = home / "releases" / rid / "report" / "index.html"
    flags = headless_args(tmp_path / "profile", "--virtual-time-budget=5000", "--enable-logging=stderr", "--v=0")
    dom = subprocess.run([browser, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = dom.stdout[dom.stdout.index("<body") : dom.stdout.index(">", dom.stdout.index("<body"))]
    assert 'data-broken-images=""' in body and 'data-errors=""' in body
    n_images = int(body.split('data-images="')[1].split('"')[0])
    assert n_images >= 8
    console_errors = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln and "ERROR" in ln.upper()]
    assert console_errors == []
    out_dir = ROOT / "test-output"
    out_dir.mkdir(exist_ok=True)
    shot = out_dir / "report-screenshot.png"
    res = subprocess.run(
        [browser, *flags, "--window-size=1300,2400", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0 and shot.stat().st_size > 50_000
    print(f"screenshot of the report: {shot}")


def test_an_edition_republished_after_an_older_one_carries_the_whole_history(baseline, tmp_path, monkeypatch):
    """A home holding a 2020 release gets 2019 published (a backfill's first step); publishing 2020
    again from the same inputs is then another release, whose history holds both editions (reusing
    the first 2020 release would leave LATEST's history without 2019)."""
    from tasks.registry.cities import load_registry

    home = tmp_path / "home"
    shutil.copytree(baseline, home)
    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))
    registry, m = load_registry(), load_methodology()
    first = (home / "releases" / "LATEST").read_text().strip()

    def publish(edition):
        inputs = gather_inputs(registry, m, edition="2020")
        inputs.edition = edition  # an older edition's release, from the same figures (no 2019 ingest needed)
        return publish_scored(score(inputs, registry, m), inputs, registry, m, analyses=False)[0]

    assert publish("2019")["edition"] == "2019"
    again = publish("2020")
    assert not again["reused"] and again["release_id"] != first
    assert (home / "releases" / "LATEST").read_text().strip() == again["release_id"]
    hist = pd.read_parquet(home / "releases" / again["release_id"] / "history.parquet")
    assert hist.groupby("edition").size().to_dict() == {"2019": 30, "2020": 30}
    assert publish("2020")["reused"]  # nothing changed since: the same release


def _explorer_report(home, registry, out):
    """The sample release's report as a release of more than `large` cities gets it: top 10 static."""
    folder = home / "releases" / "2020-sample-2026-11-26"  # the 30 cities (LATEST may be a smaller one)
    if not folder.exists():
        publish(registry)
    build_report(folder, out, read_manifest(folder), load_methodology(folder / "methodology.yaml"), None, large=10)
    return folder


def _card_rows(html: str, start: int) -> list[tuple[str, ...]]:
    end = re.compile(r"</table>\s*</div>\s*</div>").search(html, start)
    assert end is not None, "a card ends with its tables"
    card = html[start : end.end()]
    dims = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", card)
    cells = (
        r"<tr><td>([^<]+)</td><td>(.)</td><td class=\"num\">([^<]+)</td><td class=\"num\">([^<]+)</td><td>(.+?)</td>"
    )
    return dims + re.findall(cells, card)


def test_a_large_release_gets_the_explorer_with_every_city_on_the_page(home, registry, tmp_path):
    folder = _explorer_report(home, registry, tmp_path / "r")
    html = (tmp_path / "r" / "index.html").read_text()
    static = html[html.index('id="static-ranking"') : html.index("</table>", html.index('id="static-ranking"'))]
    assert static.count("<tr><td") == 10 and html.count('class="card" id="card-') == 10
    assert "<p>30 cities · six dimensions" in html  # the release's cities, not the rows printed
    blob = re.search(r'id="city-data">([^<]+)</script>', html)
    assert blob is not None
    data = json.loads(gzip.decompress(base64.b64decode(blob.group(1))))
    idx = pd.read_parquet(folder / "index.parquet").sort_values("rank_international")
    assert data["id"] == idx["city_id"].tolist() and len(data["id"]) == 30
    assert data["rank"] == idx["rank_international"].tolist()
    ind = pd.read_parquet(folder / "indicators.parquet").set_index(["city_id", "indicator"])
    m = load_methodology(folder / "methodology.yaml")
    checked = 0
    for i in m.indicators:
        col = data["indicators"][i.id]
        for k, cid in enumerate(data["id"]):
            x = ind.loc[(cid, i.id)]
            assert col["value"][k] == i.shown(float(x["value"]), x["status"])
            assert col["rank"][k] == x["rank_international"] and data["statuses"][int(col["status"][k])] == x["status"]
            checked += 1
    assert checked == 30 * 17
    # the default: a 30-city release keeps today's report
    assert 'id="city-data"' not in (folder / "report" / "index.html").read_text()


def test_the_explorer_opens_any_citys_card_in_headless_chromium(home, registry, tmp_path, chromium_path):
    folder = _explorer_report(home, registry, tmp_path / "r")
    idx = pd.read_parquet(folder / "index.parquet").sort_values("rank_international")
    city = idx["city_id"].iloc[20]  # beyond the 10 static cards
    page = (tmp_path / "r" / "index.html").as_uri() + f"#city={city}"
    flags = headless_args(tmp_path / "profile", "--virtual-time-budget=5000")
    dom = subprocess.run([chromium_path, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    body = html[html.index("<body") : html.index(">", html.index("<body"))]
    assert 'data-explorer="30"' in body and 'data-errors=""' in body
    explorer = html[html.index('id="explorer-body"') : html.index("</tbody>", html.index('id="explorer-body"'))]
    assert explorer.count("<tr>") == 30 and "30 of 30 cities" in html
    on_demand = _card_rows(html, html.index(f'id="card-city" data-city="{city}"'))
    # the same rows as the static card the 30-city report prints for that city
    full = (folder / "report" / "index.html").read_text()
    static = _card_rows(full, full.index(f'id="card-{21}"'))
    assert len(on_demand) == 6 + 17 and on_demand == static


def test_moved_by_names_the_two_dimensions_that_moved_each_city_most():
    from tasks.report.changes import _moved_by

    weights = {"dimension_weights": {"weights": {"economy": 0.5, "innovation": 0.3, "ecology": 0.2}}}
    a = pd.DataFrame(
        {
            "economy_score": [60.0, 70.0, 80.0],
            "innovation_score": [50.0, 50.0, 50.0],
            "ecology_score": [90.0, 90.0, float("nan")],
        }
    )
    b = pd.DataFrame(
        {
            "economy_score": [62.0, 70.0, 80.001],
            "innovation_score": [40.0, 50.0, 60.0],
            "ecology_score": [91.0, 90.0, 70.0],
        }
    )
    assert _moved_by(a, b, weights, weights) == [
        "innovation -3.00, economy +1.00",  # weighted points: innovation 0.3 x -10, economy 0.5 x +2
        "",  # nothing moved
        "innovation +3.00",  # ecology unscored before; economy +0.0005 is below a cent of a point
    ]


def test_a_large_release_shows_the_cities_that_moved_most():
    from tasks.report.html import _changes_shown

    cities = pd.DataFrame({"name_en": list("ABCDE"), "rank_change": [1, -7, 0, 3, -2]})
    changes = {"cities": cities, "added": ["x", "y", "z"], "dropped": [], "old": "r1", "inputs": []}
    shown = _changes_shown(changes, large=2)
    assert shown is not None and shown["cities"]["name_en"].tolist() == ["B", "D"]
    assert (shown["moved"], shown["shown"], shown["added"], shown["n_added"]) == (5, 2, ["x", "y"], 3)
    every = _changes_shown(changes, large=100)
    assert every is not None and every["cities"]["name_en"].tolist() == list("ABCDE")


def test_the_ranking_artifact_holds_the_first_rows_best_first():
    from tasks.service.run_summary import ranking_rows

    table = pd.DataFrame(
        {
            "rank_international": [3, 1, 2],
            "name_en": ["Lyon", "Paris", "Nice"],
            "name_zh": ["里昂", "巴黎", "尼斯"],
            "final_score": [40.123, 80.456, 60.789],
            "country": ["FR", "FR", "FR"],
        }
    )
    assert [(r["rank"], r["city"], r["score"]) for r in ranking_rows(table, limit=2)] == [
        (1, "Paris", 80.46),
        (2, "Nice", 60.79),
    ]
    assert len(ranking_rows(table)) == 3
