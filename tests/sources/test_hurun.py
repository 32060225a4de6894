"""Hurun unicorn list: parse, count per index city, keep unmatched companies."""

import io

import pandas as pd
import pytest

from tasks.errors import SourceError
from tasks.sources import hurun

LIST = "2020/hurun/global-unicorn-index-2020.html"


@pytest.fixture(scope="module")
def companies(recordings, registry):
    return hurun.parse_list((recordings / LIST).read_bytes(), LIST, registry)


def test_company_rows_and_contract_columns(companies):
    assert companies.columns.tolist() == ["rank", "company", "valuation_usd_bn", "city", "country", "city_id"]
    assert companies["rank"].tolist() == list(range(1, len(companies) + 1))
    assert len(companies) == 335 and companies["company"].is_unique
    assert (companies["valuation_usd_bn"] > 0).all()


def test_beijing_2020_count_is_93(companies, registry):
    counts = hurun.count_per_city(companies, registry)
    assert counts["beijing"] == 93
    assert counts["shanghai"] == 47 and counts["new-york"] == 33 and counts["copenhagen"] == 0
    assert len(counts) == 30 and (counts >= 0).all()


def test_unmatched_companies_are_kept_and_summarised(companies):
    rest = hurun.unmatched_summary(companies).set_index("city")["companies"]
    assert rest["San Francisco"] == 9  # San Francisco is not Los Angeles
    assert companies["city_id"].isna().sum() == 9 + 3 + 2 + 3


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


def test_stated_count_is_read_and_checked(recordings, registry, data_home):
    from tasks.ingest import fetch_and_parse, tidy_source, validate_source
    from tasks.sources import load_sources_config

    html = (recordings / LIST).read_bytes()
    df = hurun.parse_list(html, LIST, registry)
    assert df.attrs["stated_count"] == 335 == len(df)
    cfg = load_sources_config()["hurun"]
    fetched = fetch_and_parse("hurun", cfg, "offline", registry)
    tidy, extras = tidy_source("hurun", cfg, registry, fetched)
    extras["companies"] = extras["companies"].iloc[:-1].copy()
    extras["companies"].attrs["stated_count"] = 335
    reports = validate_source("hurun", cfg, registry, tidy, extras)
    errors = [e for r in reports for e in r.errors]
    assert [(e.expectation, e.offending) for e in errors] == [
        ("company_count_equals_stated_count", ["334 rows, the page states 335"])
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


def test_headquarters_cells_match_by_name_or_city_comma_country(registry):
    assert hurun.match_city(registry, "Beijing", "China") == "beijing"
    assert hurun.match_city(registry, "Beijing, China", "China") == "beijing"
    assert hurun.match_city(registry, "London, Canada", "Canada") is None  # not the index's London
    assert hurun.match_city(registry, "Paris, France", None) == "paris"
    assert hurun.match_city(registry, None, "China") is None  # an empty cell: flagged by the suite, never a city
    assert hurun.match_city(registry, float("nan"), float("nan")) is None
