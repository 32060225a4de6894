"""The report's charts as SVG: well-formed, the marks where the data puts them."""

import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd

from tasks.report import charts

SVG = "{http://www.w3.org/2000/svg}"


def points(el) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in el.attrib["points"].split()])


def test_nice_ticks():
    assert charts.nice_ticks(0, 83.2) == [0, 20, 40, 60, 80]
    assert charts.nice_ticks(45, 100) == [50, 60, 70, 80, 90, 100]
    assert charts.nice_ticks(0.3, 0.87, 5) == [0.4, 0.6, 0.8]
    assert charts.nice_ticks(1, 1) == [1]


def test_radar_puts_rank_one_on_the_outer_ring_and_the_last_next_to_the_centre():
    ranks = pd.DataFrame(
        [[1] * 6, [30] * 6, [1, 30, 1, 30, 1, 30]],
        index=["Best", "Last", "Mixed <&>"],
        columns=list("abcdef"),
    )
    root = ET.fromstring(charts.radar(ranks, ["Ec", "In", "Op", "Eco", "We", "Af"], "Ranks", 30))
    polygons = root.findall(f"{SVG}polygon")
    # per city: 4 rings, the filled shape and its outline
    assert len(polygons) == 3 * 6
    outer_ring, best_fill = polygons[3], polygons[4]
    assert np.allclose(points(best_fill), points(outer_ring))
    ring = points(polygons[9])  # Last's outer ring
    centre = ring.mean(axis=0)
    radius = np.linalg.norm(ring - centre, axis=1)
    last = np.linalg.norm(points(polygons[10]) - centre, axis=1)
    assert np.allclose(last, radius / 30, atol=0.1)  # rank 30 of 30: 1/30 of the way out
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "Mixed <&>" in texts and texts.count("30") == 6 + 3  # escaped name; Last's six ranks, Mixed's three


def test_rank_intervals_put_rank_one_on_the_right():
    unc = pd.DataFrame(
        {
            "nominal_rank": [1, 2, 3],
            "median_rank": [1.0, 2.5, 2.5],
            "p05_rank": [1.0, 1.0, 2.0],
            "p95_rank": [2.0, 3.0, 3.0],
        },
        index=["A", "B", "C"],
    )
    root = ET.fromstring(charts.rank_intervals(unc))
    dots = [float(c.attrib["cx"]) for c in root.findall(f"{SVG}circle")]
    assert dots[0] > dots[1] == dots[2]  # medians 1, 2.5, 2.5: the best furthest right


def test_bump_breaks_a_line_where_a_city_has_no_rank():
    history = pd.DataFrame(
        {
            "edition": ["2018", "2019", "2020"] * 2,
            "city_id": ["a"] * 3 + ["b"] * 3,
            "rank_international": [2, np.nan, 1, 1, 2, 2],
        }
    )
    svg = charts.bump(history, {"a": "Alpha", "b": "Beta"}, "Ranks").decode()
    ET.fromstring(svg)
    # a: no 2019 rank, so no line, two markers; b: one line through three editions
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 5
    assert re.search(r">Alpha 2</text>", svg) and re.search(r">1 Alpha</text>", svg) and ">2 Beta</text>" in svg


def test_a_missing_rank_is_left_out_not_written_as_nan():
    ranks = pd.DataFrame([[1.0, np.nan, 3.0]], index=["Gap"], columns=list("abc"))
    unc = pd.DataFrame(
        {"nominal_rank": [1, 2], "median_rank": [1.0, np.nan], "p05_rank": [1.0, np.nan], "p95_rank": [2.0, np.nan]},
        index=["A", "B"],
    )
    for svg in (charts.radar(ranks, ["x", "y", "z"], "Ranks", 3), charts.rank_intervals(unc)):
        ET.fromstring(svg)
        assert b"nan" not in svg.lower()
    root = ET.fromstring(charts.rank_intervals(unc))
    assert len(root.findall(f"{SVG}circle")) == 2  # A's median and the legend's dot; B has no median
