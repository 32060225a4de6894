"""report/index.html: everything the 2020 report shows, for the cities a release holds, and more.

Self-contained: inline CSS, no CDN, charts as SVG files beside the page. It reads only the files
the release wrote, so it can be rebuilt from any release (`talent-index report`).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from types import GeneratorType

import numpy as np
import pandas as pd
from jinja2 import Environment, Template, select_autoescape

from scoring import Methodology
from tasks.report import charts
from tasks.store.storage import atomic_write_bytes, read_parquet_columns

TEMPLATE = (Path(__file__).with_name("template.html")).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _template() -> Template:
    """The report's template, compiled once per process (a backfill publishes one per edition)."""
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["fmt"] = _fmt
    return env.from_string(TEMPLATE)


MAX_ROWS = 50  # charts and dimension tables of large releases show the top cities
LARGE = 100  # above this many cities: the static ranking and cards show the top LARGE; every city is
# in the explorer (a sortable, filterable table and cards on demand built from data on the page)
RADAR_LABELS = {
    "economy": "Econ",
    "innovation": "Innov",
    "openness": "Open",
    "ecology": "Ecol",
    "welfare": "Welf",
    "affordability": "Afford",
}


def _fmt(v, nd=2):
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _rest_summary(ranked: pd.DataFrame, top: int) -> str:
    """What the charts of the top cities leave out, in one line."""
    rest = ranked["final_score"].iloc[top:].astype(float)
    return (
        f"The other {len(rest):,} cities score {rest.min():.2f} to {rest.max():.2f} "
        f"(median {rest.median():.2f}, quartiles {rest.quantile(0.25):.2f} and {rest.quantile(0.75):.2f})."
    )


def _span(values: pd.Series) -> str:
    """'2019', or '2016–2019' when the values of an indicator come from several years."""
    years = sorted({str(v) for v in values.dropna()} - {""})
    return "" if not years else years[0] if len(years) == 1 else f"{years[0]}–{years[-1]}"


COVERAGE_CHUNK = 250_000  # rows of coverage.csv read at a time (a 100,000-city release has 1.7 million)


def _coverage_summaries(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the report shows of coverage.csv, read a chunk of rows at a time: values by dimension,
    indicator and status (one column per status); the proxies by indicator, what they stand for and
    their transform (cities, in order of first appearance); each indicator's first source and its
    span of editions."""
    wanted = {"dimension", "indicator", "status", "stands_for", "transform", "source", "edition"}
    counts: list[pd.Series] = []
    proxies: list[pd.Series] = []
    sources: dict[str, str] = {}
    editions: dict[str, set[str]] = {}
    chunks = pd.read_csv(
        path, usecols=lambda c: c in wanted, dtype=str, keep_default_na=False, chunksize=COVERAGE_CHUNK
    )
    for cov in chunks:
        for col in ("stands_for", "transform"):
            if col not in cov:
                cov[col] = ""
        counts.append(cov.groupby(["dimension", "indicator", "status"]).size())
        proxies.append(
            cov[cov["status"] == "proxy"].groupby(["indicator", "stands_for", "transform"], sort=False).size()
        )
        for ind, g in cov.groupby("indicator", sort=False):
            sources.setdefault(ind, g["source"].iloc[0])
            editions.setdefault(ind, set()).update(g["edition"].unique())
    by_status = pd.concat(counts).groupby(level=[0, 1, 2]).sum().unstack(fill_value=0).reset_index()
    proxy = pd.concat(proxies).groupby(level=[0, 1, 2], sort=False).sum().rename("cities").reset_index()
    provenance = pd.DataFrame(
        {
            "indicator": sorted(sources),
            "source": [sources[i] for i in sorted(sources)],
            "edition": [_span(pd.Series(sorted(editions[i]), dtype=object)) for i in sorted(sources)],
        }
    )
    return by_status, proxy, provenance


# the columns of indicators.parquet the report shows (not the scoring's own: normalised values,
# weights, directions); an older release's has no status
INDICATOR_COLUMNS = ["city_id", "indicator", "value", "status", "rank_international", "rank_domestic"]


def _ints(values: pd.Series) -> list:
    """Whole numbers (ranks) as JSON: ints, None where missing."""
    return [None if v != v else int(v) for v in values.to_numpy(dtype=float, na_value=np.nan)]


def _scores(values: pd.Series) -> list[str]:
    """Scores as the cards print them (two decimals, a dash where missing)."""
    return ["—" if v != v else f"{v:.2f}" for v in values.to_numpy(dtype=float, na_value=np.nan)]


def _json_object(items) -> Iterator[str]:
    """The JSON text of an object, a member at a time: `items` yields (key, value); a value that is
    a generator is itself written a piece at a time (what it yields). The same text as json.dumps
    with separators (",", ":") and ensure_ascii=False."""
    yield "{"
    for n, (key, value) in enumerate(items):
        yield ("," if n else "") + json.dumps(key, ensure_ascii=False) + ":"
        if isinstance(value, GeneratorType):
            yield from value
        else:
            yield json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    yield "}"


def _city_data(idx: pd.DataFrame, ind: pd.DataFrame, methodology: Methodology, history: pd.DataFrame | None) -> str:
    """Every city of the release for the report's explorer, as gzip-compressed JSON in base64 (what
    keeps a 100,000-city page small; benchmarks/README.md has its size). Columns, one entry per city
    in rank order; values already formatted as the static cards print them. The JSON is compressed
    as it is written, a column at a time: the columns of 100,000 cities as Python objects and their
    whole text never stand in memory at once."""
    idx = idx.sort_values("rank_international", kind="stable")
    ids = idx["city_id"].tolist()
    dims = methodology.dimension_ids
    statuses = sorted({str(s) for s in ind["status"].dropna().unique()})
    code = {s: str(k) for k, s in enumerate(statuses)}
    by_indicator = dict(iter(ind.groupby("indicator", sort=False)))

    def indicator(i) -> dict:
        x = by_indicator[i.id].set_index("city_id").reindex(ids)
        st = x["status"].fillna("").astype(str).tolist()
        values = x["value"].to_numpy(dtype=float, na_value=np.nan).tolist()
        return {
            "value": [i.shown(v, s) for v, s in zip(values, st, strict=True)],
            "rank": _ints(x["rank_international"]),
            "rank_domestic": _ints(x["rank_domestic"]),
            "status": "".join([code.get(s, "?") for s in st]),
        }

    def history_items():
        if history is not None and history["edition"].nunique() > 1:
            for edition, g in history.groupby(history["edition"].astype(str)):
                g = g.set_index("city_id").reindex(ids)
                yield (
                    edition,
                    {
                        "rank": _ints(g["rank_international"]),
                        "score": [None if v == "—" else v for v in _scores(g["final_score"])],
                    },
                )

    members = (
        ("id", ids),
        ("name_en", _lazy(lambda: idx["name_en"].astype(str).tolist())),
        ("name_zh", _lazy(lambda: idx["name_zh"].fillna("").astype(str).tolist())),
        ("country", _lazy(lambda: idx["country"].fillna("").astype(str).tolist())),
        ("rank", _lazy(lambda: _ints(idx["rank_international"]))),
        ("rank_domestic", _lazy(lambda: _ints(idx["rank_domestic"]))),
        ("score", _lazy(lambda: _scores(idx["final_score"]))),
        (
            "dims",
            _json_object(
                (
                    d,
                    _lazy(
                        lambda d=d: {
                            "score": _scores(idx[f"{d}_score"]),
                            "rank": _ints(idx[f"{d}_rank_international"]),
                            "rank_domestic": _ints(idx[f"{d}_rank_domestic"]),
                        }
                    ),
                )
                for d in dims
            ),
        ),
        (
            "indicators",
            _json_object(
                (i.id, _lazy(lambda i=i: indicator(i))) for dim in methodology.dimensions for i in dim.indicators
            ),
        ),
        ("statuses", statuses),
        (
            "meta",
            {
                "dims": [{"id": d.id, "name": d.name_en} for d in methodology.dimensions],
                "indicators": [
                    {"id": i.id, "name": i.name_en, "dim": dim.id, "direction": "+" if i.direction > 0 else "−"}
                    for dim in methodology.dimensions
                    for i in dim.indicators
                ],
            },
        ),
        ("history", _json_object(history_items())),
    )
    gz = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip.compress(..., compresslevel=6, mtime=0), in pieces
    out = [gz.compress(part.encode("utf-8")) for part in _json_object(members)]
    out.append(gz.flush())
    return base64.b64encode(b"".join(out)).decode("ascii")


def _lazy(make) -> Iterator[str]:
    """A member's value made only when the JSON text reaches it (then written and dropped)."""
    yield json.dumps(make(), ensure_ascii=False, separators=(",", ":"))


def _changes_shown(changes: dict | None, large: int) -> dict | None:
    """The changes as the page shows them: every city up to `large`, else the `large` that moved
    most (CHANGES.md beside the report lists them all)."""
    if changes is None:
        return None
    cities = changes["cities"]
    shown = {**changes, "moved": len(cities), "shown": len(cities), "n_added": len(changes["added"])}
    shown["n_dropped"] = len(changes["dropped"])
    if len(cities) > large:
        order = cities["rank_change"].abs().sort_values(ascending=False, kind="stable").index[:large]
        shown["cities"] = cities.loc[order]
        shown["shown"] = large
    shown["added"], shown["dropped"] = changes["added"][:large], changes["dropped"][:large]
    return shown


def build_report(
    release: Path,
    out: Path,
    meta: dict,
    methodology: Methodology,
    changes: dict | None,
    large: int = LARGE,
) -> list[str]:
    """Write report/index.html and its charts into `out`; returns the file names written. A release
    of more than `large` cities gets the explorer, and its static ranking and cards stop at `large`."""
    idx = pd.read_parquet(release / "index.parquet")
    ind = read_parquet_columns(release / "indicators.parquet", INDICATOR_COLUMNS)
    coverage, proxies, provenance = _coverage_summaries(release / "coverage.csv")
    clusters = pd.read_csv(release / "clusters.csv")
    dims = methodology.dimension_ids
    dim_label = {d.id: d.name_en for d in methodology.dimensions}
    dim_zh = {d.id: d.name_zh for d in methodology.dimensions}
    weights = meta["dimension_weights"]["weights"]
    names = idx.set_index("city_id")["name_en"]
    files: dict[str, bytes] = {}

    # radar charts: top 10 (international ranks) and domestic cities (domestic ranks); short axis
    # labels so that neighbouring charts' labels never meet (the legend is in the caption)
    short = [RADAR_LABELS.get(d, d[:6]) for d in dims]
    top = idx.nsmallest(min(10, len(idx)), "rank_international").set_index("name_en")
    files["radar_top10.svg"] = charts.radar(
        top[[f"{d}_rank_international" for d in dims]],
        short,
        "Dimension ranks of the top 10 (international ranks)",
        len(idx),
    )
    dom = idx[idx["domestic"]].sort_values("rank_domestic").head(15).set_index("name_en")
    if len(dom):
        files["radar_domestic.svg"] = charts.radar(
            dom[[f"{d}_rank_domestic" for d in dims]].astype(float),
            short,
            "Dimension ranks of the domestic cities (domestic ranks)",
            len(dom),
        )
    head = idx.nsmallest(MAX_ROWS, "rank_international")
    contrib = pd.DataFrame({d: head[f"{d}_score"] * weights[d] for d in dims}).set_index(head["name_en"])
    files["contributions.svg"] = charts.stacked_contributions(contrib, dim_label)
    cl_table = None
    if len(clusters):
        cl_table = clusters.set_index("cluster")
        files["clusters.svg"] = charts.clusters(
            cl_table,
            ["final_score"] + [f"{d}_score" for d in dims],
            {"final_score": "Final", **{f"{d}_score": dim_label[d] for d in dims}},
        )
    regressions = []
    if (release / "regressions.csv").exists():
        regs = pd.read_csv(release / "regressions.csv")
        lines = pd.read_csv(release / "regression_lines.csv")
        wide = ind.pivot(index="city_id", columns="indicator", values="value")
        for _k, r in enumerate(regs.to_dict(orient="records")):
            pts = wide[[r["x"], r["y"]]].dropna().rename(columns={r["x"]: "x", r["y"]: "y"}).reset_index()
            line = lines[(lines["x_name"] == r["x"]) & (lines["y_name"] == r["y"])]
            fname = f"regression_{r['x']}.svg"
            files[fname] = charts.regression(
                pts, line, methodology.indicator(r["x"]).name_en, "foreign-born share (%)", r
            )
            regressions.append({**r, "file": fname})
    history = pd.read_parquet(release / "history.parquet") if (release / "history.parquet").exists() else None
    editions = [] if history is None else sorted(history["edition"].astype(str).unique())
    trajectories: dict[str, list] = {}
    if len(editions) > 1:
        files["ranks_across_editions.svg"] = charts.bump(
            history,
            names.to_dict(),
            f"Ranks across editions ({', '.join(editions)}): top {min(15, len(idx))} of {meta['edition']}",
        )
        for cid, g in history.sort_values("edition").groupby("city_id"):  # type: ignore[union-attr]  # editions > 1
            trajectories[cid] = [
                {
                    "edition": str(r.edition),
                    "rank": _fmt(r.rank_international),
                    "score": _fmt(r.final_score),
                    "release": r.release_id,
                }
                for r in g.itertuples()
            ]
    unc = shares = None
    if (release / "uncertainty.csv").exists():
        unc = pd.read_csv(release / "uncertainty.csv").set_index("city_id")
        shares = pd.read_csv(release / "uncertainty_shares.csv")
        u = unc.nsmallest(MAX_ROWS, "nominal_rank").rename(index=names)
        files["rank_intervals.svg"] = charts.rank_intervals(u)

    # tables
    explorer = len(idx) > large
    ranked = idx.sort_values("rank_international", kind="stable")
    ranking = [
        {
            "rank": int(r.rank_international),
            "name_en": r.name_en,
            "name_zh": r.name_zh,
            "score": _fmt(r.final_score),
            "country": r.country,
            "rank_domestic": _fmt(r.rank_domestic),
        }
        for r in (ranked.head(large) if explorer else ranked).itertuples()
    ]
    dim_tables = []
    for d in dims:
        intl = idx.sort_values(f"{d}_rank_international").head(MAX_ROWS)
        dom_rows = idx[idx["domestic"]].sort_values(f"{d}_rank_domestic").head(MAX_ROWS)
        dim_tables.append(
            {
                "id": d,
                "name": dim_label[d],
                "name_zh": dim_zh[d],
                "weight": weights[d],
                "international": [
                    (int(r[f"{d}_rank_international"]), r["name_en"], _fmt(r[f"{d}_score"])) for _, r in intl.iterrows()
                ],
                "domestic": [
                    (int(r[f"{d}_rank_domestic"]), r["name_en"], r["name_zh"], _fmt(r[f"{d}_score"]))
                    for _, r in dom_rows.iterrows()
                ],
            }
        )
    shown = ranked.head(large)
    ind_of = {(x["city_id"], x["indicator"]): x for x in ind[ind["city_id"].isin(shown["city_id"])].to_dict("records")}
    cards = []
    for r in shown.itertuples():
        rows = []
        for dim in methodology.dimensions:
            for i in dim.indicators:
                x = ind_of[r.city_id, i.id]
                rank = f"{int(x['rank_international'])}" + (
                    f" ({int(x['rank_domestic'])})" if not pd.isna(x["rank_domestic"]) else ""
                )
                rows.append(
                    {
                        "dimension": dim.name_en,
                        "indicator": i.name_en,
                        "value": i.shown(float(x["value"]), str(x.get("status", ""))),
                        "rank": rank,
                        "status": x.get("status", ""),
                        "direction": "+" if i.direction > 0 else "−",
                    }
                )
        cards.append(
            {
                "id": r.city_id,
                "name_en": r.name_en,
                "name_zh": r.name_zh,
                "country": r.country,
                "score": _fmt(r.final_score),
                "rank": int(r.rank_international),
                "rank_domestic": _fmt(r.rank_domestic),
                "dims": [
                    {
                        "name": dim_label[d],
                        "score": _fmt(getattr(r, f"{d}_score")),
                        "rank": int(getattr(r, f"{d}_rank_international")),
                        "rank_domestic": _fmt(getattr(r, f"{d}_rank_domestic")),
                    }
                    for d in dims
                ],
                "indicators": rows,
                "trajectory": trajectories.get(r.city_id, []),
            }
        )
    for col in ("real", "proxy", "illustrative", "imputed"):
        if col not in coverage:
            coverage[col] = 0
    fid_info = meta.get("fidelity") or {}
    fidelity = (
        pd.read_csv(release / fid_info["file"])
        if fid_info.get("file") and (release / fid_info["file"]).exists()
        else None
    )
    coverage = coverage.merge(provenance, on="indicator", how="left")
    audit = pd.read_csv(release / "audit_2020.csv") if (release / "audit_2020.csv").exists() else None
    variants = (
        pd.read_csv(release / "audit_2020_variants.csv") if (release / "audit_2020_variants.csv").exists() else None
    )
    source_tables = [
        {**t, "rows": pd.read_csv(release / t["file"], dtype=str, keep_default_na=False).to_dict(orient="records")}
        for t in meta.get("source_tables") or []
        if (release / t["file"]).exists()
    ]

    html = _template().render(
        meta=meta,
        ranking=ranking,
        dims=dim_tables,
        cards=cards,
        files=files,
        regressions=regressions,
        clusters=None if cl_table is None else cl_table.reset_index().to_dict(orient="records"),
        cluster_cols=["final_score"] + [f"{d}_score" for d in dims],
        dim_label=dim_label,
        coverage=coverage.to_dict(orient="records"),
        unc=None
        if unc is None
        else unc.join(names).nsmallest(large, "nominal_rank").reset_index().to_dict(orient="records"),
        shares=None if shares is None else shares.to_dict(orient="records"),
        audit=None if audit is None else audit.to_dict(orient="records"),
        fidelity=None if fidelity is None else fidelity.to_dict(orient="records"),
        fidelity_info=fid_info,
        proxies=proxies.to_dict(orient="records"),
        notes=meta.get("notes") or [],
        variants=None if variants is None else variants.to_dict(orient="records"),
        source_tables=source_tables,
        changes=_changes_shown(changes, large),
        weights=weights,
        methodology=methodology,
        radar_legend=", ".join(f"{RADAR_LABELS.get(d, d[:6])} = {dim_label[d]}" for d in dims),
        history_editions=editions,
        truncated={"rows": MAX_ROWS, "cards": large, "cities": len(idx)} if len(idx) > MAX_ROWS else None,
        cities=len(idx),
        explorer=explorer,
        city_data=_city_data(idx, ind, methodology, history) if explorer else None,
        rest=None if len(idx) <= MAX_ROWS else _rest_summary(ranked, MAX_ROWS),
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    atomic_write_bytes(out / "index.html", html.encode("utf-8"))
    return ["index.html", *files]
