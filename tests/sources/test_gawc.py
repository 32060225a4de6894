"""GaWC tier page and connectivity dataset."""

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
