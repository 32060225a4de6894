"""Night-time lights: sum and mean radiance inside each city's boundary (indicator `night_lights`).

Offline, the sample replays one small GeoTIFF clip per city (VNL-style float32 radiance, nodata set).
Zonal statistics use rasterio masks by cell centre inside a fixed-radius circle around the city
centre (64-vertex polygon); the boundary version and pixel counts go into the snapshot.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..cities import Registry
from ..errors import SourceError
from .base import TIDY_COLUMNS, Request

SOURCE = "night_lights"
PARSER_VERSION = "1"
SUITES = {"indicators": "night_lights"}
BOUNDARY_VERSION = "circle-64-v1"
FILL_VALUES = (65535.0,)


def plan(cfg: dict, registry: Registry, done: dict) -> list[Request]:
    tmpl = cfg["clip_url_template"]
    return [Request("night-lights-clip", tmpl.format(city_id=cid, year=cfg.get("edition")), cid)
            for cid in registry.ids]


def circle(lon: float, lat: float, radius_km: float, vertices: int = 64) -> dict:
    """A GeoJSON polygon approximating a circle of `radius_km` around a point (lon/lat degrees)."""
    dlat = radius_km / 110.574
    dlon = radius_km / (111.320 * math.cos(math.radians(lat)))
    ring = [(lon + dlon * math.cos(a), lat + dlat * math.sin(a))
            for a in np.linspace(0, 2 * math.pi, vertices, endpoint=False)]
    ring.append(ring[0])
    return {"type": "Polygon", "coordinates": [ring]}


def zonal_stats(body: bytes, geometry: dict, location: str, city: str | None = None) -> dict:
    """Sum, mean and pixel counts of valid radiance inside `geometry` (cell centres)."""
    import rasterio
    from rasterio.features import geometry_mask
    from rasterio.io import MemoryFile
    from rasterio.windows import from_bounds

    try:
        with MemoryFile(body) as mem, mem.open() as ds:
            xs = [p[0] for p in geometry["coordinates"][0]]
            ys = [p[1] for p in geometry["coordinates"][0]]
            win = from_bounds(min(xs), min(ys), max(xs), max(ys), ds.transform)
            col0, row0 = math.floor(win.col_off), math.floor(win.row_off)
            win = rasterio.windows.Window(col0, row0, math.ceil(win.col_off + win.width) - col0,
                                          math.ceil(win.row_off + win.height) - row0)
            full = rasterio.windows.Window(0, 0, ds.width, ds.height)
            try:
                win = win.intersection(full)
            except rasterio.errors.WindowError:
                return {"sum": 0.0, "mean": np.nan, "pixels_valid": 0, "pixels_in_boundary": 0,
                        "pixels_masked": 0}
            data = ds.read(1, window=win, masked=False).astype("float64")
            transform = ds.window_transform(win)
            inside = ~geometry_mask([geometry], out_shape=data.shape, transform=transform, all_touched=False)
            nodata = ds.nodata
    except rasterio.errors.RasterioIOError as exc:
        raise SourceError(SOURCE, f"expected a GeoTIFF raster, could not open it: {exc}", location=location,
                          city=city) from exc
    invalid = ~np.isfinite(data) | np.isin(data, FILL_VALUES) | (data < 0)
    if nodata is not None:
        invalid |= data == nodata
    valid = inside & ~invalid
    total = float(data[valid].sum())
    n = int(valid.sum())
    return {"sum": total, "mean": total / n if n else np.nan, "pixels_valid": n,
            "pixels_in_boundary": int(inside.sum()), "pixels_masked": int((inside & invalid).sum())}


def parse(req: Request, body: bytes, registry: Registry, cfg: dict | None = None) -> pd.DataFrame:
    city = registry.get(req.city_id)
    geom = circle(float(city["lon"]), float(city["lat"]), float(city["boundary_radius_km"]))
    stats = zonal_stats(body, geom, req.url, req.city_id)
    if stats["pixels_in_boundary"] == 0:
        raise SourceError(SOURCE, "the raster does not cover the city's boundary", location=req.url,
                          city=req.city_id, field="night_lights")
    return pd.DataFrame([{"city_id": req.city_id, **stats, "boundary_version": BOUNDARY_VERSION,
                          "radius_km": float(city["boundary_radius_km"])}])


def tidy(cfg: dict, registry: Registry, done: dict) -> pd.DataFrame:
    edition = str(cfg.get("edition"))
    rows = [(df.iloc[0]["city_id"], "night_lights", df.iloc[0]["sum"], "nW/cm2/sr (sum)", edition,
             registry.get(req.city_id)["name_en"], req.url) for req, df in done.items()]
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def details(done: dict) -> pd.DataFrame:
    return pd.concat(list(done.values()), ignore_index=True)
