"""Hurun unicorn list: the rank page and paged JSON API, counts per index city, unmatched companies kept."""

import io
import json

import pandas as pd
import pytest

from tasks.errors import SourceError
from tasks.sources import EditionError, hurun, load_sources_raw, resolve_source
from tasks.sources.base import Request

PAGES = ["2020/hurun/api-WE53FEER-0.json", "2020/hurun/api-WE53FEER-200.json"]
API = "https://www.hurun.net/en-US/Rank/HsRankDetailsList?num=WE53FEER&search=&offset={}&limit=200"


def pages_array(recordings) -> bytes:
    return b"[" + b",".join((recordings / p).read_bytes() for p in PAGES) + b"]"


def api_body(rows: list[dict], total: int | None = None) -> bytes:
    return json.dumps({"total": len(rows) if total is None else total, "rows": rows}, ensure_ascii=False).encode()


def row(i: int, hq_en="Beijing", hq_cn="中国-北京", year=2020, **more) -> dict:
    fields = {
        "Year": year,
        "Ranking": i,
        "Wealth_USD": 2.5,
        "ComName_En": f"Co {i}",
        "ComName_Cn": "",
        "ComHeadquarters_En": hq_en,
        "ComHeadquarters_Cn": hq_cn,
        "ID": 1000 + i,
        **more,
    }
    return {hurun.API_PREFIX + k: v for k, v in fields.items()}


@pytest.fixture(scope="module")
def companies(recordings, registry):
    return hurun.parse_list(pages_array(recordings), "saved.json", registry)


def test_company_rows_and_contract_columns(companies):
    assert companies.columns.tolist()[:6] == ["rank", "company", "valuation_usd_bn", "city", "country", "city_id"]
    assert companies["rank"].tolist() == list(range(1, 336))
    assert len(companies) == 335 and companies["company"].is_unique and companies["source_id"].is_unique
    assert (companies["valuation_usd_bn"] > 0).all() and set(companies["year"]) == {"2020"}
    assert companies.attrs == {"stated_count": 335, "stated_edition": "2020"}


def test_beijing_2020_count_is_93(companies, registry):
    counts = hurun.count_per_city(companies, registry)
    assert counts["beijing"] == 93
    assert counts["shanghai"] == 47 and counts["new-york"] == 33 and counts["copenhagen"] == 0
    assert len(counts) == 30 and (counts >= 0).all()


def test_unmatched_companies_are_kept_and_summarised(companies):
    rest = hurun.unmatched_summary(companies).set_index("city")
    assert rest.loc["San Francisco", "companies"] == 9  # San Francisco is not Los Angeles
    assert rest.loc["San Francisco", "country"] == "United States"  # from the Chinese field's prefix
    assert companies["city_id"].isna().sum() == 9 + 3 + 2 + 3


def test_one_saved_page_of_a_longer_list_is_read_and_marked_partial(recordings, registry):
    df = hurun.parse_list((recordings / PAGES[0]).read_bytes(), PAGES[0], registry)
    assert len(df) == 200 and df.attrs == {"stated_count": 335, "partial": "200 of 335 rows"}


def test_headquarters_forms_and_the_chinese_fallback(registry):
    m = hurun.match_headquarters
    for en in ("Beijing", "Beijing, China", "Beijing-China", "Beijing - China", "BEIJING ,  China"):
        assert m(registry, en, "") == "beijing", en
    assert m(registry, "", "中国-北京") == "beijing"  # no English field: the Chinese one
    assert m(registry, "", "北京市") == "beijing"
    assert m(registry, "New York, NY", "美国-纽约") == "new-york"  # 'NY' is no country: the Chinese field decides
    assert m(registry, "Xi'an-China", "") == "xian"
    assert m(registry, "London, Canada", "加拿大-伦敦") is None  # not the index's London
    assert m(registry, "", "加拿大-伦敦") is None
    assert m(registry, "", "某国-伦敦") is None  # a country prefix we cannot check: not counted
    assert m(registry, "", "") is None
    assert hurun.split_headquarters("Winston-Salem") == ("Winston-Salem", None)  # 'Salem' is no country


def test_control_bytes_are_stripped_before_the_json_is_read(registry):
    body = api_body([row(1, ComName_En="Acme\x01 Robotics"), row(2, hq_en="Shanghai", hq_cn="中国-上海")])
    body = body.replace(b"\\u0001", b"\x01").replace(b'"rows"', b'\x1f"rows"')  # raw bytes, as the site sends
    assert b"\x01" in body
    df = hurun.parse_api_page(body, "p.json", registry, expect_year="2020", limit=200)
    assert df["company"].tolist() == ["Acme Robotics", "Co 2"] and df["city_id"].tolist() == ["beijing", "shanghai"]
    assert df.attrs["total"] == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b"<html><head><title>Login - Hurun</title></head><body><form>password</form></body></html>",
            r"\[source hurun, https://h/api\] expected the list's JSON .*found an HTML page \(title 'Login - Hurun'\)",
        ),
        (
            b"<html><head><title>Just a moment...</title></head><body>Checking</body></html>",
            r"found a block or challenge page \(title 'Just a moment...'",
        ),
        (b'{"total": 3}', r"field 'rows' is missing"),
        (b"not json at all", r"found text that is not JSON"),
        (
            b'{"total": 0, "rows": []}',
            r"\[source hurun, https://h/api, field total\] the API lists no company for num=\? \(total 0\): a num "
            r"it does not know; find the list's num with `talent-index sources discover hurun`",
        ),
    ],
)
def test_a_body_that_is_not_the_list_is_refused_naming_the_page(body, message, registry):
    with pytest.raises(SourceError, match=message):
        hurun.parse_api_page(body, "https://h/api", registry, expect_year="2020")


def test_a_changed_field_name_and_a_wrong_year_are_named(registry):
    renamed = {k.replace("ComHeadquarters_En", "HQ_En"): v for k, v in row(1).items()}
    with pytest.raises(SourceError, match=r"field hs_Rank_Unicorn_ComHeadquarters_En\] row 1: expected the field"):
        hurun.parse_api_page(api_body([renamed]), "https://h/api", registry, expect_year="2020")
    with pytest.raises(
        SourceError,
        match=r"row 201 \(Co 1\): hs_Rank_Unicorn_Year is '2019', expected 2020 \(the list asked for\)",
    ):
        hurun.parse_api_page(api_body([row(1, year=2019)], 300), "https://h/api", registry, "2020", offset=200)


def _page(rows, total, offset, limit=2):
    df = hurun.api_frame({"total": total, "rows": rows}, f"page@{offset}", None)
    df.attrs.update({"total": total, "offset": offset, "limit": limit, "location": f"page@{offset}"})
    return df


def test_pages_must_fit_together():
    ok = hurun.combine_pages([_page([row(3)], 3, 2), _page([row(1), row(2)], 3, 0)])
    assert ok["rank"].tolist() == [1, 2, 3] and ok.attrs["stated_count"] == 3
    with pytest.raises(SourceError, match=r"page@2, field total\] the list's total changed while paging: 3 on the"):
        hurun.combine_pages([_page([row(1), row(2)], 3, 0), _page([row(3)], 4, 2)])
    with pytest.raises(SourceError, match=r"page@0\] the page holds 1 rows, expected 2 \(offset 0, limit 2, total 3\)"):
        hurun.combine_pages([_page([row(1)], 3, 0), _page([row(3)], 3, 2)])
    with pytest.raises(SourceError, match=r"company 'Co 2' \(_ID 1002\) appears twice: rows 2 and 3 \(page@2\)"):
        hurun.combine_pages([_page([row(1), row(2)], 3, 0), _page([row(2)], 3, 2)])
    with pytest.raises(SourceError, match=r"the pages hold 2 rows, the API's total is 5"):
        hurun.combine_pages([_page([row(1), row(2)], 5, 0)])


def test_the_plan_opens_the_rank_page_then_pages_the_api_with_the_sites_headers(registry):
    cfg = resolve_source("hurun", load_sources_raw()["hurun"], "2020")
    first = hurun.plan(cfg, registry, {})
    assert [r.kind for r in first] == ["hurun-rank-page", "hurun-api"]
    assert first[0].url == "https://www.hurun.net/en-US/Rank/HsRankDetails?num=WE53FEER&pagetype=unicorn"
    assert first[1].url == API.format(0)
    assert first[1].meta["headers"] == {
        "X-Requested-With": "XMLHttpRequest",
        "Accept": "application/json, text/javascript, */*; q=0.01",
        "Referer": first[0].url,
    }
    page0 = pd.DataFrame()
    page0.attrs["total"] = 335
    assert [r.url for r in hurun.plan(cfg, registry, {first[1]: page0})[1:]] == [API.format(0), API.format(200)]


def test_edition_policy_every_list_2019_to_2026_and_the_half_year_one():
    raw = load_sources_raw()["hurun"]
    got = {e: resolve_source("hurun", raw, e) for e in map(str, range(2019, 2027))}
    assert {e: c["num"] for e, c in got.items()} == {
        "2019": "A5DBQYKF",
        "2020": "WE53FEER",
        "2021": "A5D32YKF",
        "2022": "88XF2NJ5",
        "2023": "MKIUCQ1P",
        "2024": "E9W1YX99",
        "2025": "E9W16F3H",
        "2026": "E9A16F3H",
    }
    assert got["2022"]["list_kind"] == "half-year"
    assert got["2022"]["vintage_policy"] == {
        "expected": "2022",
        "rule": "equal",
        "note": "Hurun list 2022-H1 (half-year, cut-off 2022-06-30)",
    }
    with pytest.raises(EditionError, match=r"no list of year 2031 \(lists known: 2019, 2020, 2021, 2022-H1, 2023"):
        resolve_source("hurun", raw, "2031")
    only_annual = {**raw, "list_kinds": ["annual"]}
    with pytest.raises(EditionError, match="no list of year 2022"):
        resolve_source("hurun", only_annual, "2022")


def test_the_rank_page_offers_its_lists_and_unknown_ones_are_named(recordings):
    page = "2020/hurun/rank-page-WE53FEER.html"
    offered = hurun.offered_lists((recordings / page).read_bytes(), page)
    assert offered[["year", "num"]].values.tolist() == [["2020", "WE53FEER"], ["2019", "A5DBQYKF"]]
    cfg = {"lists": {"2020": {"num": "WE53FEER"}}}
    assert hurun.newer_lists(offered, cfg) == ["2019 Global Unicorn Index (num A5DBQYKF)"]
    blocked = b"<html><head><title>Access denied</title></head><body>Access denied</body></html>"
    with pytest.raises(SourceError, match="expected Hurun's rank page, found a block or challenge page"):
        hurun.offered_lists(blocked, "rank")


def test_csv_export_with_other_headers(registry):
    csv = "Rank,Company Name,Valuation (USD bn),HQ,Country/Region,Sector\n1,Acme,10.5,Zürich,Switzerland,AI\n2,Beta,1,Hangzhou,China,Fintech\n"
    df = hurun.parse_list(csv.encode(), "list.csv", registry)
    assert df["city_id"].tolist() == ["zurich", "hangzhou"]
    assert df["valuation_usd_bn"].tolist() == [10.5, 1.0]


def test_xlsx_export(registry):
    buf = io.BytesIO()
    pd.DataFrame(
        {
            "Rank": [1],
            "Company": ["Acme"],
            "Valuation (US$bn)": [3.2],
            "Headquarters": ["Beijing"],
            "Country": ["China"],
        }
    ).to_excel(buf, index=False)
    df = hurun.parse_list(buf.getvalue(), "list.xlsx", registry)
    assert df.iloc[0]["city_id"] == "beijing" and df.iloc[0]["valuation_usd_bn"] == 3.2


def test_missing_column_names_the_alternatives(registry):
    html = b"<table><tr><th>Rank</th><th>Company</th><th>Headquarters</th></tr><tr><td>1</td><td>A</td><td>B</td></tr></table>"
    with pytest.raises(SourceError, match="expected columns for \\['valuation_usd_bn'\\]"):
        hurun.parse_list(html, "page.html", registry)


def test_stated_count_is_read_and_checked(registry, data_home):
    from tasks.ingest.core import fetch_and_parse, tidy_source, validate_source
    from tasks.sources import load_sources_config

    cfg = load_sources_config()["hurun"]
    fetched = fetch_and_parse("hurun", cfg, "offline", registry)
    assert sorted(r.kind for r in fetched.parsed) == ["hurun-api", "hurun-api", "hurun-rank-page"]
    tidy, extras = tidy_source("hurun", cfg, registry, fetched)
    assert extras["companies"].attrs["stated_count"] == 335 == len(extras["companies"])
    extras["companies"] = extras["companies"].iloc[:-1].copy()
    extras["companies"].attrs["stated_count"] = 335
    reports = validate_source("hurun", cfg, registry, tidy, extras)
    errors = [e for r in reports for e in r.errors]
    assert [(e.expectation, e.offending) for e in errors] == [
        ("company_count_equals_stated_count", ["334 rows, the page states 335"])
    ]
    online = {**cfg, "mode": "online"}
    warnings = [w for r in validate_source("hurun", online, registry, tidy, extras) for w in r.warnings]
    assert [(w.expectation, w.offending) for w in warnings if w.expectation == "company_count_near_headline"] == [
        ("company_count_near_headline", ["334 companies, the press headline of list 2020 says 586"])
    ]


def test_duplicate_company_and_zero_valuation_fail_the_suite(companies):
    from tasks.validate import load_suite, run_suite

    bad = companies.copy()
    bad.loc[5, "company"] = bad.loc[4, "company"]
    bad.loc[7, "valuation_usd_bn"] = 0.0
    rep = run_suite(
        bad, load_suite("hurun_companies"), source="hurun", key_column="company", params={"companies_max_rows": 5000}
    )
    failed = {(e.expectation, e.column) for e in rep.errors}
    assert ("expect_column_values_to_be_unique", "company") in failed
    assert ("expect_column_values_to_be_between", "valuation_usd_bn") in failed


def test_headquarters_cells_of_exports_match_by_name_or_city_comma_country(registry):
    assert hurun.match_city(registry, "Beijing", "China") == "beijing"
    assert hurun.match_city(registry, "Beijing, China", "China") == "beijing"
    assert hurun.match_city(registry, "London, Canada", "Canada") is None  # not the index's London
    assert hurun.match_city(registry, "Paris, France", None) == "paris"
    assert hurun.match_city(registry, None, "China") is None  # an empty cell: flagged by the suite, never a city
    assert hurun.match_city(registry, float("nan"), float("nan")) is None


def test_a_request_for_the_list_of_a_file_reads_that_file(registry):
    cfg = {**resolve_source("hurun", load_sources_raw()["hurun"], "2020"), "url": "file:/tmp/list.csv"}
    assert hurun.plan(cfg, registry, {}) == [Request("hurun-list", "file:/tmp/list.csv")]
