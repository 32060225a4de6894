"""Night-time lights: sum and mean radiance inside each city's boundary (indicator `night_lights`).

Offline, the sample replays one small GeoTIFF clip per city (VNL-style float32 radiance, nodata set).
Zonal statistics use rasterio masks by cell centre inside a fixed-radius circle around the city
centre (64-vertex polygon); the boundary version and pixel counts go into the snapshot.
"""

from __future__ import annotations

import functools
import io
import json
import math
import re
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from affine import TransformNotInvertibleError
from pydantic import Field

from tasks.errors import SourceError
from tasks.registry.cities import Registry
from tasks.sources.base import TIDY_COLUMNS, EditionError, Request, Source, SuiteSpec, VintagePolicy
from tasks.sources.schema import OwnSettings
from tasks.store.storage import raw_object

SOURCE = "night_lights"
BOUNDARY_VERSION = "circle-64-v1"
FILL_VALUES = (65535.0,)


# The layer the Black Marble user guide (Table 9) and NASA's own client (worldbank/blackmarblepy)
# read from VNP46A4: near-nadir, snow-free composite, uint16 radiance x 0.1 nW/cm2/sr, fill 65535;
# its `_Quality` layer: 0 good, 1 poor (<= 3 observations), 2 gap-filled, 255 fill. HDF5 names the
# group "Data Fields" (GDAL's flattened metadata writes "Data_Fields"; both are looked up).
VNP46A4_LAYER = "HDFEOS/GRIDS/VIIRS_Grid_DNB_2d/Data Fields/NearNadir_Composite_Snow_Free"
VNP46A4_QUALITY = VNP46A4_LAYER + "_Quality"
VNP46A4_GROUPS = ("HDFEOS/GRIDS/VIIRS_Grid_DNB_2d/Data Fields", "HDFEOS/GRIDS/VIIRS_Grid_DNB_2d/Data_Fields")
VNP46A4_FILL = 65535
VNP46A4_SCALE = 0.1
TILE_DEG = 10.0
TOKEN_HINT = "Earthdata token missing, expired or licence not accepted (EARTHDATA_TOKEN)"
# VNP46A4.A2024001.h29v05.002.2025123123456.h5: year, tile, collection version, production time
_FILE_NAME = re.compile(r"^VNP46A4\.A(\d{4})001\.(h\d\dv\d\d)\.(\d{3})\.(\d{13})\.h5$")


def tiles_for_bbox(west: float, south: float, east: float, north: float) -> list[str]:
    """Black Marble tiles (10 x 10 degrees, hXXvYY) a lon/lat box touches."""
    h0, h1 = int((west + 180) // TILE_DEG), int((min(east, 179.9999) + 180) // TILE_DEG)
    v0, v1 = int((90 - north) // TILE_DEG), int((90 - max(south, -89.9999)) // TILE_DEG)
    return [f"h{h:02d}v{v:02d}" for v in range(v0, v1 + 1) for h in range(h0, h1 + 1)]


def tile_origin(tile: str) -> tuple[float, float]:
    """(west, north) of a tile such as 'h29v05'."""
    return -180 + TILE_DEG * int(tile[1:3]), 90 - TILE_DEG * int(tile[4:6])


def city_tiles(registry: Registry) -> dict[str, list[str]]:
    out = {}
    for cid in registry.ids:
        c = registry.get(cid)
        out[cid] = tiles_for_bbox(*_bbox(circle(float(c["lon"]), float(c["lat"]), float(c["boundary_radius_km"]))))
    return out


def composite_year(cfg: dict) -> str:
    """The year of the annual composite this configuration reads (set by the edition policy)."""
    return str(cfg.get("composite_year") or cfg.get("edition"))


def composite_years(cfg: dict) -> list[str]:
    """The composite years a plan looks for, newest first: the policy's year, then up to
    `max_years_back` older ones (using one of those is a vintage fallback)."""
    year = int(composite_year(cfg))
    return [str(year - k) for k in range(int(cfg.get("max_years_back", 0)) + 1)]


def listing_requests(cfg: dict, year: str) -> list[Request]:
    """The listings of one composite year, in the order they are tried (LAADS' v2 details API, then
    the archive's JSON); each may answer 404 (the year is not published yet, or that API is gone)."""
    urls = cfg.get("listing_urls") or [cfg["listing_url"]]
    return [Request("vnp46a4-listing", str(u).format(year=year), meta={"optional": True, "year": year}) for u in urls]


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    """`format: vnl-clip` (the sample: one small GeoTIFF per city) or `format: vnp46a4` (Black
    Marble annual HDF5 tiles from LAADS: the listing of the newest composite year the policy allows
    that LAADS holds, then every tile a city needs)."""
    year = composite_year(cfg)
    if cfg.get("format") == "none":  # no composite read: the methodology's proxy stands in
        return []
    if cfg.get("format", "vnl-clip") == "vnl-clip":
        tmpl = cfg["clip_url_template"]
        return [Request("night-lights-clip", tmpl.format(city_id=cid, year=year), cid) for cid in registry.ids]
    listing = None
    tried = []
    for y in composite_years(cfg):
        for req in listing_requests(cfg, y):
            if req not in done:
                return [req]
            tried.append(req.url)
            if done[req] is not None and len(done[req]):
                listing = req
                break
        if listing is not None:
            break
    if listing is None:
        raise SourceError(
            SOURCE,
            f"no VNP46A4 composite listed for {', '.join(composite_years(cfg))} (each listing answered 404 or "
            f"listed no file): {'; '.join(tried)}",
            location=tried[0],
        )
    files = done[listing]
    needed = sorted({t for ts in city_tiles(registry).values() for t in ts})
    missing = [t for t in needed if t not in files.index]
    if missing:
        raise SourceError(SOURCE, f"the VNP46A4 listing has no file for tiles {missing}", location=listing.url)
    year = listing.meta["year"]
    template = cfg.get("file_url") or listing.url.removesuffix(".json") + "/{name}"
    return [
        Request(
            "vnp46a4-tile",
            str(template).format(year=year, name=files.loc[t, "name"]),
            meta={"tile": t, "year": year, "listing": listing.url},
        )
        for t in needed
    ]


def parse_listing(body: bytes, url: str, version: str | None = None) -> pd.DataFrame:
    """A LAADS listing (v2 details API or archive JSON: a `content` list of entries with `name`) ->
    tile -> file name of the composite. An empty listing (a year not produced yet) is an empty
    table; entries none of which is a VNP46A4 file of collection `version` are an error (a layout
    change). Two files for one tile (a reprocessing): the newest production time is used and the
    other is listed under `superseded`."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        head = body[:200].lstrip()[:1]
        what = "an HTML page" if head == b"<" else "text that is not JSON"
        raise SourceError(SOURCE, f"expected a JSON directory listing, found {what}", location=url) from exc
    entries = doc.get("content", doc) if isinstance(doc, dict) else doc
    if not isinstance(entries, list):
        raise SourceError(SOURCE, "expected a JSON listing with a `content` list of files", location=url)
    rows, versions = [], set()
    for e in entries:
        name = e.get("name", "") if isinstance(e, dict) else str(e)
        m = _FILE_NAME.match(name)
        if not m:
            continue
        versions.add(m.group(3))
        if version is None or m.group(3) == version:
            rows.append({"tile": m.group(2), "name": name, "year": m.group(1), "produced": m.group(4)})
    if entries and not rows:
        found = f" (found collection versions {sorted(versions)})" if versions else ""
        raise SourceError(
            SOURCE,
            f"expected VNP46A4 .h5 files named VNP46A4.AYYYY001.hXXvYY.{version or 'NNN'}.<time>.h5 in the "
            f"listing, found none{found}",
            location=url,
        )
    df = pd.DataFrame(rows, columns=["tile", "name", "year", "produced"]).sort_values(["tile", "produced"])
    newest = df.drop_duplicates("tile", keep="last").set_index("tile")
    older = df[~df["name"].isin(newest["name"])].groupby("tile")["name"].agg(";".join)
    newest["superseded"] = older.reindex(newest.index).fillna("")
    return newest


def _tile_window(h5, tile: str, geometry: dict, accepted_quality) -> dict | None:
    """Partial statistics of one geometry on one open VNP46A4 tile (None if it misses the tile)."""
    from rasterio.transform import from_origin

    west_b, south_b, east_b, north_b = _bbox(geometry)
    rad, qual = h5[VNP46A4_LAYER], h5[VNP46A4_QUALITY]
    n_rows, n_cols = rad.shape
    res = TILE_DEG / n_cols
    west, north = tile_origin(tile)
    c0 = max(0, math.floor((west_b - west) / res))
    c1 = min(n_cols, math.ceil((east_b - west) / res))
    r0 = max(0, math.floor((north - north_b) / res))
    r1 = min(n_rows, math.ceil((north - south_b) / res))
    if c0 >= c1 or r0 >= r1:
        return None
    data = rad[r0:r1, c0:c1].astype("float64")
    q = qual[r0:r1, c0:c1]
    transform = from_origin(west + c0 * res, north - r0 * res, res, res)
    inside = inside_mask(geometry, data.shape, transform)
    bad = (data == VNP46A4_FILL) | ~np.isin(q, list(accepted_quality))
    ok = inside & ~bad
    return {
        "sum": float(data[ok].sum()) * VNP46A4_SCALE,
        "pixels_valid": int(ok.sum()),
        "pixels_in_boundary": int(inside.sum()),
        "pixels_masked": int((inside & bad).sum()),
    }


class _Tile:
    """An open VNP46A4 tile: its radiance and quality layers, wherever the file's group is named."""

    def __init__(self, h5, rad, qual):
        self.h5, self.rad, self.qual = h5, rad, qual

    def __getitem__(self, key):  # the layers by their canonical names
        return self.rad if key == VNP46A4_LAYER else self.qual if key == VNP46A4_QUALITY else self.h5[key]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.h5.close()

    def close(self):
        self.h5.close()


def _open_tile(src, tile: str, location: str, city: str | None = None) -> _Tile:
    """Open a tile and check its radiance layer is what the reader assumes (scale and fill where
    the file states them): a product change fails loudly instead of scaling sums wrongly."""

    import h5py

    layer = VNP46A4_LAYER.rsplit("/", 1)[1]
    try:
        h5 = h5py.File(io.BytesIO(src) if isinstance(src, bytes) else src, "r")
    except OSError as exc:
        raise SourceError(
            SOURCE, f"expected a VNP46A4 HDF5 tile {tile} with layer {layer!r}: {exc}", location=location, city=city
        ) from exc
    group = next((g for g in VNP46A4_GROUPS if g in h5 and layer in h5[g]), None)
    if group is None or f"{layer}_Quality" not in h5[group]:
        h5.close()
        raise SourceError(
            SOURCE,
            f"expected a VNP46A4 HDF5 tile {tile} with layer {layer!r} and its _Quality under one of "
            f"{list(VNP46A4_GROUPS)}",
            location=location,
            city=city,
        )
    rad = h5[group][layer]
    for attr, expected in (("scale_factor", VNP46A4_SCALE), ("_FillValue", VNP46A4_FILL)):
        if attr in rad.attrs:
            stated = float(np.ravel(rad.attrs[attr])[0])
            if not math.isclose(stated, expected, rel_tol=1e-6):
                h5.close()
                raise SourceError(
                    SOURCE,
                    f"tile {tile}: the layer states {attr} {stated:g}, the reader assumes {expected:g} (the product changed)",
                    location=location,
                    city=city,
                    field=layer,
                )
    return _Tile(h5, rad, h5[group][f"{layer}_Quality"])


def _finish(parts: list[dict]) -> dict:
    total = sum(p["sum"] for p in parts)
    valid = sum(p["pixels_valid"] for p in parts)
    return {
        "sum": total,
        "mean": total / valid if valid else np.nan,
        "pixels_valid": valid,
        "pixels_in_boundary": sum(p["pixels_in_boundary"] for p in parts),
        "pixels_masked": sum(p["pixels_masked"] for p in parts),
    }


def vnp46a4_zonal(
    tiles: Mapping[str, bytes | str],
    geometry: dict,
    accepted_quality=(0, 2),
    location: str = "",
    city: str | None = None,
) -> dict:
    """Sum and mean radiance (nW/cm2/sr) inside `geometry` across VNP46A4 tiles (cell centres).

    Reads only the window of each tile the geometry touches; masks the fill value and any quality
    flag not in `accepted_quality` (0 good, 1 poor, 2 gap-filled, 255 fill).
    """
    parts = []
    for tile in tiles_for_bbox(*_bbox(geometry)):
        if tile not in tiles:
            raise SourceError(SOURCE, f"tile {tile} is needed but was not provided", location=location, city=city)
        with _open_tile(tiles[tile], tile, location, city) as h5:
            part = _tile_window(h5, tile, geometry, accepted_quality)
        if part is not None:
            parts.append(part)
    return _finish(parts)


# ----------------------------------------------------------------------------- per-tile work
# The VNP46A4 step is split by tile so it can run in parallel (Prefect task per tile, on Dask when a
# cluster is given): `tile_jobs` says which cities each tile serves, `tile_partials` opens one tile
# once and computes every city's partial sums on it, `combine_partials` adds them up per city.


def tile_jobs(cfg: dict, registry: Registry, done: dict) -> list[dict]:
    """One job per fetched tile: {tile, path, cities: [(city_id, geometry)], accepted_quality}."""
    paths = {df.iloc[0]["tile"]: df.iloc[0]["path"] for r, df in done.items() if r.kind == "vnp46a4-tile"}
    accepted = list(cfg.get("accepted_quality", (0, 2)))
    cities: dict[str, list] = {t: [] for t in paths}
    for cid, ts in city_tiles(registry).items():
        c = registry.get(cid)
        geom = circle(float(c["lon"]), float(c["lat"]), float(c["boundary_radius_km"]))
        for t in ts:
            if t not in paths:
                raise SourceError(
                    SOURCE, f"tile {t} is needed but was not provided", location="VNP46A4 tiles", city=cid
                )
            cities[t].append((cid, geom))
    return [
        {"tile": t, "path": paths[t], "cities": cities[t], "accepted_quality": accepted}
        for t in sorted(paths)
        if cities[t]
    ]


def tile_partials(tile: str, path: str, cities: list, accepted_quality) -> list[dict]:
    """Open one tile once; every listed city's partial sums on it."""
    out = []
    with _open_tile(path, tile, path) as h5:
        for cid, geom in cities:
            part = _tile_window(h5, tile, geom, tuple(accepted_quality))
            if part is not None:
                out.append({"city_id": cid, "tile": tile, **part})
    return out


def combine_partials(cfg: dict, registry: Registry, partials: list[dict]) -> dict:
    """Per-city records (as the clip parser makes) from the partial sums of every tile."""
    by_city: dict[str, dict] = {}
    for p in partials:
        by_city.setdefault(p["city_id"], {})[p["tile"]] = p
    out = {}
    for cid, ts in city_tiles(registry).items():
        c = registry.get(cid)
        # add up in the order vnp46a4_zonal does, so both give the same floating-point sums
        parts = [by_city.get(cid, {})[t] for t in ts if t in by_city.get(cid, {})]
        req = Request("night-lights-city", f"vnp46a4:{composite_year(cfg)}:{cid}", cid)
        out[req] = {
            "city_id": cid,
            **_finish(parts),
            "boundary_version": BOUNDARY_VERSION,
            "radius_km": float(c["boundary_radius_km"]),
            "tiles": ";".join(ts),
        }
    return out


def inside_mask(geometry: dict, shape: tuple[int, int], transform) -> np.ndarray:
    """The cells of a raster window whose centres lie inside a polygon's outer ring: the mask GDAL's
    rasterize burns (`geometry_mask(..., all_touched=False)` inverted), computed with numpy.

    GDAL's scanline burns, on each row, the cells whose centre x lies in (x_a, x_b] between pairs of
    the ring's crossings of the row's centre line; counting the crossings at or right of a centre
    (odd = inside) is the same rule. rasterize builds a GDAL dataset per call, which cost more than
    the sum itself on small city windows (benchmarks/README.md)."""
    return _inside_ring(_ring(geometry), shape, tuple(transform)[:6])


_Coefficients = tuple[float, float, float, float, float, float]  # an affine transform's a, b, c, d, e, f


def _inverse(t: _Coefficients) -> _Coefficients:
    """`~Affine(*t)` as plain floats: the same arithmetic, without building Affine objects (on a
    city's small clip they cost more than the sum)."""
    sa, sb, sc, sd, se, sf = t
    determinant = sa * se - sb * sd
    if determinant == 0.0:
        raise TransformNotInvertibleError("Cannot invert degenerate transform")
    idet = 1.0 / determinant
    ra, rb, rd, re = se * idet, -sb * idet, -sd * idet, sa * idet
    return (ra, rb, -sc * ra - sf * rb, rd, re, -sc * rd - sf * re)


def _inside_ring(ring: np.ndarray, shape: tuple[int, int], transform: _Coefficients) -> np.ndarray:
    """`inside_mask` of a closed ring given as an (n, 2) array of (x, y), `transform` as its six coefficients."""
    ia, ib, ic, id_, ie, if_ = _inverse(transform)
    vx, vy = ring[:, 0], ring[:, 1]
    cols, rows = vx * ia + vy * ib + ic, vx * id_ + vy * ie + if_  # as Affine's `@`
    x1, y1, x2, y2 = cols[:-1], rows[:-1], cols[1:], rows[1:]
    n_rows, n_cols = shape
    # an edge crosses the centre line of row r where min(y1, y2) <= r + 0.5 < max(y1, y2): the rows
    # from ceil(min - 0.5) up to ceil(max - 0.5), exclusive (a horizontal edge crosses none). One
    # (row, edge) pair per crossing, not a rows x edges table: a ring crosses each row about twice
    low, high = np.minimum(y1, y2), np.maximum(y1, y2)
    first = np.clip(np.ceil(low - 0.5), 0, n_rows).astype(np.int64)
    count = np.clip(np.ceil(high - 0.5), 0, n_rows).astype(np.int64) - first
    edge = np.repeat(np.arange(len(count)), count)
    row = np.arange(len(edge)) - np.repeat(np.cumsum(count) - count - first, count)
    ex1, ey1 = x1[edge], y1[edge]
    xs = ex1 + (row + 0.5 - ey1) * (x2[edge] - ex1) / (y2[edge] - ey1)
    # a crossing at x counts for the centres j + 0.5 <= x, i.e. the first floor(x - 0.5) + 1 cells of
    # its row: +1 from cell 0, -1 from that cell on, summed along the row (a difference array)
    first_not = np.clip(np.floor(xs - 0.5) + 1, 0, n_cols).astype(np.int64)
    width = n_cols + 1
    diff = -np.bincount(row * width + first_not, minlength=n_rows * width).reshape(n_rows, width)
    diff[:, 0] += np.bincount(row, minlength=n_rows)
    return np.cumsum(diff[:, :n_cols], axis=1) % 2 == 1


@functools.cache
def _unit_circle(vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of `vertices` angles evenly spaced from 0 (computed once per vertex count)."""
    angles = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    return np.array([math.cos(a) for a in angles]), np.array([math.sin(a) for a in angles])


def circle_ring(lon: float, lat: float, radius_km: float, vertices: int = 64) -> np.ndarray:
    """The closed outer ring of `circle` as a (vertices + 1, 2) array of (lon, lat): the same
    numbers, without building a polygon of Python tuples per city."""
    dlat = radius_km / 110.574
    dlon = radius_km / (111.320 * math.cos(math.radians(lat)))
    cos, sin = _unit_circle(vertices)
    ring = np.empty((vertices + 1, 2))
    ring[:-1, 0] = lon + dlon * cos
    ring[:-1, 1] = lat + dlat * sin
    ring[-1] = ring[0]
    return ring


def circle(lon: float, lat: float, radius_km: float, vertices: int = 64) -> dict:
    """A GeoJSON polygon approximating a circle of `radius_km` around a point (lon/lat degrees)."""
    return {"type": "Polygon", "coordinates": [[tuple(p) for p in circle_ring(lon, lat, radius_km, vertices).tolist()]]}


def _ring(geometry: dict) -> np.ndarray:
    """A polygon's outer ring as an (n, 2) array of (x, y)."""
    return np.asarray(geometry["coordinates"][0], dtype="float64")


def _window(ds, transform: _Coefficients, bbox: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
    """(col0, row0, col1, row1): the cells of `ds` (its `transform`) a (west, south, east, north) box touches, clipped
    to the raster; None when the box lies outside it. rasterio's `from_bounds` and `intersection`
    compute the same window through Window objects, which cost more than the sum on a city's clip;
    the box's corners go through the inverse transform here directly."""
    west, south, east, north = bbox
    ia, ib, ic, id_, ie, if_ = _inverse(transform)
    corners = ((west, north), (east, north), (east, south), (west, south))
    cols = [x * ia + y * ib + ic for x, y in corners]
    rows = [x * id_ + y * ie + if_ for x, y in corners]
    col0, row0 = max(math.floor(min(cols)), 0), max(math.floor(min(rows)), 0)
    col1, row1 = min(math.ceil(max(cols)), ds.width), min(math.ceil(max(rows)), ds.height)
    return (col0, row0, col1, row1) if col1 > col0 and row1 > row0 else None


def zonal_stats_dataset(ds, geometry: dict) -> dict:
    """Sum, mean and pixel counts of valid radiance inside `geometry` (cell centres) of an open
    rasterio dataset. Reads only the window around the geometry, whatever the raster's size."""
    return _zonal_ring(ds, _ring(geometry))


def _zonal_ring(ds, ring: np.ndarray) -> dict:
    """`zonal_stats_dataset` of a polygon given by its closed outer ring ((n, 2) array)."""
    c, a, b, f, d, e = ds.get_transform()  # GDAL's order; `ds.transform` is Affine.from_gdal of it
    t = (a, b, c, d, e, f)
    win = _window(ds, t, _ring_bbox(ring))
    if win is None:
        return {"sum": 0.0, "mean": np.nan, "pixels_valid": 0, "pixels_in_boundary": 0, "pixels_masked": 0}
    col0, row0, col1, row1 = win
    data = ds.read(1, window=((row0, row1), (col0, col1)), masked=False).astype("float64")
    x, y = col0 * a + row0 * b + c, col0 * d + row0 * e + f  # t @ (col0, row0)
    # rasterio's window_transform, Affine.translation(x - c, y - f) @ t, term by term as Affine computes it
    tx, ty = x - c, y - f
    window_t = (
        1.0 * a + 0.0 * d,
        1.0 * b + 0.0 * e,
        1.0 * c + 0.0 * f + tx,
        0.0 * a + 1.0 * d,
        0.0 * b + 1.0 * e,
        0.0 * c + 1.0 * f + ty,
    )
    inside = _inside_ring(ring, data.shape, window_t)
    invalid = ~np.isfinite(data)
    invalid |= data < 0
    for fill in FILL_VALUES:
        invalid |= data == fill
    if ds.nodata is not None:
        invalid |= data == ds.nodata
    valid = inside & ~invalid
    total = float(data[valid].sum())
    n = int(np.count_nonzero(valid))
    in_boundary = int(np.count_nonzero(inside))
    return {
        "sum": total,
        "mean": total / n if n else np.nan,
        "pixels_valid": n,
        "pixels_in_boundary": in_boundary,
        "pixels_masked": in_boundary - n,  # inside and invalid: inside, less the valid
    }


def zonal_stats_many(ds, geometries: list[dict]) -> list[dict]:
    """`zonal_stats_dataset` for many geometries on one (large) raster, in input order.

    The geometries are visited in the raster's block order (block row of their north edge, then
    west to east), so neighbouring cities reuse the blocks GDAL has just read and decompressed
    instead of decompressing them again after the cache has moved on (GDAL_CACHEMAX is small)."""
    block_h = ds.block_shapes[0][0]
    inverse = ~ds.transform

    def block_order(i: int):
        west, _, _, north = _bbox(geometries[i])
        col, row = inverse @ (west, north)
        return int(row // block_h), col

    out: list[dict] = [{}] * len(geometries)
    for i in sorted(range(len(geometries)), key=block_order):
        out[i] = zonal_stats_dataset(ds, geometries[i])
    return out


def zonal_stats(body: bytes, geometry: dict, location: str, city: str | None = None) -> dict:
    """`zonal_stats_dataset` on a GeoTIFF held in memory (a recorded clip); `year` is the composite
    year the file's YEAR tag states (None if it states none)."""
    return _clip_stats(body, _ring(geometry), location, city)


def _clip_stats(body: bytes, ring: np.ndarray, location: str, city: str | None) -> dict:
    import rasterio
    from rasterio.io import MemoryFile

    try:
        with MemoryFile(body) as mem, mem.open() as ds:
            return {**_zonal_ring(ds, ring), "year": ds.tags().get("YEAR")}
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(
            SOURCE, f"expected a GeoTIFF raster, could not open it: {exc}", location=location, city=city
        ) from exc


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    if req.kind == "vnp46a4-listing":
        return parse_listing(body, req.url, (cfg or {}).get("file_version"))
    if req.kind == "vnp46a4-tile":
        if body[:512].lstrip()[:1] == b"<":  # LAADS answers a download it does not authorise with its login page
            raise SourceError(
                SOURCE,
                f"{TOKEN_HINT}: the tile download answered an HTML page, not an HDF5 file",
                location=req.url,
                field=str(req.meta.get("tile", "")),
            )
        # zonal sums need every tile of a city (see tidy): keep a reference to the tile in the raw
        # store, never the body, so memory stays bounded by one window at a time

        return pd.DataFrame([{"tile": req.meta["tile"], "path": str(raw_object(SOURCE, body))}])
    # a clip: one record, not a one-row DataFrame (which costs more than the zonal sum itself)
    if req.city_id is None:
        raise SourceError(SOURCE, "a night-light clip request names no city", location=req.url)
    city = registry.get(req.city_id)
    ring = circle_ring(float(city["lon"]), float(city["lat"]), float(city["boundary_radius_km"]))
    stats = _clip_stats(body, ring, req.url, req.city_id)
    if stats["pixels_in_boundary"] == 0:
        raise SourceError(
            SOURCE,
            "the raster does not cover the city's boundary",
            location=req.url,
            city=req.city_id,
            field="night_lights",
        )
    return {
        "city_id": req.city_id,
        **stats,
        "boundary_version": BOUNDARY_VERSION,
        "radius_km": float(city["boundary_radius_km"]),
    }


def listing_year(files: pd.DataFrame) -> str | None:
    """The composite year in VNP46A4 file names (VNP46A4.A2019001.h29v05...)."""
    years = {m.group(1) for n in files["name"] for m in [re.search(r"\.A(\d{4})\d{3}\.", n)] if m}
    return ";".join(sorted(years)) or None


def parse_context():
    """One GDAL environment for all clips of a run (rasterio otherwise sets one up per open)."""
    import rasterio

    return rasterio.Env()


def _bbox(geom: dict) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a polygon's outer ring."""
    return _ring_bbox(_ring(geom))


def _ring_bbox(ring: np.ndarray) -> tuple[float, float, float, float]:
    """`_bbox` of a ring given as an (n, 2) array."""
    west, south = ring.min(axis=0).tolist()
    east, north = ring.max(axis=0).tolist()
    return west, south, east, north


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    if cfg.get("format") == "none":  # every city missing: the indicator's proxy, else the missing-values policy
        return pd.DataFrame(
            {
                "city_id": registry.ids,
                "indicator": "night_lights",
                "value": np.nan,
                "unit": "nW/cm2/sr (sum)",
                "edition": composite_year(cfg),
                "name_in_source": [registry.get(c)["name_en"] for c in registry.ids],
                "location": "none",
                "status": "missing",
            }
        )
    rows = [
        (
            rec["city_id"],
            "night_lights",
            rec["sum"],
            "nW/cm2/sr (sum)",
            composite_year(cfg),
            registry.get(req.city_id)["name_en"],
            req.url,
        )
        for req, rec in done.items()
    ]
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def details(done: dict) -> pd.DataFrame:
    return pd.DataFrame([rec for r, rec in done.items() if r.kind in ("night-lights-clip", "night-lights-city")])


class NightLightsSettings(OwnSettings):
    format: Literal["vnp46a4", "vnl-clip", "none"]
    year_offset: int = -1
    max_years_back: int = Field(default=0, ge=0)
    listing_urls: list[str] = []
    listing_url: str | None = None
    file_url: str | None = None
    file_version: str | None = None
    clip_url_template: str | None = None
    accepted_quality: list[int] = [0, 2]


class NightLights(Source):
    name = SOURCE
    settings_model = NightLightsSettings
    suites = (SuiteSpec("night_lights"),)
    sample_fields = {"night_lights": ["peak_radiance"]}
    required = {
        "format": "vnp46a4 (Black Marble tiles from LAADS), vnl-clip (one GeoTIFF per city) or none (no composite read)"
    }
    parallel = True

    def release_notes(self, coverage: pd.DataFrame) -> list[str]:
        n = int((coverage["status"] == "illustrative").sum())
        if not n:
            return []
        return [
            f"Night lights: the {n} values here come from generated rasters (illustrative). A real run needs "
            "NASA Black Marble VNP46A4 annual tiles (an Earthdata token in EARTHDATA_TOKEN; the shipped online "
            "configuration) or the EOG VIIRS Nighttime Lights (VNL) annual composites."
        ]

    def edition_config(self, cfg, edition, cadence):
        """Edition E reads the annual composite of year E + `year_offset` (default -1: the lights of
        the year before the edition, the latest complete year when it is compiled)."""
        try:
            year = int(edition) + int(cfg.get("year_offset", -1))
        except ValueError:
            raise EditionError(SOURCE, f"edition {edition!r} is not a year", location="data/sources.yaml") from None
        if cfg.get("format") == "none":
            return {**cfg, "composite_year": str(year)}, VintagePolicy("none", note="no composite read")
        return {**cfg, "composite_year": str(year)}, VintagePolicy(str(year), note="annual composite")

    def vintage_notes(self, cfg, parsed):
        if cfg.get("format") == "none":
            why = (
                f"{', '.join(cfg['secrets_missing'])} not set and the run allows vintage fallbacks"
                if cfg.get("secrets_missing")
                else "format none"
            )
            return [
                f"no night-light composite read ({why}; the composite of {composite_year(cfg)} would be read "
                "with the token): the indicator's proxy in the methodology stands in"
            ]
        return []

    def suites_for(self, cfg):
        return () if cfg.get("format") == "none" else self.suites

    def found_vintage(self, cfg, parsed):
        if cfg.get("format") == "none":
            return "none"
        years = set()
        for req, rec in parsed.items():
            if req.kind == "night-lights-clip":
                years.add(rec.get("year") or composite_year(cfg))  # a clip without a YEAR tag: its URL's year
            elif req.kind == "vnp46a4-listing" and rec is not None and len(rec):
                years.add(listing_year(rec) or composite_year(cfg))
        return ";".join(sorted(years)) or None

    def plan(self, cfg, registry, done):
        return plan(cfg, registry, done)

    def parse(self, req, body, registry, cfg=None):
        return parse(req, body, registry, cfg)

    def pages_per_city(self, cfg):
        return cfg.get("format", "vnl-clip") == "vnl-clip"  # a clip per city; tiles are few

    def parse_context(self):
        return parse_context()

    def work_units(self, cfg, registry, parsed):
        if not any(r.kind == "vnp46a4-tile" for r in parsed):
            return []
        return tile_jobs(cfg, registry, parsed)

    def run_work_unit(self, unit):
        return tile_partials(**unit)

    def combine_work_units(self, cfg, registry, parsed, results):
        return combine_partials(cfg, registry, results)

    def tidy(self, cfg, registry, parsed):
        return tidy(cfg, registry, parsed)

    def extras(self, cfg, registry, parsed, raw_parsed):
        return {"zonal_stats": details(parsed)}


SPEC = NightLights()
