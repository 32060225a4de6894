"""matplotlib charts of the report, as self-contained SVG (text as paths, no external fonts)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

plt.rcParams.update(
    {
        "svg.fonttype": "path",
        "svg.hashsalt": "talent-index",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948"]


def _svg(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def radar(ranks: pd.DataFrame, labels: list[str], title: str, n_max: int) -> bytes:
    """Small multiples: one radar of dimension ranks per city (outer ring = rank 1, first dimension
    at the top, clockwise). Drawn as polygons on one flat Axes (polar Axes are slow to lay out).
    `labels` should be short (a few letters): the cells leave room for them so that the labels of
    neighbouring charts never meet."""
    cities = list(ranks.index)
    cols = 5
    rows = max(1, int(np.ceil(len(cities) / cols)))
    k = len(labels)
    angle = np.pi / 2 - 2 * np.pi * np.arange(k) / k
    ux, uy = np.cos(angle), np.sin(angle)
    dx, dy = 3.6, 3.4  # cell size in radii (labels and title need room around the unit circle)
    fig = plt.figure(figsize=(cols * 2.7, rows * 2.55 + 0.4))
    ax = fig.add_axes((0, 0, 1, rows * 2.5 / (rows * 2.5 + 0.4)))
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.set_xlim(-dx / 2, dx * (cols - 0.5))
    ax.set_ylim(-dy * (rows - 0.5), dy / 2)
    rings = [0.25, 0.5, 0.75, 1.0]
    for i, city in enumerate(cities):
        cx, cy = (i % cols) * dx, -(i // cols) * dy
        for ring in rings:
            ax.fill(cx + ring * ux, cy + ring * uy, fill=False, edgecolor="#cccccc", lw=0.5)
        for x, y in zip(ux, uy, strict=True):
            ax.plot([cx, cx + x], [cy, cy + y], color="#cccccc", lw=0.5)
        r = ranks.loc[city].to_numpy(dtype=float)
        radius = np.clip((n_max + 1 - r) / n_max, 0, 1)  # rank 1 -> outermost ring
        px, py = cx + radius * ux, cy + radius * uy
        ax.fill(px, py, color=PALETTE[0], alpha=0.25, lw=0)
        ax.plot(np.append(px, px[0]), np.append(py, py[0]), color=PALETTE[0], lw=1.2)
        for lab, v, x, y in zip(labels, r, ux, uy, strict=True):
            ha = "center" if abs(x) < 0.2 else ("left" if x > 0 else "right")
            va = "center" if abs(y) < 0.2 else ("bottom" if y > 0 else "top")
            ax.text(cx + 1.12 * x, cy + 1.12 * y, f"{lab}\n{int(v)}", fontsize=6, ha=ha, va=va, multialignment="center")
        ax.text(cx, cy + 1.5, str(city), fontsize=8, ha="center", va="bottom")
    fig.suptitle(title, fontsize=10)
    return _svg(fig)


def stacked_contributions(contrib: pd.DataFrame, labels: dict[str, str]) -> bytes:
    """Horizontal stacked bars: each dimension's weighted contribution to the final score."""
    fig, ax = plt.subplots(figsize=(8, max(3, 0.26 * len(contrib) + 1)))
    left = np.zeros(len(contrib))
    y = np.arange(len(contrib))[::-1]
    for k, col in enumerate(contrib.columns):
        ax.barh(y, contrib[col], left=left, color=PALETTE[k % len(PALETTE)], label=labels.get(col, col), height=0.75)
        left += contrib[col].to_numpy()
    ax.set_yticks(y)
    ax.set_yticklabels(contrib.index, fontsize=7)
    ax.set_xlabel("weighted dimension score (sum = final score)")
    ax.legend(ncol=3, fontsize=7, loc="lower right", frameon=False)
    return _svg(fig)


def clusters(table: pd.DataFrame, columns: list[str], labels: dict[str, str]) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(1, len(table))
    x = np.arange(len(columns))
    for k, (name, row) in enumerate(table.iterrows()):
        ax.bar(x + k * width, row[columns].to_numpy(float), width=width, label=name, color=PALETTE[k % len(PALETTE)])
    ax.set_xticks(x + width * (len(table) - 1) / 2)
    ax.set_xticklabels([labels.get(c, c) for c in columns], fontsize=7)
    ax.set_ylim(45, 100)
    ax.set_ylabel("mean score")
    ax.legend(fontsize=7, frameon=False, ncol=4)
    return _svg(fig)


def regression(points: pd.DataFrame, line: pd.DataFrame, x_label: str, y_label: str, summary: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    ax.fill_between(line["x"], line["lower"], line["upper"], color=PALETTE[0], alpha=0.2, label="95% confidence band")
    ax.plot(line["x"], line["fit"], color=PALETTE[0], lw=1.5, label="fitted line")
    ax.scatter(points["x"], points["y"], s=14, color=PALETTE[2], zorder=3)
    for _, p in points.iterrows() if len(points) <= 60 else []:
        ax.annotate(str(p["city_id"]), (p["x"], p["y"]), fontsize=5, xytext=(2, 2), textcoords="offset points")
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(
        f"slope {summary['slope']:.3g}, p = {summary['p_value']:.2g}, R² = {summary['r_squared']:.2f}", fontsize=8
    )
    ax.legend(fontsize=6, frameon=False)
    return _svg(fig)


def rank_intervals(unc: pd.DataFrame) -> bytes:
    """Median rank with its 5-95% interval, and the nominal rank."""
    u = unc.sort_values("nominal_rank")
    fig, ax = plt.subplots(figsize=(7, max(3, 0.24 * len(u) + 1)))
    y = np.arange(len(u))[::-1]
    ax.hlines(y, u["p05_rank"], u["p95_rank"], color=PALETTE[0], lw=2, label="5–95% of draws")
    ax.plot(u["median_rank"], y, "o", color=PALETTE[0], ms=4, label="median rank")
    ax.plot(u["nominal_rank"], y, "x", color=PALETTE[2], ms=5, label="published rank")
    ax.set_yticks(y)
    ax.set_yticklabels(u.index, fontsize=7)
    ax.invert_xaxis()
    ax.set_xlabel("rank (1 = best)")
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    return _svg(fig)


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
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(editions) + 3.5), max(3.5, 0.3 * len(cities) + 1.2)))
    x = np.arange(len(editions))
    for k, cid in enumerate(cities):
        y = wide.loc[cid].to_numpy(dtype=float)
        colour = PALETTE[k % len(PALETTE)]
        ax.plot(x, y, "-o", color=colour, lw=1.6, ms=4)
        first = int(np.argmax(~np.isnan(y))) if (~np.isnan(y)).any() else None
        if first is not None:
            ax.annotate(
                f"{names.get(cid, cid)} {int(y[first])}",
                (x[first], y[first]),
                xytext=(-6, 0),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=7,
                color=colour,
            )
        if not np.isnan(y[-1]):
            ax.annotate(
                f"{int(y[-1])} {names.get(cid, cid)}",
                (x[-1], y[-1]),
                xytext=(6, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=7,
                color=colour,
            )
    ax.set_xticks(x)
    ax.set_xticklabels(editions)
    ax.set_xlim(-0.9 if len(editions) > 1 else -1.5, len(editions) - 0.1 if len(editions) > 1 else 1.5)
    ax.set_ylim(n_max + 0.5, 0.5)
    ax.set_ylabel("international rank (1 = best)")
    ax.set_xlabel("edition")
    ax.set_title(title, fontsize=9)
    return _svg(fig)
