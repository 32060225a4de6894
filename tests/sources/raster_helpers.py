"""An independent check of which cell centres fall inside a polygon (ray casting), for the
zonal-sum tests: it shares no code with rasterio's rasterisation."""

import numpy as np


def centres_inside(geom: dict, west: float, north: float, res: float, shape: tuple[int, int]) -> np.ndarray:
    ring = np.array(geom["coordinates"][0])
    ys = north - (np.arange(shape[0]) + 0.5) * res
    xs = west + (np.arange(shape[1]) + 0.5) * res
    X, Y = np.meshgrid(xs, ys)
    inside = np.zeros(shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:], strict=True):
        cond = (y1 > Y) != (y2 > Y)
        xint = (x2 - x1) * (Y - y1) / np.where(y2 != y1, y2 - y1, 1) + x1
        inside ^= cond & (xint > X)
    return inside


def tile_bytes(rad: np.ndarray, qual: np.ndarray) -> bytes:
    """A VNP46A4-like HDF5 tile (radiance uint16, quality uint8) in memory."""
    import io

    import h5py

    from tasks.sources import night_lights as nl

    buf = io.BytesIO()
    with h5py.File(buf, "w") as h5:
        h5.create_dataset(nl.VNP46A4_LAYER, data=rad.astype("uint16"), chunks=(60, 60), compression="gzip")
        h5.create_dataset(nl.VNP46A4_QUALITY, data=qual.astype("uint8"), chunks=(60, 60), compression="gzip")
    return buf.getvalue()


def write_vnp46a4_recordings(rec, registry, cfg: dict, n: int = 240, seed: int | None = None) -> list[str]:
    """Recordings of a LAADS listing and every tile the registry's cities need (n x n pixels;
    radiance 10 everywhere, or random with quality flags when `seed` is given). Returns the tiles."""
    import json

    from tasks.sources import night_lights as nl

    rng = np.random.default_rng(seed) if seed is not None else None
    needed = sorted({t for ts in nl.city_tiles(registry).values() for t in ts})
    year = nl.composite_year(cfg)
    listing_url = nl.listing_requests(cfg, year)[0].url
    folder = rec / str(cfg.get("edition", "2020"))
    (folder / "night_lights").mkdir(parents=True, exist_ok=True)
    names = {t: f"VNP46A4.A{year}001.{t}.002.2025125000000.h5" for t in needed}
    index = {listing_url: {"source": "night_lights", "file": "night_lights/listing.json", "status": 200, "headers": {}}}
    (folder / "night_lights" / "listing.json").write_text(
        json.dumps({"content": [{"name": v, "size": 1} for v in names.values()]})
    )
    for _t, name in names.items():
        if rng is None:
            rad, qual = np.full((n, n), 10), np.zeros((n, n))
        else:
            rad, qual = (
                rng.integers(0, 3000, size=(n, n)),
                rng.choice([0, 1, 2, 255], size=(n, n), p=[0.7, 0.1, 0.15, 0.05]),
            )
        (folder / "night_lights" / name).write_bytes(tile_bytes(rad, qual))
        index[cfg["file_url"].format(year=year, name=name)] = {
            "source": "night_lights",
            "file": f"night_lights/{name}",
            "status": 200,
            "headers": {},
        }
    (folder / "index.json").write_text(json.dumps(index))
    return needed
