"""Night-light zonal sums on generated rasters with known sums."""

from typing import cast

import numpy as np
import pytest
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from tasks.sources import night_lights

from .raster_helpers import centres_inside

RES = 15 / 3600


def geotiff(data, west, north, nodata=None):
    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(west, north, RES, RES),
        "nodata": nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as ds:
            ds.write(data.astype("float32"), 1)
        return mem.read()


def _expected_mask(shape, west, north, lon, lat, radius_km):
    return centres_inside(night_lights.circle(lon, lat, radius_km), west, north, RES, shape)


def test_constant_raster_sum_equals_pixel_count():
    data = np.ones((200, 200))
    west, north, lon, lat = 10.0, 50.0, 10.0 + 100.37 * RES, 50.0 - 99.71 * RES
    body = geotiff(data, west, north)
    stats = night_lights.zonal_stats(body, night_lights.circle(lon, lat, 5.0), "test")
    expected = _expected_mask(data.shape, west, north, lon, lat, 5.0).sum()
    assert stats["pixels_in_boundary"] == expected
    assert stats["sum"] == expected and stats["mean"] == 1.0


def test_fill_nodata_and_negative_values_are_masked():
    rng = np.random.default_rng(5)
    data = np.round(rng.uniform(0, 50, size=(120, 120)), 1)
    west, north, lon, lat = 100.0, 30.0, 100.0 + 60.23 * RES, 30.0 - 59.61 * RES
    mask = _expected_mask(data.shape, west, north, lon, lat, 3.0)
    data[58:62, 58:62] = 65535  # VNP46 fill value
    data[40, 60] = -999  # nodata
    data[70, 60] = -1.5  # negative radiance is invalid
    body = geotiff(data, west, north, nodata=-999)
    stats = night_lights.zonal_stats(body, night_lights.circle(lon, lat, 3.0), "test")
    valid = mask & (data >= 0) & (data != 65535)
    assert stats["sum"] == pytest.approx(float(data.astype("float32").astype("float64")[valid].sum()), rel=1e-12)
    assert stats["pixels_valid"] == valid.sum()
    assert stats["pixels_masked"] == (mask & ~valid).sum() > 0


def test_boundary_partly_outside_the_raster():
    data = np.full((100, 100), 2.0)
    west, north = 0.0, 10.0
    lon, lat = west + 2.31 * RES, north - 50.17 * RES  # centre near the western edge
    stats = night_lights.zonal_stats(geotiff(data, west, north), night_lights.circle(lon, lat, 2.0), "test")
    full = _expected_mask((100, 300), west - 200 * RES, north, lon, lat, 2.0)
    within = full[:, 200:].sum()
    assert stats["pixels_in_boundary"] == within < full.sum()
    assert stats["sum"] == 2.0 * within


def record_clips(registry, tmp_path, monkeypatch, value=lambda n: 2.0) -> dict:
    """`format: vnl-clip` recordings: one generated GeoTIFF per city around its centre, the n-th
    city's cells `value(n)`; the night-light configuration that reads them."""
    import json

    from tasks.sources import load_sources_config

    cfg = {**load_sources_config()["night_lights"], "format": "vnl-clip"}
    rec = tmp_path / "rec" / "2020"
    (rec / "night_lights").mkdir(parents=True)
    index = {}
    for n, cid in enumerate(registry.ids):
        c = registry.get(cid)
        body = geotiff(np.full((240, 240), value(n)), c["lon"] - 120 * RES, c["lat"] + 120 * RES)
        (rec / "night_lights" / f"{cid}.tif").write_bytes(body)
        url = cfg["clip_url_template"].format(year=cfg["composite_year"], city_id=cid)
        index[url] = {"source": "night_lights", "file": f"night_lights/{cid}.tif", "status": 200, "headers": {}}
    (rec / "index.json").write_text(json.dumps(index))
    monkeypatch.setenv("TALENT_INDEX_RECORDINGS", str(tmp_path / "rec"))
    return cfg


def test_recorded_clips_parse_for_every_city(registry, tmp_path, monkeypatch, data_home):
    """`format: vnl-clip`, replayed: one generated GeoTIFF per city around its centre (value 2.0)."""
    from tasks.ingest.core import fetch_and_parse, tidy_source

    cfg = record_clips(registry, tmp_path, monkeypatch)
    fetched = fetch_and_parse("night_lights", cfg, "offline", registry)
    tidy, extras = tidy_source("night_lights", cfg, registry, fetched)
    stats = extras["zonal_stats"].set_index("city_id")
    assert len(tidy) == 30 and (tidy["value"] == 2.0 * stats["pixels_valid"].reindex(tidy["city_id"]).to_numpy()).all()
    assert (stats["pixels_valid"] > 100).all()
    assert (extras["zonal_stats"]["boundary_version"] == night_lights.BOUNDARY_VERSION).all()


def test_clips_parsed_by_worker_processes_give_the_same_records_in_order(registry, tmp_path, monkeypatch, data_home):
    """TALENT_INDEX_PARSE_WORKERS=2: the clips after the first are parsed in two worker processes;
    the records, their order and the raw list are what parsing in process gives. A clip a worker
    cannot read stops the source naming its city and URL."""
    from tasks.errors import SourceError
    from tasks.ingest import core
    from tasks.ingest.core import fetch_and_parse

    handed_over = []

    class Counting(core.ParsePool):
        def submit(self, req, body):
            handed_over.append(req.city_id)
            super().submit(req, body)

    monkeypatch.setattr(core, "ParsePool", Counting)
    cfg = record_clips(registry, tmp_path, monkeypatch, value=lambda n: 1.0 + n)
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "0")
    alone = fetch_and_parse("night_lights", cfg, "offline", registry)
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "2")
    pooled = fetch_and_parse("night_lights", cfg, "offline", registry)
    assert handed_over == registry.ids[1:]  # the first clip is parsed in process, before any worker
    assert [r.city_id for r in pooled.parsed] == registry.ids == [r.city_id for r in alone.parsed]
    assert list(pooled.parsed.values()) == list(alone.parsed.values())
    first, *_, last = (cast(dict, v) for v in pooled.parsed.values())
    assert first["sum"] == 1.0 * first["pixels_valid"] and last["sum"] == 30.0 * last["pixels_valid"] > 0
    assert [{k: v for k, v in r.items() if k != "fetched_at"} for r in pooled.raws] == [
        {k: v for k, v in r.items() if k != "fetched_at"} for r in alone.raws
    ]

    broken = registry.ids[17]
    (tmp_path / "rec" / "2020" / "night_lights" / f"{broken}.tif").write_bytes(b"not a GeoTIFF")
    with pytest.raises(SourceError) as err:
        fetch_and_parse("night_lights", cfg, "offline", registry)
    assert err.value.city == broken and str(err.value.location).endswith(f"/{broken}.tif")
    assert "expected a GeoTIFF raster" in str(err.value) and "\n" not in str(err.value)


def test_workers_started_before_the_round_parse_every_round_until_stopped(registry, tmp_path, monkeypatch, data_home):
    """`start_workers` (a refresh calls it before its first source): the rounds after it hand their
    clips to those processes, start none of their own, and get what parsing in process gives, a
    smaller registry in the second round included; a clip they cannot read is named as before;
    `stop_workers` ends the processes."""
    from dataclasses import replace

    from tasks.errors import SourceError
    from tasks.ingest import parse_pool
    from tasks.ingest.core import fetch_and_parse

    cfg = record_clips(registry, tmp_path, monkeypatch, value=lambda n: 1.0 + n)
    fewer = replace(registry, table=registry.table.iloc[:12])
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "0")
    alone = [fetch_and_parse("night_lights", cfg, "offline", r) for r in (registry, fewer)]
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "2")
    parse_pool.start_workers(2, [("night_lights", cfg)])
    try:
        started = parse_pool._STARTED[2]
        own: list[tuple] = []

        def own_executor(*args, **kwargs):
            own.append(args)
            return started

        monkeypatch.setattr(parse_pool, "_executor", own_executor)
        pooled = [fetch_and_parse("night_lights", cfg, "offline", r) for r in (registry, fewer)]
        processes = list(started._processes.values())
        assert own == [] and len(processes) == 2 and all(p.is_alive() for p in processes)
        for got, expected in zip(pooled, alone, strict=True):
            assert list(got.parsed) == list(expected.parsed) and list(got.parsed.values()) == list(
                expected.parsed.values()
            )
        assert len(pooled[1].parsed) == 12 and cast(dict, pooled[1].parsed[list(pooled[1].parsed)[-1]])["sum"] > 0

        broken = registry.ids[9]
        (tmp_path / "rec" / "2020" / "night_lights" / f"{broken}.tif").write_bytes(b"not a GeoTIFF")
        with pytest.raises(SourceError) as err:
            fetch_and_parse("night_lights", cfg, "offline", registry)
        assert err.value.city == broken and "expected a GeoTIFF raster" in str(err.value)
        assert parse_pool._STARTED.get(2) is started and own == []  # a source's error leaves them working
    finally:
        parse_pool.stop_workers()
    assert parse_pool._STARTED == {} and not any(p.is_alive() for p in processes)


def test_started_workers_that_died_stop_the_round_with_a_clear_error_then_give_way(
    registry, tmp_path, monkeypatch, data_home
):
    """A started worker killed before the round (out of memory, say): the round stops naming the
    source, its pages and the setting that avoids workers; the broken workers are dropped, so the
    next round starts its own and parses. A warm-up that cannot set up a source (an unknown one
    here) breaks nothing."""
    from tasks.errors import PipelineError
    from tasks.ingest import parse_pool
    from tasks.ingest.core import fetch_and_parse

    cfg = record_clips(registry, tmp_path, monkeypatch, value=lambda n: 1.0 + n)
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "0")
    alone = fetch_and_parse("night_lights", cfg, "offline", registry)
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "2")
    parse_pool.start_workers(2, [("no_such_source", {}), ("night_lights", cfg)])
    try:
        started = parse_pool._STARTED[2]
        started.submit(parse_pool._noop).result(timeout=60)  # the warm-up ran and the workers serve
        for process in list(started._processes.values()):
            process.kill()  # SIGKILL
            process.join(timeout=30)
        with pytest.raises(PipelineError) as err:
            fetch_and_parse("night_lights", cfg, "offline", registry)
        message = str(err.value)
        assert message.startswith("[source night_lights] a worker process parsing its pages (")
        assert "ended abruptly" in message and "TALENT_INDEX_PARSE_WORKERS=0" in message and "\n" not in message
        assert parse_pool._STARTED == {}
        again = fetch_and_parse("night_lights", cfg, "offline", registry)
        assert list(again.parsed.items()) == list(alone.parsed.items()) and len(again.parsed) == 30
    finally:
        parse_pool.stop_workers()


def test_a_refresh_starts_workers_for_the_pages_per_city_they_parse(registry, monkeypatch):
    """The refresh starts workers for the night-light clips (`format: vnl-clip`) and Numbeo's city
    pages, not for a source without pages per city (night lights with `format: none`, Numbeo's
    API), none online (0 workers) and none for a source on Dask."""
    from flows import refresh
    from tasks.sources import all_sources, load_sources_config

    calls = []
    monkeypatch.setattr(refresh, "start_workers", lambda n, setups: calls.append((n, [s for s, _ in setups])))
    monkeypatch.setenv("TALENT_INDEX_PARSE_WORKERS", "2")
    specs, cfgs = all_sources(), load_sources_config()
    clips = {**cfgs, "night_lights": {**cfgs["night_lights"], "format": "vnl-clip"}}
    none = {**cfgs, "night_lights": {**cfgs["night_lights"], "format": "none"}}
    api = {**none, "numbeo": {**cfgs["numbeo"], "api": {"enabled": True}}}
    refresh._start_parse_workers(specs, clips, "offline", None)
    refresh._start_parse_workers(specs, none, "offline", None)
    refresh._start_parse_workers(specs, api, "offline", None)
    refresh._start_parse_workers(specs, clips, "online", None)
    refresh._start_parse_workers(specs, clips, "offline", "tcp://127.0.0.1:8786")
    assert calls == [
        (2, ["numbeo", "night_lights"]),
        (2, ["numbeo"]),
        (0, ["numbeo", "night_lights"]),
        (2, ["numbeo"]),
    ]


def test_the_sample_reads_no_composite_every_city_missing(registry):
    from tasks.ingest.core import check_vintage, fetch_and_parse, tidy_source
    from tasks.sources import load_sources_config, source_spec

    cfg = load_sources_config(edition="2020")["night_lights"]
    fetched = fetch_and_parse("night_lights", cfg, "offline", registry)
    assert fetched.parsed == {} and fetched.requests_made == 0
    tidy, _ = tidy_source("night_lights", cfg, registry, fetched)
    assert len(tidy) == 30 and tidy["value"].isna().all() and set(tidy["status"]) == {"missing"}
    assert check_vintage("night_lights", cfg, fetched)["notes"][0].startswith(
        "no night-light composite read (format none"
    )
    assert source_spec("night_lights").suites_for(cfg) == ()


def test_many_polygons_in_block_order_give_each_polygon_its_own_sums(tmp_path):
    """zonal_stats_many visits polygons in block order but returns them in input order, each with the
    sum of the cell centres inside it (checked against the independent ray-casting mask)."""
    import rasterio

    rng = np.random.default_rng(5)
    data = rng.gamma(0.8, 5.0, (600, 700)).astype("float32")
    west, north = 100.0, 40.0
    path = tmp_path / "tiled.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=700,
        height=600,
        count=1,
        dtype="float32",
        crs="EPSG:4326",
        transform=from_origin(west, north, RES, RES),
        tiled=True,
        blockxsize=128,
        blockysize=128,
        compress="deflate",
    ) as ds:
        ds.write(data, 1)
    centres = [(100.2, 39.4), (102.7, 39.9), (100.9, 39.8), (102.2, 39.45), (101.5, 39.6)]  # not in block order
    geoms = [night_lights.circle(lon, lat, 6.0) for lon, lat in centres]
    with rasterio.open(path) as ds:
        got = night_lights.zonal_stats_many(ds, geoms)
    for (lon, lat), stats in zip(centres, got, strict=True):
        mask = _expected_mask(data.shape, west, north, lon, lat, 6.0)
        assert stats["pixels_in_boundary"] == mask.sum() > 0
        assert stats["sum"] == pytest.approx(float(data[mask].astype("float64").sum()), rel=1e-9)


def test_the_numpy_mask_is_the_cells_gdal_rasterize_burns():
    """`inside_mask` against rasterio's geometry_mask (GDAL rasterize, cell centres) on random
    circles of 5 to 64 vertices, resolutions and windows, partly outside included."""
    from rasterio.features import geometry_mask
    from rasterio.transform import from_origin

    from tasks.sources.night_lights import circle, inside_mask

    rng = np.random.default_rng(7)
    inside_cells = 0
    for _ in range(400):
        lat, lon = rng.uniform(-70, 70), rng.uniform(-179, 179)
        geometry = circle(lon, lat, rng.uniform(0.5, 60), vertices=int(rng.choice([5, 16, 64])))
        res = float(rng.choice([15 / 3600, 0.003, 0.01, 0.05]))
        transform = from_origin(lon - rng.uniform(0.01, 1.0), lat + rng.uniform(0.01, 1.0), res, res)
        shape = (int(rng.integers(1, 150)), int(rng.integers(1, 150)))
        gdal = ~geometry_mask([geometry], out_shape=shape, transform=transform, all_touched=False)
        assert np.array_equal(inside_mask(geometry, shape, transform), gdal)
        inside_cells += int(gdal.sum())
    assert inside_cells > 100_000  # the shapes do cover cells
