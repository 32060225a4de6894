"""`cities build` (and every command with an output file) never writes into a data home's releases/
or snapshots/, writes CSV cells a spreadsheet would evaluate as inert text, and always writes a
registry its own loader accepts (namesakes disambiguated as Numbeo does), or says why not."""

from __future__ import annotations

import io
import json
import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from talent_index.cli import app
from tasks import csvsafe

from .test_registry_build import ranking_page

runner = CliRunner()


def test_formula_cells_are_escaped_and_read_back_as_printed():
    assert csvsafe.escape('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    for cell in ("+1 555", "-cmd", "@SUM(A1)", "\tx", "\rx"):
        assert csvsafe.escape(cell) == "'" + cell and csvsafe.unescape(csvsafe.escape(cell)) == cell
    for value in ("-74.0060", "+3", "-1e5", "Paris", "", "'quoted", 12.5, None):
        assert csvsafe.escape(value) == value  # numbers are numbers, plain text stays
    frame = pd.DataFrame({"name": ["=cmd|' /C calc'!A0", "Oslo"], "lon": [-74.006, 10.75]})
    text = csvsafe.to_csv(frame, index=False)
    assert text.splitlines()[1] == "'=cmd|' /C calc'!A0,-74.006"


def test_a_frame_is_escaped_cell_by_cell_whatever_its_columns():
    cells = ["=1+2", "-74.0060", "Oslo", None, "@x", "+3", "-cmd"]
    frame = pd.DataFrame(
        {
            "text": pd.Series(cells, dtype="str"),
            "objects": pd.Series([*cells[:-1], 5], dtype=object),  # mixed: a number among the text
            "empty": pd.Series([None] * 7, dtype=object),
            "categories": pd.Series(cells, dtype="category"),  # how the coverage table holds its texts
            "both": pd.Series(["=1+2", "'=1+2", "Oslo", "=1+2", None, "Oslo", "x"], dtype="category"),
            "n": range(7),
        }
    ).set_axis([0, 0, 1, 1, 2, 2, 3])  # a repeated index
    out = csvsafe.escape_frame(frame)
    assert out["text"].tolist()[:3] == ["'=1+2", "-74.0060", "Oslo"] and out["text"].tolist()[4:] == [
        "'@x",
        "+3",
        "'-cmd",
    ]
    assert out["objects"].tolist()[-1] == 5 and out["objects"].tolist()[0] == "'=1+2"
    assert out["empty"].isna().all() and out["n"].tolist() == list(range(7))
    cats = out["categories"].tolist()
    assert cats[:3] == ["'=1+2", "-74.0060", "Oslo"] and pd.isna(cats[3]) and cats[4:] == ["'@x", "+3", "'-cmd"]
    # escaping "=1+2" gives a category the column already has: escaped cell by cell instead
    assert out["both"].tolist()[:4] == ["'=1+2", "'=1+2", "Oslo", "'=1+2"] and out["both"].tolist()[5:] == ["Oslo", "x"]
    assert frame["categories"].tolist()[0] == "=1+2"
    assert frame["text"].tolist()[0] == "=1+2"  # the frame given is left as it was
    streamed = io.BytesIO()
    csvsafe.csv_writer(frame, index=False)(streamed)  # what the publisher writes chunk by chunk
    assert streamed.getvalue() == csvsafe.to_csv(frame, index=False).encode() and b"'=1+2" in streamed.getvalue()


@pytest.fixture
def home_with_release(baseline, tmp_path, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(baseline, home)
    monkeypatch.setenv("TALENT_INDEX_HOME", str(home))
    return home


def test_no_command_writes_into_the_releases_or_snapshots(home_with_release, tmp_path):
    home = home_with_release
    rid = (home / "releases" / "LATEST").read_text().strip()
    before = {p: p.read_bytes() for p in (home / "releases").rglob("*") if p.is_file()}
    ranking = tmp_path / "ranking.html"
    ranking.write_bytes(ranking_page(["Paris, France", "Oslo, Norway"]))
    targets = {
        "cities build": (["cities", "build", "--numbeo", str(ranking), "-o"], home / "releases" / rid / "index.csv"),
        "cities build (LATEST)": (["cities", "build", "--numbeo", str(ranking), "-o"], home / "releases" / "LATEST"),
        "curated template": (["curated", "template", "--edition", "2026", "-o"], home / "snapshots" / "c.csv"),
        "uncertainty": (["uncertainty", "--draws", "16", "-o"], home / "releases" / rid / "uncertainty.csv"),
        "report": (["report", "-o"], home / "releases" / rid / "report"),
    }
    for what, (args, target) in targets.items():
        res = runner.invoke(app, [*args, str(target)])
        tree = target.relative_to(home).parts[0]
        assert res.exit_code == 1, (what, res.output)
        assert f"is inside the data home's {tree}/" in " ".join(res.output.split()), (what, res.output)
    review = runner.invoke(
        app,
        [
            "cities",
            "build",
            "--numbeo",
            str(ranking),
            "-o",
            str(tmp_path / "r.csv"),
            "--review",
            str(home / "raw" / "x"),
        ],
    )
    assert review.exit_code == 1 and "--review" in review.output
    after = {p: p.read_bytes() for p in (home / "releases").rglob("*") if p.is_file()}
    assert after == before
    assert runner.invoke(app, ["releases", "verify", rid]).exit_code == 0


def test_namesakes_get_numbeos_own_slugs_and_the_registry_loads(tmp_path):
    """'Halle (Saale), Germany' and 'Halle, Belgium' both print as Halle: the bigger keeps the plain
    slug, the other is Halle-Belgium, and the registry written loads."""
    from tasks.registry.cities import load_registry

    ranking = tmp_path / "ranking.html"
    ranking.write_bytes(ranking_page(["Halle (Saale), Germany", "Halle, Belgium", "Paris, France"]))
    out = tmp_path / "reg.csv"
    res = runner.invoke(app, ["cities", "build", "--numbeo", str(ranking), "-o", str(out)])
    assert res.exit_code == 0, res.output
    reg = load_registry(out).table
    slugs = dict(zip(reg["numbeo_name"], reg["numbeo_slug"], strict=True))
    assert slugs["Halle (Saale), Germany"] == "Halle" and slugs["Halle, Belgium"] == "Halle-Belgium"
    review = pd.read_csv(tmp_path / "reg.review.csv", dtype=str, keep_default_na=False)
    assert "Halle-Belgium" in set(review.loc[review["decision"] == "numbeo-slug", "chosen"])


def test_a_hostile_name_is_inert_in_the_files_and_matched_as_printed(tmp_path):
    from tasks.registry.cities import load_registry

    ranking = tmp_path / "ranking.html"
    ranking.write_bytes(ranking_page(["=Paris, France", "Oslo, Norway"]))
    out = tmp_path / "reg.csv"
    res = runner.invoke(app, ["cities", "build", "--numbeo", str(ranking), "-o", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text()
    assert "'=Paris, France" in text and ",=Paris" not in text  # what a spreadsheet shows as text
    reg = load_registry(out)
    assert reg.match("numbeo_name", "=Paris, France") == "paris"  # matched as Numbeo prints it
    assert reg.get("paris")["numbeo_slug"] == "Paris"  # a slug never starts with a formula character


def test_no_name_matching_says_why_and_where(tmp_path):
    ranking = tmp_path / "ranking.html"
    ranking.write_bytes(ranking_page(["Qqqxyzzy, Atlantis", "Zzzvbnm, Lemuria"]))
    out = tmp_path / "reg.csv"
    res = runner.invoke(app, ["cities", "build", "--numbeo", str(ranking), "-o", str(out)])
    text = " ".join(res.output.split())
    assert res.exit_code == 1
    assert f"{out}: no name of the lists matched a GeoNames city (2 listed, 2 unmatched): nothing written" in text
    assert ".tmp" not in text and not out.exists()
    review = pd.read_csv(tmp_path / "reg.review.csv", dtype=str, keep_default_na=False)
    assert len(review) == 2 and set(review["decision"]) <= {"unmatched", "unknown-country"}
    json.dumps(review.to_dict())  # the review explains every name


def test_categorical_columns_are_written_in_blocks_as_the_same_text(monkeypatch):
    """A frame holding its texts as categories (the coverage table) is written block by block as
    texts: the bytes of the same frame held as texts, header once, formulas escaped."""
    monkeypatch.setattr(csvsafe, "WRITE_ROWS", 3)
    texts = pd.DataFrame(
        {"city": ["oslo", "=cmd", "paris", None, "oslo", "lima", "oslo"], "v": [1.5, 2.0, None, 4.25, 5.0, 6.0, 7.0]}
    ).astype({"city": "str"})
    held = texts.astype({"city": "category"})
    streamed = io.BytesIO()
    csvsafe.csv_writer(held, index=False, float_format="%.2f")(streamed)
    assert streamed.getvalue() == csvsafe.to_csv(texts, index=False, float_format="%.2f").encode()
    assert streamed.getvalue().decode().splitlines() == [
        "city,v",
        "oslo,1.50",
        "'=cmd,2.00",
        "paris,",
        ",4.25",
        "oslo,5.00",
        "lima,6.00",
        "oslo,7.00",
    ]


@pytest.mark.parametrize("rows_at_a_time", [2, 100_000])
def test_a_frame_of_texts_numbers_and_categories_is_written_as_pandas_writes_it(monkeypatch, rows_at_a_time):
    """The coverage table's writer (`csv.writer` on the cells, block by block) gives the bytes of
    `DataFrame.to_csv`: quotes, commas, line breaks, missing cells, float spellings, booleans,
    and a column pandas alone writes (nullable integers) sending the frame back to pandas."""
    monkeypatch.setattr(csvsafe, "WRITE_ROWS", rows_at_a_time)
    texts = ['say "hi"', "a,b", "two\nlines", None, "Zürich", "", "=cmd", " pad "]
    frame = pd.DataFrame(
        {
            "held": pd.Series(texts, dtype="category"),
            "str": pd.Series(texts, dtype="str"),
            "objects": pd.Series(texts, dtype=object),
            "x": [1e-7, 1e20, -0.0, float("inf"), None, 0.1 + 0.2, 123456789.125, -5.0],
            "flag": [True, False] * 4,
            "n": range(8),
        }
    )
    expected = csvsafe.escape_frame(frame).to_csv(index=False).encode()
    streamed = io.BytesIO()
    csvsafe.csv_writer(frame, index=False)(streamed)
    assert streamed.getvalue() == expected
    assert streamed.getvalue().splitlines()[1] == b'"say ""hi""","say ""hi""","say ""hi""",1e-07,True,0'
    nullable = frame.assign(n=pd.array([1, None] * 4, dtype="Int64"))
    streamed = io.BytesIO()
    csvsafe.csv_writer(nullable, index=False)(streamed)
    assert streamed.getvalue() == csvsafe.escape_frame(nullable).to_csv(index=False).encode()
    assert streamed.getvalue().splitlines()[2].endswith(b",False,")
    empty = io.BytesIO()
    csvsafe.csv_writer(frame.iloc[:0], index=False)(empty)
    assert empty.getvalue() == b"held,str,objects,x,flag,n\n"
