"""An independent check of which cell centres fall inside a polygon (ray casting), for the
zonal-sum tests: it shares no code with rasterio's rasterisation."""

import numpy as np


def centres_inside(geom: dict, west: float, north: float, res: float, shape: tuple[int, int]) -> np.ndarray:
    ring = np.array(geom["coordinates"][0])
    ys = north - (np.arange(shape[0]) + 0.5) * res
    xs = west + (np.arange(shape[1]) + 0.5) * res
    X, Y = np.meshgrid(xs, ys)
    inside = np.zeros(shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:]):
        cond = (y1 > Y) != (y2 > Y)
        xint = (x2 - x1) * (Y - y1) / np.where(y2 != y1, y2 - y1, 1) + x1
        inside ^= cond & (X < xint)
    return inside
