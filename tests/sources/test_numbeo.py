"""Numbeo parsers on the recorded pages (real markup) and on variants of them."""

import json
import math
import re
import shutil
from typing import cast

import pandas as pd
import pytest

from tasks.errors import SourceError
from tasks.sources import numbeo

RANKING = "2020/numbeo/quality-of-life-rankings-2020.html"


@pytest.fixture(scope="module")
def ranking_html(recordings):
    return (recordings / RANKING).read_bytes()


def test_ranking_rows_in_page_order_with_registry_ids(ranking_html, registry):
    df = numbeo.parse_rankings(ranking_html, RANKING, registry)
    assert list(df.columns[:3]) == ["rank", "city", "city_id"]
    assert df.columns[3:].tolist() == [
        "quality_of_life_index",
        "purchasing_power_index",
        "safety_index",
        "health_care_index",
        "cost_of_living_index",
        "property_price_to_income_ratio",
        "traffic_commute_time_index",
        "pollution_index",
        "climate_index",
    ]
    assert len(df) == 22 and df["rank"].tolist() == list(range(1, 23))
    assert df["quality_of_life_index"].is_monotonic_decreasing
    by_city = df.set_index("city")
    assert by_city.loc["Beijing, China", "city_id"] == "beijing"
    assert by_city.loc["Beijing, China", "pollution_index"] == 86.96  # real, Numbeo 2020 edition
    assert by_city.loc["Washington, DC, United States", "city_id"] == "washington-dc"
    assert pd.isna(by_city.loc["London, Canada", "city_id"])
    assert by_city.loc["London, United Kingdom", "city_id"] == "london"
    assert df["city_id"].notna().sum() == 19


def _swap_columns(html: str, a: int, b: int) -> str:
    def swap_row(m):
        cells = re.findall(r"<t[hd][^>]*>.*?</t[hd]>", m.group(0))
        cells[a], cells[b] = cells[b], cells[a]
        row = m.group(0)
        start = min(i for i in (row.find("<td"), row.find("<th")) if i >= 0)
        return row[:start] + "".join(cells) + "</tr>"

    return re.sub(r"<tr[^>]*>.*?</tr>", swap_row, html)


def test_reordered_columns_give_the_same_values(ranking_html, registry):
    base = numbeo.parse_rankings(ranking_html, RANKING, registry)
    swapped = _swap_columns(ranking_html.decode(), 2, 9).encode()
    df = numbeo.parse_rankings(swapped, RANKING, registry)
    pd.testing.assert_frame_equal(df[base.columns], base)


def test_extra_column_and_missing_values(ranking_html, registry):
    html = ranking_html.decode()
    html = html.replace(
        "<th><div>Climate Index</div></th>", "<th><div>Climate Index</div></th><th><div>New Index</div></th>"
    )
    html = re.sub(
        r"(<tr style=\"width: 100%\">.*?)</tr>",
        lambda m: m.group(1) + '<td style="text-align: right">1,234.5</td></tr>',
        html,
    )
    html = html.replace(">86.96<", ">?<", 1)
    df = numbeo.parse_rankings(html.encode(), RANKING, registry)
    assert (df["new_index"] == 1234.5).all()
    assert math.isnan(df.set_index("city_id").loc["beijing", "pollution_index"])


def test_missing_table_names_what_was_expected(registry):
    html = b"<html><head><title>Numbeo</title></head><body><table id='t3'><tr><td>x</td></tr></table></body></html>"
    with pytest.raises(SourceError, match=r"source numbeo.*expected a ranking table <table id=\"t2\">.*t3"):
        numbeo.parse_rankings(html, "https://www.numbeo.com/x", registry)


def test_renamed_header_is_an_error_naming_it(ranking_html, registry):
    html = ranking_html.decode().replace("<th><div>City</div></th>", "<th><div>Town</div></th>").encode()
    with pytest.raises(SourceError, match="expected a column headed 'City'.*Town"):
        numbeo.parse_rankings(html, RANKING, registry)


def test_block_page_with_status_200_is_recognised(registry):
    html = b"<html><head><title>Just a moment...</title></head><body>Checking your browser. cf-challenge</body></html>"
    with pytest.raises(SourceError, match="block or challenge page"):
        numbeo.parse_rankings(html, "https://www.numbeo.com/quality-of-life/rankings.jsp?title=2020", registry)


def test_bad_number_names_city_and_field(ranking_html, registry):
    html = ranking_html.decode().replace(">86.96<", ">eighty<", 1).encode()
    with pytest.raises(SourceError, match="city Beijing, China, field Pollution Index.*'eighty'"):
        numbeo.parse_rankings(html, RANKING, registry)


def test_city_quality_of_life_page(recordings):
    body = (recordings / "2020/numbeo/quality-of-life-shenzhen.html").read_bytes()
    df = numbeo.parse_city_indices(body, "shenzhen")
    assert df["indicator"].tolist() == numbeo.CITY_PAGE_INDICES
    values = df.set_index("indicator")["value"]
    assert values["pollution_index"] == pytest.approx(64.57)  # real, Numbeo data up to 2018-12
    assert len(df) == 8


def test_city_page_missing_subindex_is_an_error(recordings):
    body = (
        (recordings / "2020/numbeo/quality-of-life-shenzhen.html").read_text().replace("Pollution Index", "Smog Index")
    )
    with pytest.raises(SourceError, match=r"expected sub-indices \['pollution_index'\]"):
        numbeo.parse_city_indices(body.encode(), "shenzhen")


def test_city_prices_page(recordings):
    body = (recordings / "2020/numbeo/cost-of-living-beijing.html").read_bytes()
    df = numbeo.parse_city_prices(body, "https://www.numbeo.com/cost-of-living/in/Beijing?displayCurrency=EUR")
    items = df.set_index("item")
    assert items.loc["Average Monthly Net Salary (After Tax)", "value"] == 1137.26
    assert items.loc["Apartment (1 bedroom) in City Centre", "value"] == 946.89
    assert set(items["currency"].dropna()) - {""} == {"EUR"}
    assert math.isnan(items.loc["Meal, Inexpensive Restaurant", "value"])


def test_renamed_price_label_alias_and_unknown_layout(recordings):
    body = (recordings / "2020/numbeo/cost-of-living-beijing.html").read_text()
    renamed = body.replace("Apartment (1 bedroom) in City Centre", "1 Bedroom Apartment in City Centre")
    df = numbeo.parse_city_prices(renamed.encode(), "x")
    assert "1 Bedroom Apartment in City Centre" in df["item"].tolist()
    unknown = body.replace("Average Monthly Net Salary (After Tax)", "Typical Pay")
    with pytest.raises(SourceError, match="expected price rows \\['monthly_net_salary'\\]"):
        numbeo.parse_city_prices(unknown.encode(), "x")


def test_tidy_uses_city_pages_for_cities_missing_from_the_ranking(registry):
    from tasks.ingest.core import fetch_and_parse, tidy_source
    from tasks.sources import load_sources_config

    cfg = load_sources_config()["numbeo"]
    fetched = fetch_and_parse("numbeo", cfg, "offline", registry)
    kinds = pd.Series([r.kind for r in fetched.parsed]).value_counts().to_dict()
    assert kinds == {"numbeo-rankings": 1, "numbeo-city-prices": 30, "numbeo-city-indices": 11}
    tidy, _ = tidy_source("numbeo", cfg, registry, fetched)
    assert len(tidy) == 30 * 8
    t = tidy.set_index(["city_id", "indicator"])["value"]
    assert t[("beijing", "rent_burden")] == pytest.approx(946.89 / 1137.26)
    assert t[("beijing", "monthly_income")] == 1137.26
    assert t[("shenzhen", "house_price_index")] == pytest.approx(42.57)  # from the city page (2018-12)


def test_price_in_another_currency_is_an_error_naming_city_and_field(registry, recordings, tmp_path, monkeypatch):
    import json
    import shutil

    from tasks.ingest.core import fetch_and_parse, tidy_source
    from tasks.sources import load_sources_config

    rec = tmp_path / "rec"
    shutil.copytree(recordings, rec)
    page = rec / "2020/numbeo/cost-of-living-oslo.html"
    page.write_text(page.read_text().replace("2,", "24,", 1).replace("&#8364;", "kr", 1))
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    assert json.loads((rec / "2020" / "index.json").read_text())
    cfg = load_sources_config()["numbeo"]
    fetched = fetch_and_parse("numbeo", cfg, "offline", registry)
    with pytest.raises(SourceError, match="city oslo, field rent_1br_centre.*expected prices in EUR, found SEK"):
        tidy_source("numbeo", cfg, registry, fetched)


def test_suites_pass_on_the_recordings_and_flag_a_vanished_city(registry, data_home, recordings, tmp_path, monkeypatch):
    from tasks.ingest.core import ingest
    from tasks.sources import load_sources_config

    cfg = load_sources_config()["numbeo"]
    first = ingest("numbeo", cfg, "offline", registry)
    assert [r.suite for r in first.reports] == ["numbeo", "numbeo_ranking"] and all(r.success for r in first.reports)
    assert first.warnings == []
    # Paris leaves the ranking: the city page fallback fills it, and a warning says it vanished
    rec = tmp_path / "rec"
    shutil.copytree(recordings, rec)
    page = rec / "2020/numbeo/quality-of-life-rankings-2020.html"
    page.write_text(
        re.sub(
            r"<tr style=\"width: 100%\"><td></td><td class=\"cityOrCountryInIndicesTable\">Paris, France</td>.*?</tr>\n",
            "",
            page.read_text(),
        )
    )
    paris = (rec / "2020/numbeo/quality-of-life-xian.html").read_text().replace("Xi&#x27;an", "Paris")
    (rec / "2020/numbeo/quality-of-life-paris.html").write_text(paris)
    index = json.loads((rec / "2020" / "index.json").read_text())
    index["https://www.numbeo.com/quality-of-life/in/Paris"] = {
        "source": "numbeo",
        "file": "numbeo/quality-of-life-paris.html",
        "status": 200,
        "headers": {},
    }
    (rec / "2020" / "index.json").write_text(json.dumps(index))
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    second = ingest("numbeo", cfg, "offline", registry)
    found = {(w.expectation, tuple(w.offending)) for w in second.warnings}
    assert ("city_still_in_ranking", ("paris",)) in found
    moved = next(w for w in second.warnings if w.expectation == "change_vs_previous_snapshot")
    assert any(o.startswith("paris:") for o in moved.offending)


@pytest.mark.parametrize("body", [b"", b"   \n", b"<!-- nothing -->"])
def test_empty_page_says_what_was_expected(body):
    with pytest.raises(SourceError, match=r'expected a price table <table class="data_wide_table">, not found'):
        numbeo.parse_city_prices(body, "https://www.numbeo.com/cost-of-living/in/Beijing")
    with pytest.raises(SourceError, match=r'expected a ranking table <table id="t2">, found tables \[\]'):
        numbeo.parse_rankings(body, "https://www.numbeo.com/quality-of-life/rankings.jsp")


def test_cell_text_matches_beautifulsoup_get_text():
    """The lxml text helper gives what BeautifulSoup's get_text(" ", strip=True) gives on the same cell."""
    from bs4 import BeautifulSoup

    from tasks.sources.base import html_tree, node_text

    cell = (
        '<td class="priceValue"> 1,234.50<!-- was 1,200 -->&nbsp;&#8364;<script>var x = 1;</script>'
        "<span> (<b>est.</b>)</span>\n</td>"
    )
    page = f"<html><body><table><tr>{cell}</tr></table></body></html>".encode()
    ours = node_text(html_tree(page, "numbeo", "test").find(".//td"))
    assert ours == "1,234.50 € ( est. )"  # comment and script left out, &nbsp; stripped at the edges
    td = BeautifulSoup(page, "lxml").td
    assert td is not None and ours == td.get_text(" ", strip=True)


def test_a_large_page_is_parsed_in_a_process_of_its_own_with_the_same_record_and_error(
    registry, data_home, recordings, monkeypatch
):
    """A page of `BIG_PAGE_BYTES` or more (here the bundled ranking, 11,001 bytes, with the limit
    lowered to 10,000) is parsed by a worker process: the same records as in process, and a changed
    layout gives the same one-line error; `TALENT_INDEX_PARSE_WORKERS=0` keeps it in process."""
    from tasks.ingest import core, parse_pool
    from tasks.ingest.core import fetch_and_parse
    from tasks.sources import load_sources_config, source_spec

    cfg = load_sources_config(edition="2020")["numbeo"]
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "0")
    alone = fetch_and_parse("numbeo", cfg, "offline", registry)
    monkeypatch.delenv("TALENT_INDEX_PARSE_WORKERS")
    monkeypatch.setattr(parse_pool, "BIG_PAGE_BYTES", 10_000)
    apart: list[str] = []

    def spy(source, cfg, registry, req, body):
        apart.append(req.kind)
        return parse_pool.parse_one_apart(source, cfg, registry, req, body)

    monkeypatch.setattr(core, "parse_one_apart", spy)
    fetched = fetch_and_parse("numbeo", cfg, "offline", registry)
    assert apart == ["numbeo-rankings"]
    assert list(fetched.parsed) == list(alone.parsed)
    ranking = next(r for r in alone.parsed if r.kind == "numbeo-rankings")
    table = cast(pd.DataFrame, fetched.parsed[ranking])
    pd.testing.assert_frame_equal(table, cast(pd.DataFrame, alone.parsed[ranking]))
    assert len(table) == 22  # the cities the 2020 ranking lists

    body = (recordings / "2020/numbeo/quality-of-life-rankings-2020.html").read_bytes()
    broken = body.replace(b"<table", b"<div", 1)
    with pytest.raises(SourceError) as here:
        source_spec("numbeo", cfg).parse(ranking, broken, registry, cfg)
    with pytest.raises(SourceError) as there:
        parse_pool.parse_one_apart("numbeo", cfg, registry, ranking, broken)
    assert str(there.value) == str(here.value)
    assert "numbeo" in str(here.value) and len(body) == 11_001


def test_city_pages_parsed_by_workers_give_the_records_parsing_in_process_gives(registry, data_home, monkeypatch):
    """With TALENT_INDEX_PARSE_WORKERS=2 the city pages after the first are handed to the worker
    processes (one batch here); the bundled 2020 pages (a ranking, 30 price pages, 11 index pages) give the records
    parsing in process gives, in the same order. A refresh starts the workers for Numbeo's pages
    (`pages_per_city`), not for its API (JSON parses at once)."""
    from tasks.ingest import core
    from tasks.ingest.core import fetch_and_parse
    from tasks.sources import load_sources_config, source_spec

    handed_over = []

    class Counting(core.ParsePool):
        def submit(self, req, body):
            handed_over.append(req.url)
            super().submit(req, body)

    monkeypatch.setattr(core, "ParsePool", Counting)
    cfg = load_sources_config(edition="2020")["numbeo"]
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "0")
    alone = fetch_and_parse("numbeo", cfg, "offline", registry)
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "2")
    pooled = fetch_and_parse("numbeo", cfg, "offline", registry)
    assert len(handed_over) == 40  # 41 city pages in the second round, its first parsed in process
    assert source_spec("numbeo").pages_per_city(cfg)
    assert not source_spec("numbeo").pages_per_city({**cfg, "api": {"enabled": True}})
    assert [(r.kind, r.url) for r in pooled.parsed] == [(r.kind, r.url) for r in alone.parsed]
    assert len(pooled.parsed) == 42
    for req, mine in pooled.parsed.items():
        theirs = alone.parsed[req]
        if isinstance(theirs, pd.DataFrame):
            pd.testing.assert_frame_equal(mine, theirs)
        else:
            assert mine == theirs, req.url
    beijing = cast(
        dict, next(v for r, v in pooled.parsed.items() if r.kind == "numbeo-city-prices" and r.city_id == "beijing")
    )
    assert beijing["rent_1br_centre"]["value"] == 946.89 and beijing["monthly_net_salary"]["value"] == 1137.26
