"""World Bank WDI: the API's answers, paging, the error envelope, units, the edition policy."""

import json

import pandas as pd
import pytest

from tasks.errors import SourceError
from tasks.sources import load_sources_raw, resolve_source, wdi
from tasks.sources.base import Request


def answer(rows, page=1, pages=1, total=None, per_page=1000):
    meta = {"page": page, "pages": pages, "per_page": per_page, "total": len(rows) if total is None else total}
    return json.dumps([meta, rows or None]).encode()


def row(iso3, year, value, code="SH.MED.PHYS.ZS", name="Physicians (per 1,000 people)"):
    return {
        "indicator": {"id": code, "value": name},
        "country": {"id": iso3[:2], "value": iso3},
        "countryiso3code": iso3,
        "date": str(year),
        "value": value,
        "unit": "",
        "obs_status": "",
        "decimal": 1,
    }


@pytest.fixture(scope="module")
def cfg():
    return resolve_source("wdi", load_sources_raw()["wdi"], "2020")


def test_the_policy_reads_the_years_up_to_the_one_before_the_edition(cfg, registry):
    assert (cfg["first_year"], cfg["last_year"]) == (2007, 2019)
    assert cfg["vintage_policy"] == {
        "expected": "2019",
        "rule": "at_most",
        "note": "each country's newest value up to the year before the edition",
    }
    (first, *_rest) = wdi.plan(cfg, registry, {})
    assert first.url == (
        "https://api.worldbank.org/v2/country/all/indicator/SH.MED.PHYS.ZS?format=json&date=2007:2019"
        "&per_page=1000&page=1"
    )
    only = {**cfg, "countries": "registry"}
    assert (
        "/country/AUT;BEL;CAN;CHE;CHN;DEU;DNK;ESP;FIN;FRA;GBR;JPN;NOR;SGP;SWE;USA/"
        in wdi.plan(only, registry, {})[0].url
    )


def test_each_country_gets_its_newest_non_null_value_up_to_the_policys_year(cfg, registry):
    page = wdi.parse_page(
        answer([row("CHN", 2020, 2.4), row("CHN", 2019, None), row("CHN", 2018, 2.0), row("FRA", 2017, 3.2)]),
        "u",
        "physicians_per_1000",
        "SH.MED.PHYS.ZS",
        "per 1,000 people",
    )
    req = Request("wdi-indicator", "u", meta={"series": "physicians_per_1000", "page": 1})
    tidy = wdi.tidy(cfg, registry, {req: page}).set_index("city_id")
    assert tidy.loc["beijing", "value"] == 2.0 and tidy.loc["beijing", "edition"] == "2018"  # 2020 is too new
    assert tidy.loc["paris", "value"] == 3.2 and tidy.loc["paris", "edition"] == "2017"
    assert "london" not in tidy.index  # no value for the UK: no row (the proxy does not stand in)
    assert wdi.SPEC.found_vintage(cfg, {req: page}) == "2018"


def test_pages_are_requested_until_pages_and_must_fit_together(cfg, registry):
    first = wdi.plan(cfg, registry, {})[0]
    page1 = wdi.parse_page(answer([row("CHN", 2019, 2.2)], page=1, pages=3, total=3, per_page=1), first.url)
    more = wdi.plan(cfg, registry, {first: page1})
    assert [r.meta["page"] for r in more if r.meta["series"] == "physicians_per_1000"] == [1, 2, 3]
    page2 = wdi.parse_page(answer([row("FRA", 2019, 3.2)], page=2, pages=3, total=3, per_page=1), "p2")
    page3 = wdi.parse_page(answer([row("USA", 2018, 2.6)], page=3, pages=3, total=3, per_page=1), "p3")
    assert len(wdi.combine([page3, page1, page2], "x")) == 3
    with pytest.raises(SourceError, match=r"expected pages 1 to 3, found \[1, 3\]"):
        wdi.combine([page1, page3], "x")
    changed = wdi.parse_page(answer([row("USA", 2018, 2.6)], page=3, pages=3, total=4, per_page=1), "p3")
    with pytest.raises(SourceError, match=r"page 3 says 3 pages and 4 rows, page 1 3 and 3"):
        wdi.combine([page1, page2, changed], "x")
    short = wdi.parse_page(answer([row("CHN", 2019, 2.2)], total=2), "p")
    with pytest.raises(SourceError, match=r"the pages hold 1 rows, the API's total is 2"):
        wdi.combine([short], "x")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'[{"message": [{"id": "120", "key": "Invalid value", "value": "The provided parameter value is not valid"}]}]',
            r"\[source wdi, u\] the API refused the request \(120 Invalid value: The provided parameter value is not valid\)",
        ),
        (
            b"<html><title>Service unavailable</title></html>",
            r"expected the API's JSON \[metadata, rows\], found an HTML page",
        ),
        (b'{"total": 3}', r"found another structure"),
        (b'[{"page": 1}, []]', r"expected page, pages, per_page and total in the metadata"),
    ],
)
def test_answers_that_are_not_the_data_are_refused(body, message):
    with pytest.raises(SourceError, match=message):
        wdi.parse_page(body, "u")


def test_a_figure_of_another_unit_or_series_is_refused():
    per_10000 = answer([row("CHN", 2019, 22.0, name="Physicians (per 10,000 people)")])
    with pytest.raises(
        SourceError,
        match=r"field SH.MED.PHYS.ZS\] row 1: SH.MED.PHYS.ZS is 'Physicians \(per 10,000 people\)' \(unit not stated\), "
        r"expected the unit 'per 1,000 people': a figure of another unit is never used",
    ):
        wdi.parse_page(per_10000, "u", "physicians_per_1000", "SH.MED.PHYS.ZS", "per 1,000 people")
    with pytest.raises(SourceError, match=r"row 1: series GB.XPD.RSDV.GD.ZS, expected SH.MED.PHYS.ZS"):
        wdi.parse_page(answer([row("CHN", 2019, 2.2, code="GB.XPD.RSDV.GD.ZS")]), "u", "x", "SH.MED.PHYS.ZS")


def test_null_for_every_year_and_old_values_are_named_not_guessed(cfg, registry):
    from tasks.ingest.core import validate_source

    empty = wdi.parse_page(answer([row("CHN", 2019, None), row("CHN", 2018, None)]), "u", "physicians_per_1000")
    old = wdi.parse_page(
        answer([row("FRA", 2009, 3.3, code="GB.XPD.RSDV.GD.ZS", name="R&D (% of GDP)")]), "v", "rd_pct_gdp"
    )
    parsed = {
        Request("wdi-indicator", "u", meta={"series": "physicians_per_1000", "page": 1}): empty,
        Request("wdi-indicator", "v", meta={"series": "rd_pct_gdp", "page": 1}): old,
    }
    tidy = wdi.tidy(cfg, registry, parsed)
    assert tidy[["city_id", "indicator", "value", "edition"]].values.tolist() == [["paris", "rd_pct_gdp", 3.3, "2009"]]
    (fallback,) = wdi.SPEC.fallback_values(cfg, parsed)
    assert fallback["reason"] == "1 country figures older than 2014 (max_age 5)"
    assert fallback["values"] == ["FRA:rd_pct_gdp (2009)"]
    extras = wdi.SPEC.extras(cfg, registry, parsed, parsed)
    (report,) = validate_source("wdi", cfg, registry, tidy, extras)
    warned = {w.expectation: w.offending for w in report.warnings}
    assert warned["every_series_has_values"] == [
        "physicians_per_1000: no value for any country up to 2019",
        "education_pct_gov_exp: no value for any country up to 2019",
    ]
    assert "rd_pct_gdp: CHN" in warned["a_value_for_every_country"]
    assert report.errors == []


def test_a_value_outside_the_configured_bounds_is_an_error(cfg, registry):
    from tasks.ingest.core import validate_source

    page = wdi.parse_page(answer([row("CHN", 2019, 22.0)]), "u", "physicians_per_1000")
    parsed = {Request("wdi-indicator", "u", meta={"series": "physicians_per_1000", "page": 1}): page}
    tidy = wdi.tidy(cfg, registry, parsed)
    (report,) = validate_source("wdi", cfg, registry, tidy, wdi.SPEC.extras(cfg, registry, parsed, parsed))
    assert [(e.expectation, e.offending) for e in report.errors] == [
        ("value_within_configured_bounds", ["CHN:physicians_per_1000 22 (2019) outside [0, 15]"])
    ]


def test_parse_wdi_reads_a_saved_answer_and_an_array_of_them(recordings, tmp_path):
    from typer.testing import CliRunner

    from talent_index.cli import app

    saved = recordings / "2020" / "wdi" / "00-sh-med-phys-zs.json"
    res = CliRunner().invoke(app, ["parse", "wdi", str(saved)])
    assert res.exit_code == 0, res.output
    import io

    df = pd.read_csv(io.StringIO(res.stdout))
    assert len(df) == 16 and set(df["code"]) == {"SH.MED.PHYS.ZS"}
    assert df.set_index("iso3").loc["FRA", "value"] == 3.2735
    pages = tmp_path / "pages.json"
    one = json.loads(answer([row("CHN", 2019, 2.2)], page=1, pages=2, total=2, per_page=1))
    two = json.loads(answer([row("FRA", 2019, 3.2)], page=2, pages=2, total=2, per_page=1))
    pages.write_text(json.dumps([one, two]))
    res = CliRunner().invoke(app, ["parse", "wdi", str(pages)])
    assert res.exit_code == 0 and len(pd.read_csv(io.StringIO(res.stdout))) == 2
    pages.write_text(json.dumps([one]))
    res = CliRunner().invoke(app, ["parse", "wdi", str(pages)])
    assert res.exit_code == 1 and f"[source wdi, {pages}] expected pages 1 to 2, found [1]" in res.output
