"""Bad content: every case fails with a message naming source, URL or file, city and field —
or goes through with a warning — and nothing earlier is lost."""

import re

import pytest

from tasks.errors import DataQualityError, FetchError, SourceError
from tasks.ingest.core import ingest
from tasks.registry.cities import Registry, load_registry
from tasks.sources import load_sources_config

from .conftest import assert_nothing_lost

RANKING = "2020/numbeo/quality-of-life-rankings-2020.html"
RANKING_URL = "https://www.numbeo.com/quality-of-life/rankings.jsp?title=2020"


def edit(rec, name, fn):
    p = rec / name
    p.write_bytes(fn(p.read_bytes()))


def run(source):
    return ingest(source, load_sources_config()[source], "offline", load_registry())


CASES = [
    (
        "renamed header",
        lambda b: b.replace(b"<div>City</div>", b"<div>Town</div>"),
        SourceError,
        [RANKING_URL, "expected a column headed 'City'", "Town"],
    ),
    (
        "block page with status 200",
        lambda b: b"<html><head><title>Just a moment...</title></head><body>cf-challenge captcha</body></html>",
        SourceError,
        [RANKING_URL, "block or challenge page"],
    ),
    (
        "empty table",
        lambda b: re.sub(rb"<tbody>.*</tbody>", b"<tbody></tbody>", b, flags=re.S),
        SourceError,
        [RANKING_URL, "the ranking table has no rows"],
    ),
    ("wrong encoding (UTF-16)", lambda b: b.decode().encode("utf-16"), SourceError, [RANKING_URL, "NUL bytes"]),
    (
        "not UTF-8, no charset declared",
        lambda b: b.replace(b"Zurich", "Z\u00fcrich".encode("latin-1")),
        SourceError,
        [RANKING_URL, "not valid UTF-8 and declares no other charset"],
    ),
    (
        "duplicate city rows",
        lambda b: re.sub(
            rb"(<tr style=\"width: 100%\"><td></td><td class=\"cityOrCountryInIndicesTable\">Beijing, China</td>.*?</tr>)",
            rb"\1\1",
            b,
            count=1,
        ),
        (SourceError, DataQualityError),
        ["numbeo", "beijing"],
    ),
    (
        "negative value",
        lambda b: b.replace(b">86.96<", b">-86.96<", 1),
        DataQualityError,
        ["suite numbeo", "expect_column_values_to_be_between(pollution_index)", "beijing"],
    ),
    (
        "infinite value",
        lambda b: b.replace(b">86.96<", b">inf<", 1),
        SourceError,
        [RANKING_URL, "city Beijing, China", "field Pollution Index", "'inf'"],
    ),
    (
        "value out of range (tenfold)",
        lambda b: b.replace(b">86.96<", b">869.60<", 1),
        DataQualityError,
        ["expect_column_values_to_be_between(pollution_index)", "beijing"],
    ),
]


@pytest.mark.parametrize("name,mutate,error,needles", CASES, ids=[c[0] for c in CASES])
def test_numbeo_ranking_fault(name, mutate, error, needles, home, recordings_copy):
    h, before = home
    edit(recordings_copy, RANKING, mutate)
    with pytest.raises(error) as info:
        run("numbeo")
    for n in needles:
        assert n in str(info.value), (n, str(info.value))
    assert_nothing_lost(h, before)


def test_a_value_left_empty_is_an_error_unless_the_row_says_missing(home, tmp_path):
    """An empty cell of a real row is a typing slip (an error naming city and indicator); a row that
    says `missing` holds no value on purpose: the World Bank's country figure stands in where the
    methodology names it as the proxy, the missing-values policy otherwise."""
    from scoring import load_methodology
    from tasks.publish.gather import gather_inputs, score

    h, before = home
    src = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "curated" / "report_indicators_2020.csv"
    table = tmp_path / "curated.csv"
    table.write_text(re.sub(r"(?m)^(beijing,rd_intensity,)[^,]*,", r"\1,", src.read_text()))
    cfg = load_sources_config()["curated"]
    with pytest.raises(
        DataQualityError,
        match=r"missing_rows_hold_no_value\(status\): offending rows beijing:rd_intensity status 'real' with no value",
    ):
        ingest("curated", {**cfg, "url": f"file://{table}"}, "offline", load_registry())
    assert_nothing_lost(h, before)
    text = re.sub(r"(?m)^(beijing,rd_intensity,)[^,]*,(.*?),real,", r"\1,\2,missing,", src.read_text())
    table.write_text(text)
    result = ingest("curated", {**cfg, "url": f"file://{table}"}, "offline", load_registry())
    assert result.warnings == []  # a value that became missing is not a value that moved
    m = load_methodology()
    inputs = gather_inputs(load_registry(), m)
    prov = inputs.provenance.set_index(["city_id", "indicator"])
    assert prov.loc[("beijing", "rd_intensity"), "status"] == "proxy"  # China's figure (WDI)
    assert prov.loc[("beijing", "rd_intensity"), "source"] == "wdi"
    assert inputs.values.loc["beijing", "rd_intensity"] == pytest.approx(2.20144)
    scored = score(inputs, load_registry(), m)
    row = scored.indicators.set_index(["city_id", "indicator"]).loc[("oslo", "international_students")]
    assert row["imputed"]  # no QS rank for Oslo: missing, imputed
    assert any("international_students: 16 cities missing" in w for w in scored.warnings)


def test_numbeo_value_missing_falls_back_to_the_city_page(home, recordings_copy):
    """'?' in the ranking: the city's own page is requested (offline: it must be recorded)."""
    h, before = home
    edit(recordings_copy, RANKING, lambda b: b.replace(b">86.96<", b">?<", 1))
    with pytest.raises(FetchError, match=r"quality-of-life/in/Beijing\] offline mode: no recording.*city beijing"):
        run("numbeo")
    assert_nothing_lost(h, before)


def test_price_in_another_currency(home, recordings_copy):
    h, before = home
    edit(recordings_copy, "2020/numbeo/cost-of-living-oslo.html", lambda b: b.replace(b"&#8364;", b"$"))
    with pytest.raises(SourceError) as info:
        run("numbeo")
    msg = str(info.value)
    assert "city oslo" in msg and "field monthly_net_salary" in msg and "expected prices in EUR, found USD" in msg
    assert "cost-of-living/in/Oslo" in msg
    assert_nothing_lost(h, before)


def test_tenfold_outlier_within_range_warns(home, recordings_copy):
    h, before = home
    cfg = load_sources_config()["curated"]
    table = recordings_copy.parent / "curated.csv"
    src = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "curated" / "report_indicators_2020.csv"
    text = src.read_text().splitlines()
    for i, line in enumerate(text):
        if line.startswith("berlin,international_students,"):
            parts = line.split(",")
            parts[2] = str(float(parts[2]) * 10)
            text[i] = ",".join(parts)
    table.write_text("\n".join(text) + "\n")
    result = ingest("curated", {**cfg, "url": f"file://{table}"}, "offline", load_registry())
    moved = next(w for w in result.warnings if w.expectation == "change_vs_previous_snapshot")
    assert len(moved.offending) == 1 and moved.offending[0].startswith("berlin:international_students")
    assert_nothing_lost(h, before)


def test_city_missing_from_one_source_warns_and_is_imputed(home, tmp_path):
    h, before = home
    src = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "curated" / "report_indicators_2020.csv"
    table = tmp_path / "curated.csv"
    table.write_text("\n".join(ln for ln in src.read_text().splitlines() if not ln.startswith("oslo,")) + "\n")
    cfg = load_sources_config()["curated"]
    # a registry of any size: a city a table lacks is a warning, and its values are imputed
    done = ingest("curated", {**cfg, "url": f"file://{table}"}, "offline", load_registry())
    warned = {(c.expectation, str(c.observed)) for r in done.reports for c in r.warnings}
    assert ("expect_table_row_count_to_equal", "232") in warned  # 30 cities x 8 rows, Oslo's gone
    present = [c for r in done.reports for c in r.warnings if c.expectation == "every_registry_city_present"]
    assert [c.offending for c in present] == [["oslo"]]
    assert "oslo" not in set(done.tidy["city_id"])


def test_new_registry_city_that_no_source_has(home):
    h, before = home
    reg = load_registry()
    table = reg.table.copy()
    table.loc["dubai"] = table.loc["singapore"]
    table.loc["dubai", ["name_en", "numbeo_name", "numbeo_slug"]] = ["Dubai", "Dubai, United Arab Emirates", "Dubai"]
    with pytest.raises(FetchError) as info:
        ingest("numbeo", load_sources_config()["numbeo"], "offline", Registry(table))
    msg = str(info.value)
    assert "source numbeo" in msg and "/in/Dubai" in msg and "city dubai" in msg and "no recording" in msg
    assert_nothing_lost(h, before)
