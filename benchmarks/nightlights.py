"""Night-light zonal sums: ours (rasterio windowed masks) against exactextract and rasterstats.

1,000 city polygons (64-vertex circles, 5-30 km) on a generated 20,000 x 20,000 float32 GeoTIFF
at 15 arc-seconds (tiled 512 x 512), one uncompressed and one deflate; every method in a fresh
process with GDAL_CACHEMAX=64, wall time and peak memory (the process's own VmHWM).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np
from common import CACHE, GENERATED, fresh_process, save, stats

SIZE = 20_000
RES = 15 / 3600
WEST, NORTH = 0.0, 60.0


def _profile(compress: str | None, size: int) -> dict:
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": from_origin(WEST, NORTH, RES, RES),
        "nodata": -999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "BIGTIFF": "YES",
    }
    if compress:
        profile["compress"] = compress
        profile["num_threads"] = "ALL_CPUS"  # compress blocks on every core (generation only, not measured)
        # level 1, not GDAL's default 6: reading (what is measured) takes the same time (0.85 s vs 0.87 s
        # for a 4,096 x 20,000 strip), the file is 14% larger, writing it takes ~9 s instead of ~50 s
        profile["zlevel"] = 1
    return profile


def make_raster(path, compress: str | None, size: int = SIZE, like=None):
    """The generated raster (gamma noise, seed 0), written once and kept in benchmarks/.cache.
    With `like` (the same raster already written), its values are copied instead of drawn again
    (drawing 400 M gamma values costs ~20 s; the files hold the same values)."""
    import rasterio
    from rasterio.windows import Window

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.tif")
    rng = np.random.default_rng(0)
    src = rasterio.open(like) if like else None
    try:
        with rasterio.open(tmp, "w", **_profile(compress, size)) as ds:
            step = 2048
            for r in range(0, size, step):
                win = Window(0, r, size, min(step, size - r))
                if src is not None:
                    block = src.read(1, window=win)
                else:
                    block = (rng.standard_gamma(0.6, size=(win.height, size), dtype="float32") * 4.0).round(1)
                ds.write(block, 1, window=win)
    finally:
        if src is not None:
            src.close()
    tmp.rename(path)
    return path


def polygons(n: int = 1000, seed: int = 1) -> list[dict]:
    sys.path.insert(0, str(CACHE.parent.parent))
    from tasks.sources.night_lights import circle

    rng = np.random.default_rng(seed)
    span = SIZE * RES
    out = []
    for _ in range(n):
        lon = WEST + rng.uniform(0.5, span - 0.5)
        lat = NORTH - rng.uniform(0.5, span - 0.5)
        out.append(circle(lon, lat, float(rng.uniform(5, 30))))
    return out


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, ".")
sys.path.insert(0, "benchmarks")
method, raster, geoms = sys.argv[1:] if len(sys.argv) > 3 else ({method!r}, {raster!r}, {geoms!r})
polys = json.load(open(geoms))
t = time.perf_counter()
if method == "ours":
    import rasterio
    from tasks.sources.night_lights import zonal_stats_many
    with rasterio.open(raster) as ds:
        sums = [r["sum"] for r in zonal_stats_many(ds, polys)]
elif method == "exactextract":
    from exactextract import exact_extract
    feats = [{{"type": "Feature", "properties": {{"i": i}}, "geometry": g}} for i, g in enumerate(polys)]
    res = exact_extract(raster, feats, ["sum"], output="pandas")
    sums = res["sum"].tolist()
elif method == "rasterstats":
    from rasterstats import zonal_stats
    res = zonal_stats(polys, raster, stats=["sum"], all_touched=False)
    sums = [r["sum"] or 0.0 for r in res]
elapsed = time.perf_counter() - t
# this process's own high-water mark (VmHWM): ru_maxrss of a process started with fork + exec also
# counts the parent's peak before the exec (run.py's own: 1.8 GiB once it had generated a raster)
try:
    peak = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": elapsed, "peak_mib": peak, "sums": sums}}))
"""


def run(runs: int = 5) -> dict:
    geoms_path = CACHE / "polygons_1000.json"
    CACHE.mkdir(parents=True, exist_ok=True)
    geoms_path.write_text(json.dumps(polygons()))
    out: dict[str, Any] = {
        "polygons": 1000,
        "raster": f"{SIZE}x{SIZE} float32, 15 arc-seconds, tiled 512x512 (deflate: level 1)",
        "gdal_cachemax_mib": 64,
        "results": {},
    }
    plain = None
    for label, compress in (("uncompressed", None), ("deflate", "deflate")):
        t = time.perf_counter()
        path = CACHE / f"vnl_{SIZE}_{label}.tif"
        missing = not path.exists()
        raster = make_raster(path, compress, like=plain)
        plain = plain or raster
        if missing:
            GENERATED[f"{label} raster"] = time.perf_counter() - t
            print(f"  {label} raster generated in {time.perf_counter() - t:.0f} s", flush=True)
        sums = {}
        for method in ("ours", "exactextract", "rasterstats"):
            secs, peaks = [], []
            for _ in range(runs):
                r = fresh_process(
                    CHILD.format(method=method, raster=str(raster), geoms=str(geoms_path)), env={"GDAL_CACHEMAX": "64"}
                )
                secs.append(r["seconds"])
                peaks.append(r["peak_mib"])
                sums[method] = np.array(r["sums"], dtype=float)
            out["results"].setdefault(label, {})[method] = {"seconds": stats(secs), "peak_mib": stats(peaks)}
            print(f"  {label:12s} {method:12s} {np.median(secs):7.2f} s  peak {max(peaks):6.0f} MiB", flush=True)
        rel = np.abs(sums["ours"] - sums["exactextract"]) / np.maximum(np.abs(sums["exactextract"]), 1e-9)
        out["results"][label]["cell_centre_vs_exact_coverage"] = {
            "median_rel_diff": float(np.median(rel)),
            "max_rel_diff": float(rel.max()),
        }
        rs = np.abs(sums["ours"] - sums["rasterstats"]).max()
        out["results"][label]["ours_vs_rasterstats_max_abs_diff"] = float(rs)
        for method in ("exactextract", "rasterstats"):
            out["results"][label][f"ratio_ours_over_{method}"] = (
                out["results"][label]["ours"]["seconds"]["median"] / out["results"][label][method]["seconds"]["median"]
            )
    return out


if __name__ == "__main__":
    result = run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
    print(save("nightlights", result))
