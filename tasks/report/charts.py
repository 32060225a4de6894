"""The report's charts, written directly as self-contained SVG (no script, no external font or file).

Each chart is a handful of lines, bars, polygons and labels; writing them out is a small fraction
of what a plotting library's layout and rendering pass costs, and every release pays that cost.
Text is SVG text in a sans-serif font; margins are sized from the labels' length."""

from __future__ import annotations

import math
from html import escape

import numpy as np
import pandas as pd

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948"]
GRID = "#cccccc"
INK = "#333333"
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def text_width(s: str, size: float) -> float:
    """The width of `s` in a sans-serif font of `size` px, estimated from its characters (a wide
    glyph for CJK, an average Latin one otherwise): enough to size margins and avoid overlaps."""
    return size * sum(1.0 if ord(c) > 0x2E80 else 0.6 for c in s)


def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """About `n` round tick values (steps of 1, 2, 2.5 or 5 times a power of ten) within [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _num(v: float) -> str:
    v = float(v)
    if not math.isfinite(v):  # the charts leave missing values out; never write "nan" into the SVG
        return "0"
    return f"{v:.1f}".rstrip("0").rstrip(".") if abs(v - round(v)) > 1e-9 else str(int(round(v)))


class Svg:
    """An SVG document built element by element, in pixels."""

    def __init__(self, width: float, height: float):
        self.width, self.height = width, height
        self.parts: list[str] = []

    def line(self, x1, y1, x2, y2, stroke=INK, width=1.0) -> None:
        self.parts.append(
            f'<line x1="{_num(x1)}" y1="{_num(y1)}" x2="{_num(x2)}" y2="{_num(y2)}" stroke="{stroke}" '
            f'stroke-width="{width}"/>'
        )

    def polyline(self, xs, ys, stroke, width=1.0, close=False) -> None:
        pts = " ".join(f"{_num(x)},{_num(y)}" for x, y in zip(xs, ys, strict=True))
        tag = "polygon" if close else "polyline"
        self.parts.append(f'<{tag} points="{pts}" fill="none" stroke="{stroke}" stroke-width="{width}"/>')

    def polygon(self, xs, ys, fill, opacity=1.0) -> None:
        pts = " ".join(f"{_num(x)},{_num(y)}" for x, y in zip(xs, ys, strict=True))
        self.parts.append(f'<polygon points="{pts}" fill="{fill}" fill-opacity="{opacity}" stroke="none"/>')

    def rect(self, x, y, w, h, fill, opacity: float = 1.0) -> None:
        op = f' fill-opacity="{opacity}"' if opacity != 1.0 else ""
        self.parts.append(
            f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(max(0.0, w))}" height="{_num(max(0.0, h))}" '
            f'fill="{fill}"{op}/>'
        )

    def circle(self, x, y, r, fill) -> None:
        self.parts.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="{r}" fill="{fill}"/>')

    def cross(self, x, y, r, stroke, width=1.2) -> None:
        self.line(x - r, y - r, x + r, y + r, stroke, width)
        self.line(x - r, y + r, x + r, y - r, stroke, width)

    def text(self, x, y, s, size=9.0, anchor="start", valign="middle", color=INK, rotate=False) -> None:
        """One line of text; `valign` top, middle or bottom of the text at y."""
        dy = {"top": 0.8, "middle": 0.35, "bottom": -0.2}[valign] * size
        turn = f' transform="rotate(-90 {_num(x)} {_num(y)})"' if rotate else ""
        self.parts.append(
            f'<text x="{_num(x)}" y="{_num(y + dy)}" font-size="{size}" text-anchor="{anchor}" fill="{color}"{turn}>'
            f"{escape(str(s))}</text>"
        )

    def legend(self, x, y, items: list[tuple[str, str, str]], size=7.0, columns: int = 1) -> None:
        """Items (label, colour, kind: box, band, line, dot or cross) in `columns` columns from (x, y)."""
        rows = math.ceil(len(items) / columns)
        col_w = max((text_width(label, size) for label, _, _ in items), default=0) + 3 * size
        for k, (label, colour, kind) in enumerate(items):
            cx, cy = x + (k // rows) * col_w, y + (k % rows) * size * 1.5
            if kind in ("box", "band"):
                self.rect(cx, cy - size * 0.4, size * 1.2, size * 0.8, colour, 0.2 if kind == "band" else 1.0)
            elif kind == "line":
                self.line(cx, cy, cx + size * 1.2, cy, colour, 1.5)
            elif kind == "dot":
                self.circle(cx + size * 0.6, cy, size * 0.3, colour)
            else:
                self.cross(cx + size * 0.6, cy, size * 0.3, colour)
            self.text(cx + size * 1.6, cy, label, size)

    def bytes(self) -> bytes:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(self.width)}" height="{_num(self.height)}" '
            f'viewBox="0 0 {_num(self.width)} {_num(self.height)}" font-family="{FONT}">'
            f'<rect width="100%" height="100%" fill="#ffffff"/>'
        )
        return (head + "".join(self.parts) + "</svg>\n").encode()


class Axes:
    """A plot area of an Svg with linear x and y scales (y grows upwards unless `y_down`)."""

    def __init__(
        self,
        svg: Svg,
        box: tuple[float, float, float, float],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        y_down: bool = False,
    ):
        self.svg, (self.left, self.top, self.w, self.h) = svg, box
        self.xlim, self.ylim, self.y_down = xlim, ylim, y_down

    def x(self, v):
        lo, hi = self.xlim
        return self.left + (np.asarray(v, dtype=float) - lo) / (hi - lo) * self.w

    def y(self, v):
        lo, hi = self.ylim
        f = (np.asarray(v, dtype=float) - lo) / (hi - lo)
        return self.top + (f if self.y_down else 1 - f) * self.h

    def frame(self) -> None:
        """The left and bottom spines."""
        b = self.top + self.h
        self.svg.line(self.left, self.top, self.left, b, INK, 0.8)
        self.svg.line(self.left, b, self.left + self.w, b, INK, 0.8)

    def x_ticks(self, ticks, labels=None, size=8.0) -> None:
        b = self.top + self.h
        for k, t in enumerate(ticks):
            px = float(self.x(t))
            self.svg.line(px, b, px, b + 3.5, INK, 0.8)
            self.svg.text(px, b + 5, labels[k] if labels else f"{t:g}", size, "middle", "top")

    def y_ticks(self, ticks, labels=None, size=8.0) -> None:
        for k, t in enumerate(ticks):
            py = float(self.y(t))
            self.svg.line(self.left - 3.5, py, self.left, py, INK, 0.8)
            self.svg.text(self.left - 5, py, labels[k] if labels else f"{t:g}", size, "end")

    def x_label(self, s: str, size=9.0) -> None:
        self.svg.text(self.left + self.w / 2, self.top + self.h + 8 + 2 * size, s, size, "middle", "top")

    def y_label(self, s: str, offset: float, size=9.0) -> None:
        self.svg.text(self.left - offset, self.top + self.h / 2, s, size, "middle", "bottom", rotate=True)


def radar(ranks: pd.DataFrame, labels: list[str], title: str, n_max: int) -> bytes:
    """Small multiples: one radar of dimension ranks per city (outer ring = rank 1, first dimension
    at the top, clockwise). `labels` should be short (a few letters): the cells leave room for them
    so that the labels of neighbouring charts never meet."""
    cities = list(ranks.index)
    cols = 5
    rows = max(1, int(np.ceil(len(cities) / cols)))
    k = len(labels)
    angle = np.pi / 2 - 2 * np.pi * np.arange(k) / k
    ux, uy = np.cos(angle), -np.sin(angle)  # y grows downwards in SVG
    r0 = 46.0  # the unit circle's radius in px
    dx, dy = 3.6 * r0, 3.4 * r0  # cell size (labels and the city's name need room around the circle)
    top = 28.0
    svg = Svg(cols * dx, top + rows * dy)
    svg.text(svg.width / 2, 8, title, 10, "middle", "top")
    for i, city in enumerate(cities):
        cx, cy = (i % cols + 0.5) * dx, top + (i // cols) * dy + 0.56 * dy
        for ring in (0.25, 0.5, 0.75, 1.0):
            svg.polyline(cx + ring * r0 * ux, cy + ring * r0 * uy, GRID, 0.5, close=True)
        for x, y in zip(ux, uy, strict=True):
            svg.line(cx, cy, cx + r0 * x, cy + r0 * y, GRID, 0.5)
        r = ranks.loc[city].to_numpy(dtype=float)
        radius = np.nan_to_num(np.clip((n_max + 1 - r) / n_max, 0, 1))  # rank 1 -> outermost ring; none: centre
        px, py = cx + radius * r0 * ux, cy + radius * r0 * uy
        svg.polygon(px, py, PALETTE[0], 0.25)
        svg.polyline(px, py, PALETTE[0], 1.2, close=True)
        for lab, v, x, y in zip(labels, r, ux, uy, strict=True):
            anchor = "middle" if abs(x) < 0.2 else ("start" if x > 0 else "end")
            lx, ly = cx + 1.12 * r0 * x, cy + 1.12 * r0 * y
            # two lines (label, rank) stacked away from the centre
            first = ly - 7.5 if y < -0.2 else (ly if y > 0.2 else ly - 4)
            svg.text(lx, first, lab, 7, anchor, "middle")
            svg.text(lx, first + 8, "" if np.isnan(v) else int(v), 7, anchor, "middle")
        svg.text(cx, cy - 1.5 * r0, city, 8, "middle", "bottom")
    return svg.bytes()


def stacked_contributions(contrib: pd.DataFrame, labels: dict[str, str]) -> bytes:
    """Horizontal stacked bars: each dimension's weighted contribution to the final score."""
    names = [str(c) for c in contrib.index]
    left = max((text_width(s, 7) for s in names), default=0) + 14
    legend_items = [(labels.get(c, c), PALETTE[k % len(PALETTE)], "box") for k, c in enumerate(contrib.columns)]
    legend_rows = math.ceil(len(legend_items) / 3)
    height = max(3 * 72.0, (0.26 * len(contrib) + 1) * 72.0) + legend_rows * 10.5
    width = 8 * 72.0
    svg = Svg(width, height)
    total = contrib.sum(axis=1).to_numpy(dtype=float)
    hi = float(np.nanmax(total)) if len(total) else 1.0
    ticks = nice_ticks(0, hi * 1.05)
    ax = Axes(
        svg, (left, 8, width - left - 12, height - 48 - legend_rows * 10.5), (0, max(ticks[-1], hi) * 1.02), (0, 1)
    )
    band = ax.h / max(1, len(contrib))
    start = np.zeros(len(contrib))
    for k, col in enumerate(contrib.columns):
        vals = contrib[col].to_numpy(dtype=float)
        for i, v in enumerate(vals):
            if np.isnan(v):
                continue
            svg.rect(
                ax.x(start[i]),
                ax.top + (i + 0.125) * band,
                ax.x(start[i] + v) - ax.x(start[i]),
                0.75 * band,
                PALETTE[k % len(PALETTE)],
            )
        start += np.nan_to_num(vals)
    for i, s in enumerate(names):
        svg.text(left - 5, ax.top + (i + 0.5) * band, s, 7, "end")
    ax.frame()
    ax.x_ticks(ticks)
    ax.x_label("weighted dimension score (sum = final score)")
    svg.legend(left, height - legend_rows * 10.5 - 2, legend_items, 7, columns=3)
    return svg.bytes()


def clusters(table: pd.DataFrame, columns: list[str], labels: dict[str, str]) -> bytes:
    """Grouped bars: the mean score of each cluster (one colour each) per dimension."""
    width, height = 8 * 72.0, 3.2 * 72.0 + 24
    svg = Svg(width, height)
    tick_labels = [labels.get(c, c) for c in columns]
    ax = Axes(svg, (48, 26, width - 60, height - 26 - 44), (-0.5, len(columns) - 0.5), (45, 100))
    group = 0.8 / max(1, len(table))
    for k, (_name, row) in enumerate(table.iterrows()):
        vals = row[columns].to_numpy(float)
        for j, v in enumerate(vals):
            if np.isnan(v):
                continue
            x0 = j - 0.4 + k * group
            top = min(max(v, 45), 100)
            svg.rect(ax.x(x0), ax.y(top), ax.x(x0 + group) - ax.x(x0), ax.y(45) - ax.y(top), PALETTE[k % len(PALETTE)])
    ax.frame()
    ax.y_ticks(nice_ticks(45, 100))
    # long dimension names on two lines
    for j, lab in enumerate(tick_labels):
        words, lines = lab.split(), [""]
        for w in words:
            if lines[-1] and text_width(lines[-1] + " " + w, 7) > ax.w / len(columns) - 4:
                lines.append(w)
            else:
                lines[-1] = (lines[-1] + " " + w).strip()
        for n, line in enumerate(lines):
            svg.text(float(ax.x(j)), ax.top + ax.h + 5 + n * 8.5, line, 7, "middle", "top")
    ax.y_label("mean score", 30)
    items = [(str(name), PALETTE[k % len(PALETTE)], "box") for k, name in enumerate(table.index)]
    svg.legend(ax.left + 6, 10, items, 7, columns=4)
    return svg.bytes()


MAX_POINTS = 2000  # scatters of more cities draw a density grid (one dot per city would weigh megabytes)


def regression(points: pd.DataFrame, line: pd.DataFrame, x_label: str, y_label: str, summary: dict) -> bytes:
    """A scatter of the cities with the fitted line and its 95% confidence band."""
    width, height = 4.2 * 72.0 + 20, 3.2 * 72.0 + 36
    svg = Svg(width, height)
    xs = np.concatenate([points["x"].to_numpy(float), line["x"].to_numpy(float)])
    ys = np.concatenate([points["y"].to_numpy(float), line[["lower", "upper", "fit"]].to_numpy(float).ravel()])
    xlo, xhi = float(np.nanmin(xs)), float(np.nanmax(xs))
    ylo, yhi = float(np.nanmin(ys)), float(np.nanmax(ys))
    xpad, ypad = (xhi - xlo) * 0.05 or 1.0, (yhi - ylo) * 0.05 or 1.0
    ax = Axes(svg, (52, 22, width - 64, height - 22 - 54), (xlo - xpad, xhi + xpad), (ylo - ypad, yhi + ypad))
    lx = ax.x(line["x"])
    svg.polygon(
        np.concatenate([lx, lx[::-1]]),
        np.concatenate([ax.y(line["upper"]), ax.y(line["lower"])[::-1]]),
        PALETTE[0],
        0.2,
    )
    svg.polyline(lx, ax.y(line["fit"]), PALETTE[0], 1.5)
    if len(points) <= MAX_POINTS:
        for _, p in points.iterrows():
            svg.circle(float(ax.x(p["x"])), float(ax.y(p["y"])), 2.2, PALETTE[2])
            if len(points) <= 60:
                svg.text(float(ax.x(p["x"])) + 2, float(ax.y(p["y"])) - 2, p["city_id"], 5, "start", "bottom")
    else:  # a density grid: one cell per 6 points, darker where more cities fall
        px, py = ax.x(points["x"].to_numpy(float)), ax.y(points["y"].to_numpy(float))
        nx, ny = int(ax.w // 6), int(ax.h // 6)
        counts, _, _ = np.histogram2d(px, py, bins=[nx, ny], range=[[ax.left, ax.left + ax.w], [ax.top, ax.top + ax.h]])
        peak = counts.max() or 1.0
        for i, j in zip(*np.nonzero(counts), strict=True):
            opacity = round(0.15 + 0.85 * float(np.log1p(counts[i, j]) / np.log1p(peak)), 2)
            svg.rect(ax.left + i * ax.w / nx, ax.top + j * ax.h / ny, ax.w / nx, ax.h / ny, PALETTE[2], opacity)
        svg.text(ax.left + ax.w - 2, ax.top + 2, f"{len(points):,} cities: darker = more", 6, "end", "top")
    ax.frame()
    ax.x_ticks(nice_ticks(ax.xlim[0], ax.xlim[1], 5))
    ax.y_ticks(nice_ticks(ax.ylim[0], ax.ylim[1], 5))
    ax.x_label(x_label)
    ax.y_label(y_label, 40)
    svg.text(
        ax.left + ax.w / 2,
        6,
        f"slope {summary['slope']:.3g}, p = {summary['p_value']:.2g}, R² = {summary['r_squared']:.2f}",
        8,
        "middle",
        "top",
    )
    band = [("95% confidence band", PALETTE[0], "band"), ("fitted line", PALETTE[0], "line")]
    svg.legend(ax.left, height - 9, band, 6, columns=2)
    return svg.bytes()


def rank_intervals(unc: pd.DataFrame) -> bytes:
    """Median rank with its 5-95% interval, and the nominal rank (rank 1 on the right)."""
    u = unc.sort_values("nominal_rank")
    names = [str(c) for c in u.index]
    left = max((text_width(s, 7) for s in names), default=0) + 14
    width, height = 7 * 72.0, max(3 * 72.0, (0.24 * len(u) + 1) * 72.0) + 24
    svg = Svg(width, height)
    worst = float(np.nanmax(u[["p95_rank", "nominal_rank", "median_rank"]].to_numpy(float)))
    # rank 1 on the right: the x scale runs from the worst rank down to 1
    ax = Axes(svg, (left, 8, width - left - 12, height - 8 - 62), (worst + 1, 0), (0, 1))
    band = ax.h / max(1, len(u))
    for i, (_city, r) in enumerate(u.iterrows()):
        y = ax.top + (i + 0.5) * band
        if pd.notna(r["p05_rank"]) and pd.notna(r["p95_rank"]):
            svg.line(float(ax.x(r["p05_rank"])), y, float(ax.x(r["p95_rank"])), y, PALETTE[0], 2)
        if pd.notna(r["median_rank"]):
            svg.circle(float(ax.x(r["median_rank"])), y, 2.5, PALETTE[0])
        if pd.notna(r["nominal_rank"]):
            svg.cross(float(ax.x(r["nominal_rank"])), y, 2.5, PALETTE[2])
        svg.text(left - 5, y, names[i], 7, "end")
    ax.frame()
    ax.x_ticks([1.0] + [t for t in nice_ticks(1, worst, 6) if t > 1])
    ax.x_label("rank (1 = best)")
    svg.legend(
        left + 6,
        height - 10,
        [
            ("5–95% of draws", PALETTE[0], "line"),
            ("median rank", PALETTE[0], "dot"),
            ("published rank", PALETTE[2], "cross"),
        ],
        7,
        columns=3,
    )
    return svg.bytes()


def bump(history: pd.DataFrame, names: dict, title: str, top: int = 15) -> bytes:
    """Ranks across editions (a bump chart): one line per city, rank 1 at the top; the cities are
    the top `top` of the newest edition (labelled at both ends)."""
    editions = sorted(history["edition"].astype(str).unique())
    newest = history[history["edition"].astype(str) == editions[-1]]
    cities = newest.nsmallest(top, "rank_international")["city_id"].tolist()
    wide = (
        history.assign(edition=history["edition"].astype(str))
        .pivot_table(index="city_id", columns="edition", values="rank_international", aggfunc="first")
        .reindex(index=cities, columns=editions)
    )
    n_max = int(np.nanmax(wide.to_numpy(dtype=float)))  # the lowest rank the chosen cities reach
    label_w = max((text_width(f"{names.get(c, c)} {n_max}", 7) for c in cities), default=0) + 10
    # the city labels sit inside the plot area, left of the first edition and right of the last
    span = max(110.0 * (len(editions) - 1), (1.6 * len(editions) + 3.5) * 72 - 2 * label_w - 54)
    width = 44 + 2 * label_w + span + 10
    height = max(3.5 * 72.0, (0.3 * len(cities) + 1.2) * 72.0) + 20
    svg = Svg(width, height)
    unit = span / (len(editions) - 1) if len(editions) > 1 else span
    pad = label_w / unit + (0 if len(editions) > 1 else 0.5)
    ax = Axes(
        svg,
        (44, 24, width - 54, height - 24 - 44),
        (-pad, len(editions) - 1 + pad),
        (0.5, n_max + 0.5),
        y_down=True,
    )
    x = np.arange(len(editions))
    for k, cid in enumerate(cities):
        y = wide.loc[cid].to_numpy(dtype=float)
        colour = PALETTE[k % len(PALETTE)]
        have = ~np.isnan(y)
        # one polyline per run of editions the city has a rank in (a gap breaks the line)
        run: list[int] = []
        for i in [*range(len(x)), len(x)]:
            if i < len(x) and have[i]:
                run.append(i)
                continue
            if len(run) > 1:
                svg.polyline(ax.x(x[run]), ax.y(y[run]), colour, 1.6)
            run = []
        for i in np.flatnonzero(have):
            svg.circle(float(ax.x(x[i])), float(ax.y(y[i])), 2.8, colour)
        if have.any():
            first = int(np.argmax(have))
            svg.text(
                float(ax.x(x[first])) - 6,
                float(ax.y(y[first])),
                f"{names.get(cid, cid)} {int(y[first])}",
                7,
                "end",
                color=colour,
            )
        if have[-1]:
            svg.text(
                float(ax.x(x[-1])) + 6,
                float(ax.y(y[-1])),
                f"{int(y[-1])} {names.get(cid, cid)}",
                7,
                "start",
                color=colour,
            )
    ax.frame()
    ax.x_ticks(list(x), editions)
    ax.y_ticks([1.0] + [t for t in nice_ticks(1, n_max, 6) if t > 1 and t == int(t)])
    ax.x_label("edition")
    ax.y_label("international rank (1 = best)", 30)
    svg.text(width / 2, 6, title, 9, "middle", "top")
    return svg.bytes()
