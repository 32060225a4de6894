"""Errors a user hits name the file, line or field and say what was expected; resource bounds turn
into such errors instead of exhausting memory."""

import io
import json
import zipfile

import pytest
import yaml
from typer.testing import CliRunner

from talent_index.cli import app
from tasks.errors import FetchError, PipelineError, SourceError
from tasks.ingest.core import fetch_and_parse, ingest
from tasks.registry.cities import load_registry
from tasks.sources import load_sources_config, load_sources_raw

from .conftest import ROOT, assert_nothing_lost

RANKING = "2020/numbeo/quality-of-life-rankings-2020.html"
runner = CliRunner()


def run(source, cfg=None):
    return ingest(source, cfg or load_sources_config(edition="2020")[source], "offline", load_registry())


def test_a_renamed_ranking_header_names_the_expected_column(home, recordings_copy):
    h, before = home
    page = recordings_copy / RANKING
    page.write_text(page.read_text().replace("<div>Safety Index</div>", "<div>Safty Index</div>"))
    with pytest.raises(SourceError) as info:
        run("numbeo")
    msg = str(info.value)
    assert "expected a column headed 'Safety Index' (quality-of-life ranking)" in msg
    assert "not expected: ['Safty Index']" in msg and "rankings.jsp?title=2020" in msg
    res = runner.invoke(app, ["parse", "numbeo-rankings", str(page)])
    assert res.exit_code == 1  # the file path names no section: the title does
    assert "expected a column headed 'Safety Index' (quality-of-life ranking)" in res.output
    assert_nothing_lost(h, before)


def test_a_cost_of_living_ranking_where_the_quality_of_life_one_belongs(home, recordings_copy):
    h, before = home
    page = recordings_copy / RANKING
    text = page.read_text().replace("Quality of Life Index by City 2020", "Cost of Living Index by City 2020")
    page.write_text(text)
    with pytest.raises(
        SourceError,
        match=r"expected the quality-of-life ranking, found the cost-of-living ranking "
        r"\(title 'Cost of Living Index by City 2020'\)",
    ):
        run("numbeo")
    assert_nothing_lost(h, before)


def test_an_empty_hurun_response_and_an_empty_file(home, recordings_copy, tmp_path):
    h, before = home
    (recordings_copy / "2020/hurun/api-WE53FEER-200.json").write_bytes(b"")
    with pytest.raises(
        SourceError,
        match=r"\[source hurun, https://www.hurun.net/en-US/Rank/HsRankDetailsList\?num=WE53FEER&search=&offset=200"
        r"&limit=200\] expected the list's JSON, found an empty body \(0 bytes\)",
    ):
        run("hurun")
    empty = tmp_path / "list.csv"
    empty.write_bytes(b"")
    res = runner.invoke(app, ["parse", "hurun-list", str(empty)])
    assert res.exit_code == 1 and "found an empty response (0 bytes)" in res.output and str(empty) in res.output
    assert_nothing_lost(h, before)


def test_a_duplicated_curated_row_names_city_indicator_and_lines(tmp_path):
    src = (ROOT / "data" / "curated" / "report_indicators_2020.csv").read_text().splitlines()
    line = next(i for i, r in enumerate(src) if r.startswith("berlin,rd_intensity,"))
    table = tmp_path / "curated.csv"
    table.write_text("\n".join(src[: line + 1] + [src[line]] + src[line + 1 :]) + "\n")
    res = runner.invoke(app, ["curated", "check", str(table)])
    assert res.exit_code == 1
    assert f"city berlin, indicator rd_intensity appears on lines {line + 1}, {line + 2}" in res.output


@pytest.mark.parametrize(
    "change,needle",
    [
        (
            lambda rows: [r.replace(",35.6762,", ",35.6762N,") for r in rows],
            "line {tokyo}, city tokyo, column lat: expected a number between -90 and 90",
        ),
        (
            lambda rows: [r.replace('"Vienna, Austria"', '"Zurich, Switzerland"') for r in rows],
            "numbeo_name 'Zurich, Switzerland' names both",
        ),
        (lambda rows: rows[:1], "has no cities (only a header)"),
    ],
    ids=["latitude with a letter", "two cities with one Numbeo name", "no rows"],
)
def test_registry_errors_name_the_file_line_city_and_column(tmp_path, monkeypatch, change, needle):
    rows = (ROOT / "data" / "cities.csv").read_text().splitlines()
    tokyo = next(i for i, r in enumerate(rows) if r.startswith("tokyo,")) + 1
    registry = tmp_path / "cities.csv"
    registry.write_text("\n".join(change(rows)) + "\n")
    monkeypatch.setenv("TALENT_INDEX_REGISTRY", str(registry))
    res = runner.invoke(app, ["parse", "gawc-tiers", str(ROOT / "data/recordings/2020/gawc/world2020t.html")])
    assert res.exit_code == 1 and str(registry) in res.output
    assert needle.format(tokyo=tokyo) in res.output, res.output


def test_sources_configuration_errors_name_the_file_line_and_setting(tmp_path, monkeypatch):
    doc = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    del doc["curated"]["url"]
    bad = tmp_path / "sources.yaml"
    bad.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("TALENT_INDEX_SOURCES", str(bad))
    with pytest.raises(PipelineError, match=r"sources.yaml line 1: curated.url: missing \(required\)$"):
        load_sources_config(edition="2020")
    doc["curated"]["url"], doc["hurun"]["lists"]["2020"]["kind"] = "file:x.csv", "yearly"
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(
        PipelineError,
        match=r"sources.yaml line \d+: hurun.lists.2020.kind: expected 'annual' or 'half-year', found 'yearly'$",
    ) as e:
        load_sources_raw()
    line = int(str(e.value).split(" line ")[1].split(":")[0])
    assert bad.read_text().splitlines()[line - 1].strip() == "kind: yearly"  # the line named is the key's
    doc["hurun"]["lists"]["2020"]["kind"], doc["numbeo"]["http"]["retires"] = "annual", 2
    bad.write_text(yaml.safe_dump(doc))
    with pytest.raises(
        PipelineError, match=r"sources.yaml line \d+: numbeo.http.retires: unknown key; known: .*retries"
    ):
        load_sources_raw()
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text((ROOT / "data" / "sources.yaml").read_text().replace("  base_url:", "\tbase_url:"))
    monkeypatch.setenv("TALENT_INDEX_SOURCES", str(tabbed))
    with pytest.raises(PipelineError, match=r"tabbed.yaml line \d+, column \d+: not valid YAML"):
        load_sources_raw()


def test_a_truncated_recordings_index_names_the_file(home, recordings_copy):
    h, before = home
    index = recordings_copy / "2020" / "index.json"
    index.write_text(index.read_text()[:500])
    with pytest.raises(FetchError, match=r"2020/index.json\] the recordings index is not valid JSON"):
        run("gawc")
    assert_nothing_lost(h, before)


def xlsx_claiming(rows: int, filler: int = 0) -> bytes:
    """A small workbook whose sheet claims `rows` rows, or with a member that unpacks to `filler`
    bytes of zeros (a zip bomb in miniature)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Rank", "City", "Country", "GNC_abs", "GNC_rel(%)"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for m in src.infolist():
            data = src.read(m.filename)
            if m.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:E1"/>', f'<dimension ref="A1:E{rows}"/>'.encode())
            z.writestr(m, data)
        if filler:
            z.writestr("xl/media/padding.bin", b"\0" * filler)
    return out.getvalue()


@pytest.mark.parametrize(
    "rows,filler,needle",
    [
        (2_000_000, 0, "claims 2,000,000 rows x 5 columns, more than the 5,000,000 cells we read"),
        (1, 120 * 1024 * 1024, "the workbook unpacks to"),
    ],
)
def test_a_workbook_that_would_unpack_too_far_is_refused_before_reading(tmp_path, rows, filler, needle):
    book = tmp_path / "da31.xlsx"
    book.write_bytes(xlsx_claiming(rows, filler))
    assert book.stat().st_size < 1_000_000
    res = runner.invoke(app, ["parse", "gawc-connectivity", str(book)])
    assert res.exit_code == 1 and needle in res.output and str(book) in res.output


def test_a_sheet_without_a_dimension_has_its_rows_counted_before_reading(tmp_path):
    """No <dimension> claims a size: the rows are counted on the XML stream and a junk sheet of
    250,000 rows is refused before pandas would expand it."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Rank", "City", "Country", "GNC_abs", "GNC_rel(%)"])
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    junk = b"".join(
        b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>x</t></is></c></row>' % (n, n) for n in range(2, 250_002)
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for m in src.infolist():
            data = src.read(m.filename)
            if m.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b'<dimension ref="A1:E1"/>', b"").replace(b"</sheetData>", junk + b"</sheetData>")
            z.writestr(m, data)
    book = tmp_path / "junk.xlsx"
    book.write_bytes(out.getvalue())
    assert book.stat().st_size < 2_000_000  # a small file; unpacked, well under the 100 MB cap
    res = runner.invoke(app, ["parse", "gawc-connectivity", str(book)])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and str(book) in text
    assert "the sheet xl/worksheets/sheet1.xml holds more than 200,000 rows or" in text
    assert "(counted, not claimed): at most 200,000 rows and 5,000,000 cells are read" in text


def test_parse_reads_a_bounded_number_of_bytes(monkeypatch):
    monkeypatch.setattr("talent_index.cli.MAX_FILE_BYTES", 1_000_000)
    res = runner.invoke(app, ["parse", "hurun-list", "/dev/zero"])
    assert (
        res.exit_code == 1 and "/dev/zero: the saved response is larger than the 1,000,000 bytes we read" in res.output
    )


@pytest.mark.parametrize(
    "draws,needle",
    [
        ("-5", "--draws -5: expected a positive number of draws"),
        ("100000000", "100,000,000 draws x 30 cities need 5.6 GiB for the rank table; at most 35,791,392 draws fit"),
    ],
)
def test_uncertainty_draws_are_bounded(home, draws, needle):
    res = runner.invoke(app, ["uncertainty", "--draws", draws])
    assert res.exit_code == 1 and needle in res.output, res.output


def test_the_shipped_online_configuration_needs_the_earthdata_token_before_any_request(monkeypatch, data_home):
    monkeypatch.delenv("EARTHDATA_TOKEN", raising=False)
    cfg = load_sources_config(edition="2020", mode="online")["night_lights"]
    assert cfg["format"] == "vnp46a4" and "/allData/5200/VNP46A4/" in cfg["listing_urls"][0]
    assert load_sources_config(edition="2020")["night_lights"]["format"] == "none"  # offline: the sample has none
    with pytest.raises(
        FetchError,
        match=r"EARTHDATA_TOKEN is not set: every request carries the header "
        r"Authorization: Bearer \$\{EARTHDATA_TOKEN\}.*nothing was fetched",
    ):
        fetch_and_parse("night_lights", cfg, "online", load_registry())
    assert not (data_home / "raw").exists()


def test_an_unfetchable_scheme_online_fails_at_once(monkeypatch, data_home):
    monkeypatch.setenv("EARTHDATA_TOKEN", "t" * 12)
    cfg = load_sources_config(edition="2020")["night_lights"]  # generated clips' sample:// URLs
    with pytest.raises(FetchError, match=r"sample://night_lights/2019/\S+ cannot fetch this URL in online mode"):
        fetch_and_parse("night_lights", {**cfg, "format": "vnl-clip", "mode": "online"}, "online", load_registry())


def test_json_loads_of_a_manifest_never_reaches_the_user(home):
    """`releases show --json` of a damaged manifest: one line naming the file."""
    h, _ = home
    rid = (h / "releases" / "LATEST").read_text().strip()
    man = h / "releases" / rid / "manifest.json"
    man.write_text(json.dumps({"release_id": rid})[:-3])
    res = runner.invoke(app, ["releases", "show", "--json"])
    assert res.exit_code == 1 and f"{man} is damaged: not valid JSON" in res.output
