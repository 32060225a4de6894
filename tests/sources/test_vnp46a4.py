"""Black Marble VNP46A4 HDF5 tiles: generated tiles with known sums, across a tile edge."""

import io
import json

import h5py
import numpy as np
import pandas as pd
import pytest

from tasks.errors import SourceError
from tasks.registry.cities import Registry
from tasks.sources import night_lights as nl

from .raster_helpers import centres_inside, tile_bytes, write_vnp46a4_recordings

N = 240  # pixels per tile side in the tests (real tiles: 2400); resolution = 10 deg / N


def centres_in(geom, tile, shape=(N, N)):
    west, north = nl.tile_origin(tile)
    return centres_inside(geom, west, north, 10.0 / shape[1], shape)


def test_tile_names():
    assert nl.tiles_for_bbox(116.1, 39.6, 116.7, 39.95) == ["h29v05"]
    assert nl.tiles_for_bbox(116.1, 39.6, 116.7, 40.2) == ["h29v04", "h29v05"]  # Beijing's circle crosses 40 N
    assert nl.tiles_for_bbox(-0.4, 51.3, 0.2, 51.7) == ["h17v03", "h18v03"]  # London spans the meridian
    assert nl.tile_origin("h29v05") == (110.0, 40.0)


def test_city_across_a_tile_edge_sums_exactly_with_masks():
    rng = np.random.default_rng(1)
    # a "city" at lon 10.0 (the edge between h19 and h20), lat 45.03 (tile v04)
    lon, lat, radius = 10.013, 45.031, 40.0
    geom = nl.circle(lon, lat, radius)
    tiles, expected, masked = {}, 0.0, 0
    for tile in ("h18v04", "h19v04"):
        rad = rng.integers(0, 2000, size=(N, N)).astype("uint16")
        qual = np.zeros((N, N), dtype="uint8")
        qual[::7, ::5] = 1  # poor quality: masked
        qual[::11, ::3] = 2  # gap-filled: accepted
        rad[::13, ::13] = nl.VNP46A4_FILL
        qual[::13, ::13] = 255
        tiles[tile] = tile_bytes(rad, qual)
    assert sorted(nl.tiles_for_bbox(*nl._bbox(geom))) == ["h18v04", "h19v04"]  # west and east of 10 E
    for tile, body in tiles.items():
        with h5py.File(io.BytesIO(body)) as h5:
            rad = h5[nl.VNP46A4_LAYER][:].astype("float64")
            q = h5[nl.VNP46A4_QUALITY][:]
        inside = centres_in(geom, tile)
        ok = inside & (rad != 65535) & np.isin(q, [0, 2])
        expected += rad[ok].sum() * 0.1
        masked += (inside & ~ok).sum()
    stats = nl.vnp46a4_zonal(tiles, geom, (0, 2))
    assert stats["sum"] == pytest.approx(expected, rel=1e-12)
    assert stats["pixels_masked"] == masked > 0
    assert stats["pixels_valid"] + stats["pixels_masked"] == stats["pixels_in_boundary"]
    only_good = nl.vnp46a4_zonal(tiles, geom, (0,))
    assert only_good["pixels_valid"] < stats["pixels_valid"]


def test_missing_tile_and_wrong_file_are_clear_errors():
    geom = nl.circle(116.4, 35.0, 20)
    with pytest.raises(SourceError, match="tile h29v05 is needed"):
        nl.vnp46a4_zonal({}, geom)
    with pytest.raises(SourceError, match="expected a VNP46A4 HDF5 tile"):
        nl.vnp46a4_zonal({"h29v05": b"not hdf5"}, geom)


def test_vnp46a4_mode_through_the_subflow_core(tmp_path, data_home, monkeypatch, registry):
    """Offline replay of a listing and generated tiles for three cities, via the same plan/parse/tidy."""
    from tasks.ingest.core import fetch_and_parse, tidy_source
    from tasks.sources import load_sources_config

    small = Registry(registry.table.loc[["beijing", "tianjin", "london"]])
    cfg = {**load_sources_config()["night_lights"], "format": "vnp46a4"}
    rec = tmp_path / "rec"
    write_vnp46a4_recordings(rec, small, cfg)
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(rec))
    fetched = fetch_and_parse("night_lights", cfg, "offline", small)
    tidy, extras = tidy_source("night_lights", cfg, small, fetched)
    stats = extras["zonal_stats"].set_index("city_id")
    assert set(stats["tiles"]["london"].split(";")) == {"h17v03", "h18v03"}
    for cid in ["beijing", "tianjin", "london"]:
        assert tidy.set_index("city_id").loc[cid, "value"] == pytest.approx(stats.loc[cid, "pixels_valid"] * 1.0)
    assert (stats["pixels_valid"] > 0).all()


def test_tile_by_tile_equals_city_by_city(tmp_path, registry):
    """The per-tile split (what runs on Dask) gives exactly the per-city sums, whatever order the
    tiles finish in."""
    rng = np.random.default_rng(7)
    small = Registry(registry.table.loc[["beijing", "tianjin", "london", "paris"]])
    needed = sorted({t for ts in nl.city_tiles(small).values() for t in ts})
    paths = {}
    for t in needed:
        rad = rng.integers(0, 3000, size=(N, N))
        qual = rng.choice([0, 1, 2, 255], size=(N, N), p=[0.7, 0.1, 0.15, 0.05])
        paths[t] = tmp_path / f"{t}.h5"
        paths[t].write_bytes(tile_bytes(rad, qual))
    done = {
        nl.Request("vnp46a4-tile", f"u/{t}", meta={"tile": t}): pd.DataFrame([{"tile": t, "path": str(p)}])
        for t, p in paths.items()
    }
    jobs = nl.tile_jobs({"edition": "2020"}, small, done)
    assert [j["tile"] for j in jobs] == needed and len(needed) >= 4  # London spans h17/h18, Beijing v04/v05
    partials = [p for job in reversed(jobs) for p in nl.tile_partials(**job)]
    by_city = {r["city_id"]: r for r in nl.combine_partials({"edition": "2020"}, small, partials).values()}
    for cid in small.ids:
        c = small.get(cid)
        expected = nl.vnp46a4_zonal(
            {t: str(p) for t, p in paths.items()}, nl.circle(c["lon"], c["lat"], c["boundary_radius_km"]), (0, 2)
        )
        got = {k: by_city[cid][k] for k in expected}
        assert got == expected, cid
        assert expected["pixels_valid"] > 0


def _name(year, tile, version="002", produced="2025125000000"):
    return f"VNP46A4.A{year}001.{tile}.{version}.{produced}.h5"


def test_listing_two_files_for_one_tile_keeps_the_newest_production_and_names_the_other():
    body = json.dumps(
        {
            "content": [
                {"name": _name(2024, "h29v05", produced="2025010000000")},
                {"name": _name(2024, "h29v05", produced="2025300000000")},
                {"name": _name(2024, "h29v04")},
                {"name": "VNP46A4.A2024001.h29v04.002.2025125000000.h5.met"},
            ]
        }
    ).encode()
    files = nl.parse_listing(body, "listing", "002")
    assert files.loc["h29v05", "name"] == _name(2024, "h29v05", produced="2025300000000")
    assert files.loc["h29v05", "superseded"] == _name(2024, "h29v05", produced="2025010000000")
    assert files.loc["h29v04", "superseded"] == "" and len(files) == 2


def test_listing_of_another_collection_or_not_json_is_an_error_and_an_empty_one_is_no_year():
    old = json.dumps({"content": [{"name": _name(2024, "h29v05", version="001")}]}).encode()
    with pytest.raises(
        SourceError,
        match=r"expected VNP46A4 .h5 files named .*\.002\..* found none \(found collection versions \['001'\]\)",
    ):
        nl.parse_listing(old, "listing", "002")
    with pytest.raises(SourceError, match="expected a JSON directory listing, found an HTML page"):
        nl.parse_listing(b"<html><title>Earthdata Login</title></html>", "listing", "002")
    assert nl.parse_listing(b'{"content": []}', "listing", "002").empty


def test_the_plan_tries_v2_then_the_archive_then_older_years(registry):
    from tasks.sources import load_sources_raw, resolve_source

    small = Registry(registry.table.loc[["beijing"]])
    cfg = resolve_source("night_lights", load_sources_raw()["night_lights"], "2026", mode="online")
    assert nl.composite_years(cfg) == ["2025", "2024", "2023"]
    done: dict = {}
    asked = []
    for _ in range(4):  # 2025: v2 404, archive 404; 2024: v2 empty, archive listed
        (req,) = nl.plan(cfg, small, done)
        asked.append(req.url.replace("https://ladsweb.modaps.eosdis.nasa.gov/", ""))
        done[req] = None if len(asked) < 3 else pd.DataFrame() if len(asked) == 3 else None
    assert asked == [
        "api/v2/content/details/allData/5200/VNP46A4/2025/001",
        "archive/allData/5200/VNP46A4/2025/001.json",
        "api/v2/content/details/allData/5200/VNP46A4/2024/001",
        "archive/allData/5200/VNP46A4/2024/001.json",
    ]
    listed = nl.parse_listing(
        json.dumps({"content": [{"name": _name(2024, "h29v04")}, {"name": _name(2024, "h29v05")}]}).encode(), "l", "002"
    )
    done[req] = listed
    tiles = nl.plan(cfg, small, done)
    assert [t.url for t in tiles] == [
        f"https://ladsweb.modaps.eosdis.nasa.gov/archive/allData/5200/VNP46A4/2024/001/{_name(2024, t)}"
        for t in ("h29v04", "h29v05")
    ]
    parsed = {**done, **{t: pd.DataFrame() for t in tiles}}
    assert nl.SPEC.found_vintage(cfg, parsed) == "2024"  # a vintage fallback: the policy expects 2025
    for req in list(done):
        done[req] = None
    with pytest.raises(
        SourceError, match=r"no VNP46A4 composite listed for 2025, 2024, 2023 \(each listing answered 404"
    ):
        nl.plan(cfg, small, {**done, **{r: None for y in ("2023",) for r in nl.listing_requests(cfg, y)}})


def test_a_tile_whose_product_changed_or_an_html_answer_is_refused(registry):
    rad, qual = np.full((N, N), 10), np.zeros((N, N))
    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        d = h5.create_dataset(nl.VNP46A4_LAYER, data=rad.astype("uint16"))
        d.attrs["scale_factor"] = 0.01
        h5.create_dataset(nl.VNP46A4_QUALITY, data=qual.astype("uint8"))
    with pytest.raises(SourceError, match=r"tile h29v05: the layer states scale_factor 0.01, the reader assumes 0.1"):
        nl.vnp46a4_zonal({"h29v05": buf.getvalue()}, nl.circle(116.4, 35.0, 20))
    underscored = io.BytesIO()  # the group as GDAL names it ("Data_Fields") is read as well
    with h5py.File(underscored, "w") as h5:
        h5.create_dataset(nl.VNP46A4_LAYER.replace("Data Fields", "Data_Fields"), data=rad.astype("uint16"))
        h5.create_dataset(nl.VNP46A4_QUALITY.replace("Data Fields", "Data_Fields"), data=qual.astype("uint8"))
    stats = nl.vnp46a4_zonal({"h29v05": underscored.getvalue()}, nl.circle(116.4, 35.0, 20))
    assert stats["sum"] == pytest.approx(stats["pixels_valid"] * 1.0) and stats["pixels_valid"] > 0
    req = nl.Request("vnp46a4-tile", "https://x/t.h5", meta={"tile": "h29v05"})
    with pytest.raises(
        SourceError,
        match=r"\[source night_lights, https://x/t.h5, field h29v05\] Earthdata token missing, expired or licence "
        r"not accepted \(EARTHDATA_TOKEN\): the tile download answered an HTML page",
    ):
        nl.parse(req, b"<!DOCTYPE html><html><title>Earthdata Login</title></html>", registry)
