"""GaWC tier page and connectivity dataset."""

from pathlib import Path

import pytest

from tasks.errors import SourceError
from tasks.sources import gawc


def test_tier_page(recordings, registry):
    df = gawc.parse_tiers((recordings / "2020/gawc/world2020t.html").read_bytes(), "world2020t.html", registry)
    assert df.columns.tolist() == ["tier", "city", "city_id"]
    t = df.dropna(subset=["city_id"]).set_index("city_id")["tier"]
    assert len(t) == 30
    assert t["london"] == "Alpha++" and t["guangzhou"] == "Alpha-" and t["hangzhou"] == "Beta"
    assert t["new-york"] == "Alpha++"  # the tier page prints "New York", the dataset "New York (New York)"
    assert df[df["city"] == "Dubai"]["city_id"].isna().all()


@pytest.mark.parametrize(
    "text,tier",
    [
        ("Alpha ++", "Alpha++"),
        ("ALPHA\u2212", "Alpha-"),
        ("Beta -", "Beta-"),
        ("High sufficiency", "High Sufficiency"),
        ("Gamma+:", "Gamma+"),
        ("Paris", None),
    ],
)
def test_tier_headings(text, tier):
    assert gawc.tier_of(text) == tier


def test_connectivity_sheet(recordings, registry):
    df = gawc.parse_connectivity((recordings / "2020/gawc/connectivity-2020.xlsx").read_bytes(), "da31.xlsx", registry)
    assert df.columns.tolist() == ["rank", "city", "country", "city_id", "gnc_abs", "gnc_rel"]
    by = df.set_index("city")
    assert by.loc["London", "gnc_rel"] == 100.0 and by.loc["London", "rank"] == 1
    assert by.loc["New York (New York)", "city_id"] == "new-york"
    assert by.loc["Los Angeles(California)", "city_id"] == "los-angeles"
    assert by.loc["Vienna/Wien", "city_id"] == "vienna"
    assert by.loc["Xi'An", "city_id"] == "xian"
    assert by.loc["Washington (DC)", "country"] == "U.S."
    assert len(df) == 33 and df["city_id"].notna().sum() == 30


def test_connectivity_without_header_row_is_an_error():
    with pytest.raises(SourceError, match="header row with 'City'"):
        gawc.parse_connectivity(b"a,b\n1,2\n", "x.csv")


def test_tier_differences_against_the_report(registry):
    import pandas as pd

    meta = pd.DataFrame(
        {
            "city_id": ["guangzhou", "london"],
            "tier": ["Alpha-", "Alpha++"],
            "edition": "2020",
            "report_tier_2020": ["Alpha", "Alpha++"],
        }
    )
    d = gawc.tier_differences(meta)
    assert d.to_dict(orient="records") == [
        {"city_id": "guangzhou", "tier_printed_in_report": "Alpha", "tier_ingested": "Alpha-", "edition": "2020"}
    ]


WORLD_2024 = Path(__file__).resolve().parent.parent / "fixtures" / "gawc" / "world-cities-2024.html"


def test_the_2024_site_tier_headings_followed_by_lists(registry):
    df = gawc.parse_tiers(WORLD_2024.read_bytes(), "world-cities-2024", registry)
    assert df.attrs == {"stated_edition": "2024", "format": "lists"}
    t = df.dropna(subset=["city_id"]).set_index("city_id")["tier"]
    assert len(t) == 30 and t["london"] == "Alpha++" and t["guangzhou"] == "Alpha" and t["berlin"] == "Alpha-"
    assert t["washington-dc"] == "Alpha-" and t["xian"] == "Gamma+"
    assert "Contact" not in set(df["city"]) and "Home" not in set(df["city"])  # menus and footers are no tiers
    assert df.set_index("city").loc["London (Ontario)", "tier"] == "Sufficiency"


def test_an_index_city_under_two_tiers_is_an_error_naming_both(registry):
    page = WORLD_2024.read_text().replace("<li>Xi'an</li>", "<li>Xi'an</li><li>Berlin</li>")
    with pytest.raises(
        SourceError,
        match=r"\[source gawc, p, city berlin, field tier\] Berlin is listed under two tiers \(Alpha- and Gamma\+\)",
    ):
        gawc.parse_tiers(page.encode(), "p", registry)
    again = WORLD_2024.read_text().replace("<li>Zurich</li>", "<li>Zurich</li><li>Zurich</li>")
    assert (gawc.parse_tiers(again.encode(), "p", registry)["city_id"] == "zurich").sum() == 1  # same tier twice: once


def test_editions_2024_on_use_the_2024_tiers_and_the_2020_connectivity_named():
    from tasks.sources import load_sources_raw, resolve_source, source_spec

    raw = load_sources_raw()["gawc"]
    cfg = resolve_source("gawc", raw, "2026")
    assert cfg["tiers_url"] == "https://gawc.lboro.ac.uk/gawc-worlds/the-world-according-to-gawc/world-cities-2024/"
    assert cfg["connectivity_url"].endswith("/da31/da31.xlsx") and cfg["connectivity_edition"] == "2020"
    assert cfg["vintage_policy"]["expected"] == "2024"
    spec = source_spec("gawc")
    assert spec.vintage_notes(cfg, {}) == ["connectivity: GaWC 2020 data set (GaWC 2024 published tiers only)"]
    assert spec.vintage_notes(resolve_source("gawc", raw, "2020"), {}) == []
    assert resolve_source("gawc", raw, "2023")["gawc_edition"] == "2020"  # no 2022 page known
    assert spec.vintage_notes(resolve_source("gawc", raw, "2019"), {}) == [
        "connectivity: none (GaWC 2018 has no connectivity data set configured)"
    ]


@pytest.mark.parametrize(
    "page",
    [
        "2020/gawc/world2020t.html",
        "<html><head><title>GaWC 2020</title><style>p{}</style></head><body><!-- Tokyo -->Alpha++<template>Oslo"
        "<b>Bern</b></template>London<ruby>K<rp>(</rp><rt>kan<i>z</i></rt><rp>)</rp></ruby> Paris &amp; Lyon"
        "<script>var x</script><p> Beta \n</p>Rome<?pi x?>Lima<noscript>Quito</noscript><p>a<p>b<li>c</body>tail",
        "plain text\nAlpha\nOslo",
        "",
    ],
)
def test_page_strings_match_beautifulsoup_s_stripped_strings(page, recordings):
    """The older tier pages are read from the lxml tree: its strings are BeautifulSoup's
    `stripped_strings` once scripts and styles are removed (comments, templates and ruby
    annotations left out as BeautifulSoup leaves them)."""
    from bs4 import BeautifulSoup

    from tasks.sources.base import html_tree, stripped_strings

    body = (recordings / page).read_bytes() if page.endswith(".html") else page.encode()
    doc = BeautifulSoup(body.decode("utf-8"), "lxml")
    for s in doc(["script", "style"]):
        s.decompose()
    ours = list(stripped_strings(html_tree(body, "gawc", "test")))
    assert ours == list(doc.stripped_strings)
    if page.startswith("<html>"):
        assert ours[:4] == ["GaWC 2020", "Alpha++", "London", "K"] and "Tokyo" not in ours and "Oslo" not in ours
    if page.endswith(".html"):
        assert len(ours) == 44 and ours[3:6] == ["Alpha++", "London", "New York"]
