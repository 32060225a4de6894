"""What changed between two releases: ranks, scores, cities and inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

METHOD_CHOICES = (
    "entropy_input",
    "zero_rule",
    "epsilon",
    "topsis_normalization",
    "weights_mode",
    "missing_policy",
    "scale",
)


def diff_releases(old: Path, new: Path) -> dict:
    """Compare two release folders (old -> new)."""
    a = pd.read_parquet(old / "index.parquet").set_index("city_id")
    b = pd.read_parquet(new / "index.parquet").set_index("city_id")
    ma = json.loads((old / "manifest.json").read_text())
    mb = json.loads((new / "manifest.json").read_text())
    common = a.index.intersection(b.index)
    cities = pd.DataFrame(
        {
            "name_en": b.loc[common, "name_en"],
            "rank_old": a.loc[common, "rank_international"].astype(int),
            "rank_new": b.loc[common, "rank_international"].astype(int),
            "score_old": a.loc[common, "final_score"].round(4),
            "score_new": b.loc[common, "final_score"].round(4),
        }
    )
    cities["rank_change"] = cities["rank_old"] - cities["rank_new"]  # positive = moved up
    cities["score_change"] = (cities["score_new"] - cities["score_old"]).round(4)
    cities["moved_by"] = _moved_by(a.loc[common], b.loc[common], ma, mb)
    cities = cities.sort_values("rank_new")
    ia = {i["source"]: i for i in ma["inputs"]}
    ib = {i["source"]: i for i in mb["inputs"]}
    inputs = []
    for s in sorted(set(ia) | set(ib)):
        old_id = ia.get(s, {}).get("snapshot_id")
        new_id = ib.get(s, {}).get("snapshot_id")
        if old_id != new_id:
            inputs.append(
                {
                    "source": s,
                    "old": old_id,
                    "new": new_id,
                    "edition_old": ia.get(s, {}).get("edition"),
                    "edition_new": ib.get(s, {}).get("edition"),
                }
            )
    other = {}
    for key in ("code_version",):
        if ma.get(key) != mb.get(key):
            other[key] = (ma.get(key), mb.get(key))
    if ma["methodology"]["sha256"] != mb["methodology"]["sha256"]:
        other["methodology"] = (ma["methodology"]["version"], mb["methodology"]["version"])
    for key in METHOD_CHOICES:  # a choice changed by an override, with the same methodology file
        if ma["methodology"].get(key) != mb["methodology"].get(key):
            other[f"methodology {key}"] = (ma["methodology"].get(key), mb["methodology"].get(key))
    return {
        "old": ma["release_id"],
        "new": mb["release_id"],
        "cities": cities.reset_index(),
        "editions": (str(ma.get("edition")), str(mb.get("edition"))),
        "added": sorted(set(b.index) - set(a.index)),
        "dropped": sorted(set(a.index) - set(b.index)),
        "inputs": inputs,
        "other": other,
    }


def dimension_contribution_changes(a: pd.DataFrame, b: pd.DataFrame, ma: dict, mb: dict) -> pd.DataFrame:
    """city x dimension: change of weight x dimension score (the part of the final score each
    dimension carries), old -> new. Their sum is the change of the final score when every
    dimension is scored in both releases."""
    wa, wb = ma["dimension_weights"]["weights"], mb["dimension_weights"]["weights"]
    dims = [d for d in wb if d in wa and f"{d}_score" in a.columns and f"{d}_score" in b.columns]
    return pd.DataFrame({d: b[f"{d}_score"] * wb[d] - a[f"{d}_score"] * wa[d] for d in dims}, index=a.index)


def _moved_by(a: pd.DataFrame, b: pd.DataFrame, ma: dict, mb: dict, top: int = 2) -> list[str]:
    """The dimensions that moved each city most: 'innovation +3.10, ecology -1.20' (points of the
    final score)."""
    delta = dimension_contribution_changes(a, b, ma, mb)
    dims = list(delta.columns)
    values = delta.to_numpy(dtype=float)
    size = np.where(np.isnan(values), -np.inf, np.abs(values))
    # the largest changes first; equal ones in the dimensions' order (a stable sort)
    order = np.argsort(-size, axis=1, kind="stable")[:, :top]
    out = []
    for row, cols in zip(values, order, strict=True):
        out.append(", ".join(f"{dims[k]} {row[k]:+.2f}" for k in cols if abs(row[k]) >= 0.005))
    return out


def changes_markdown(d: dict | None, release_id: str) -> str:
    if d is None:
        return f"# Changes in {release_id}\n\nFirst release: there is no previous release to compare with.\n"
    lines = [f"# Changes in {d['new']} (against {d['old']})", ""]
    moved = d["cities"][(d["cities"]["rank_change"] != 0) | (d["cities"]["score_change"].abs() >= 0.005)]
    lines += [
        f"- cities compared: {len(d['cities'])}; rank or score changed: {len(moved)}",
        f"- new cities: {', '.join(d['added']) or 'none'}",
        f"- dropped cities: {', '.join(d['dropped']) or 'none'}",
    ]
    for k, (o, n) in d["other"].items():
        lines.append(f"- {k}: {o} → {n}")
    lines += ["", "## Changed inputs", ""]
    if d["inputs"]:
        lines += ["| source | old snapshot | new snapshot |", "|---|---|---|"]
        lines += [f"| {i['source']} | {i['old'] or '—'} | {i['new'] or '—'} |" for i in d["inputs"]]
    else:
        lines.append("No input snapshot changed.")
    if d.get("editions") and d["editions"][0] != d["editions"][1]:
        lines += ["", f"Across editions: {d['editions'][0]} → {d['editions'][1]}."]
    lines += [
        "",
        "## Rank and score changes",
        "",
        "Moved by: the dimensions whose weighted score (weight × dimension score) changed most, in points "
        "of the final score.",
        "",
        "| city | rank (old → new) | change | score (old → new) | change | moved by |",
        "|---|---|---|---|---|---|",
    ]
    for r in d["cities"].itertuples():
        arrow = f"+{r.rank_change}" if r.rank_change > 0 else str(r.rank_change)
        lines.append(
            f"| {r.name_en} | {r.rank_old} → {r.rank_new} | {arrow if r.rank_change else '='} | "
            f"{r.score_old:.2f} → {r.score_new:.2f} | {r.score_change:+.2f} | {r.moved_by or '—'} |"
        )
    return "\n".join(lines) + "\n"
