"""Render benchmarks/README.md from a results file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common import RESULTS, ROOT

INTRO = """# Benchmarks

`make bench` installs the peers (dependency group `bench`: exactextract, rasterstats, pymcdm,
scikit-criteria), runs every benchmark and writes `benchmarks/results/<date>.json` and this table.
Figures are medians of {runs} runs (min–max in brackets) unless a table says otherwise (the
100,000-city refresh takes minutes a run: its row says how many), measured on the machine named
below. Ratios below 1 mean ours is faster. Speed is never asserted in tests. Section 6 is not part
of `make bench` (it needs a second checkout): `benchmarks/versus.py` says how to run it.

"""


def ms(s):
    return f"{s['median'] * 1e3:.2f} ms ({s['min'] * 1e3:.2f}–{s['max'] * 1e3:.2f})"


def sec(s):
    return f"{s['median']:.2f} s ({s['min']:.2f}–{s['max']:.2f})"


def merged(path: Path | None) -> tuple[dict, dict[str, str]]:
    """The results of `path`, with each section it lacks taken from the newest earlier file that has
    it (a benchmark run on its own adds its section); section -> the file it comes from."""
    files = sorted(RESULTS.glob("*.json"))
    if path is not None:
        files = [f for f in files if f.name <= path.name]
    doc: dict = {}
    origin: dict[str, str] = {}
    for f in files:
        for k, v in json.loads(f.read_text()).items():
            doc[k] = v
            origin[k] = f.name
    return doc, origin


def write_readme(path: Path | None = None) -> Path:
    path = path or sorted(RESULTS.glob("*.json"))[-1]
    doc, origin = merged(path)
    m = doc["machine"]
    names = {
        "scoring_kernel": "1",
        "monte_carlo": "2",
        "nightlights": "3",
        "end_to_end": "4",
        "imports": "5",
        "versus": "6",
    }
    by_file: dict[str, list[str]] = {}
    for key, number in names.items():
        if key in origin:
            by_file.setdefault(origin[key], []).append(number)
    where = "; ".join(
        f"`{(RESULTS / f).relative_to(ROOT)}`: section {', '.join(n)}" for f, n in sorted(by_file.items())
    )
    lines = [
        INTRO.format(runs=5),
        f"Machine: {m['cpus']} CPUs, {m['machine']}, Python {m['python']} (results: {where}).",
        "",
    ]
    mb = doc.get("make_bench")
    if mb:
        gen = mb.get("generated_seconds") or {}
        made = (
            (
                f", of which {sum(gen.values()):.0f} s generating inputs that were not in `benchmarks/.cache` yet ("
                + ", ".join(f"{k} {v:.0f} s" for k, v in gen.items())
                + ")"
            )
            if gen
            else " (every generated input was already in `benchmarks/.cache`)"
        )
        lines += [f"This `make bench` took {mb['seconds'] / 60:.1f} min after installing the peers{made}.", ""]
    k = doc.get("scoring_kernel")
    if k:
        lines += [
            "## 1. Scoring kernel: entropy weights + TOPSIS for six dimensions (2, 2, 3, 2, 2, 6 indicators) and the final index",
            "",
            "| cities | ours | pymcdm | scikit-criteria | ours / pymcdm (pairwise) | max score difference |",
            "|---|---|---|---|---|---|",
        ]
        for n, r in k.items():
            sk = ms(r["scikit-criteria"]["seconds"]) if "scikit-criteria" in r else "not run (too slow)"
            diff = max(r["pymcdm"]["max_abs_diff_vs_ours"], r.get("scikit-criteria", {}).get("max_abs_diff_vs_ours", 0))
            lines.append(
                f"| {int(n):,} | {ms(r['ours']['seconds'])} | {ms(r['pymcdm']['seconds'])} | {sk} | "
                f"{r['ratio_ours_over_pymcdm']['median']:.2f} | {diff:.1e} |"
            )
        lines.append("")
    mc = doc.get("monte_carlo")
    if mc:
        lines += [
            "## 2. Uncertainty analysis: 10,000 Monte Carlo draws, 30 cities",
            "",
            "| method | draws per second | time for 10,000 draws |",
            "|---|---|---|",
            f"| ours (factorial design, dimension scores precomputed per choice combination) | {mc['ours_draws_per_s']:,.0f} | {sec(mc['ours_10000_draws_seconds'])} |",
            f"| Python loop calling pymcdm per draw | {mc['pymcdm_loop_draws_per_s']:,.0f} | {10_000 / mc['pymcdm_loop_draws_per_s']:.1f} s (extrapolated from {mc['loop_draws_timed']:,}) |",
            "",
            f"Speed-up: **{mc['speedup_ours_over_loop']:.0f}×** the loop.",
            "",
        ]
    nl = doc.get("nightlights")
    if nl:
        lines += [
            f"## 3. Night-light zonal sums: {nl['polygons']:,} polygons on a {nl['raster']}, GDAL_CACHEMAX={nl['gdal_cachemax_mib']} MiB, fresh processes",
            "",
            "| raster | method | wall time | peak memory | ours / method |",
            "|---|---|---|---|---|",
        ]
        for label, r in nl["results"].items():
            for meth in ("ours", "exactextract", "rasterstats"):
                ratio = "—" if meth == "ours" else f"{r[f'ratio_ours_over_{meth}']:.2f}"
                lines.append(
                    f"| {label} | {meth} | {sec(r[meth]['seconds'])} | {r[meth]['peak_mib']['max']:.0f} MiB | {ratio} |"
                )
        c = next(iter(nl["results"].values()))["cell_centre_vs_exact_coverage"]
        lines += [
            "",
            f"Cell-centre masks (ours, rasterstats) against exact partial-cell coverage (exactextract): "
            f"median relative difference of the sums {c['median_rel_diff'] * 100:.2f}%, maximum {c['max_rel_diff'] * 100:.2f}% "
            "(on generated noise; real urban edges differ more).",
            "",
        ]
    e2e = doc.get("end_to_end")
    if e2e:
        lines += [
            "## 4. End-to-end offline refresh on generated recordings",
            "",
            "`talent-index refresh --offline` in a fresh process per run (runs per size in the table), against one loopback "
            "Prefect server (SQLite) started for the benchmark. Our work and GX validation are timed inside "
            "the same run, in the flow's tasks; overhead = wall time − our work (Prefect API calls and "
            "bookkeeping, interpreter start-up, imports). Every value is generated (illustrative).",
            "",
            "Per city: above the 30-city row, (wall(n) − wall(30)) / (n − 30), the same for peak memory.",
            "",
            "| cities | runs | wall time | our work | of which GX validation | overhead share | GX share | peak memory "
            "| per city: time, memory | report |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        base = e2e.get("30")
        for n, r in e2e.items():
            if "work_seconds" not in r:
                continue  # an older layout
            f, w, g = r["flow_seconds"], r["work_seconds"], r["gx_seconds"]
            per = "—"
            if base and int(n) > 30:
                dt = (f["median"] - base["flow_seconds"]["median"]) / (int(n) - 30)
                dm = (r["peak_mib"] - base["peak_mib"]) * 1024 / (int(n) - 30)
                per = f"{dt * 1000:.2f} ms, {dm:.1f} KiB"
            rep = f"{r['report_mib']:.1f} MiB" if r.get("report_mib") is not None else "—"
            lines.append(
                f"| {int(n):,} | {f.get('runs', 5)} | {f['median']:.1f} s ({f['min']:.1f}–{f['max']:.1f}) | "
                f"{w['median']:.1f} s | {g['median']:.1f} s | {r['overhead_share']['median'] * 100:.0f}% | "
                f"{r['gx_share']['median'] * 100:.0f}% | {r['peak_mib']:.0f} MiB | {per} | {rep} |"
            )
        for n, r in e2e.items():
            o = r.get("report_open")
            if o and "page" in o:
                lines += [
                    "",
                    f"The report of {int(n):,} cities ({r['report_mib']:.1f} MiB) opens and builds its explorer in "
                    f"headless Chromium in {o['page']['median']:.1f} s ({o['page']['min']:.1f}–{o['page']['max']:.1f}, "
                    f"{o['page']['runs']} runs, until `--dump-dom` returns); the same browser opens an empty page in "
                    f"{o['blank']['median']:.1f} s."
                    + (
                        f" The page itself measures {o['explorer_ready']['median']:.1f} s from navigation to the explorer "
                        "built (`performance.now()`)."
                        if "explorer_ready" in o
                        else ""
                    )
                    + (f" {o['note']}" if o.get("note") else ""),
                ]
        cold = {n: r["temporary_server_run"] for n, r in e2e.items() if "temporary_server_run" in r}
        for n, r in cold.items():
            lines += [
                "",
                f"With the temporary server `make run` starts (no PREFECT_API_URL), one run of {int(n):,} "
                f"cities: {r['seconds']:.1f} s wall, {r['work_seconds']:.1f} s our work, "
                f"peak {r['peak_mib']:.0f} MiB.",
            ]
        lines.append("")
    imp = doc.get("imports")
    if imp:
        base = imp["interpreter_start"]["median"]
        lines += [
            "## 5. Import times, fresh interpreters",
            "",
            f"Why some imports sit inside functions (`pyproject.toml`, rule PLC0415); measured "
            f"`{origin['imports'].removesuffix('.json')}`. An interpreter alone starts in {base:.2f} s.",
            "",
            "| module | import (interpreter start included) |",
            "|---|---|",
        ]
        for module, r in imp.items():
            if module != "interpreter_start":
                lines.append(f"| {r['label']} | {sec(r)} |")
        lines.append("")
    vs = doc.get("versus")
    if vs:
        lines += [
            f"## 6. Against {vs['against']}: per-city cost",
            "",
            "`benchmarks/versus.py`: "
            + (
                f"{vs['repeats']} runs of `talent-index refresh --offline` per size and checkout, the checkouts "
                "alternating, each figure the median run's (every run's wall time in brackets), "
                if vs.get("repeats", 1) > 1
                else "one `talent-index refresh --offline` per size and checkout, "
            )
            + "with the temporary "
            f"server (as `make run`), each checkout on recordings from its own generator; measured "
            f"`{origin['versus'].removesuffix('.json')}`. Per city: above the 30-city run of the same checkout. "
            + (vs.get("note") or ""),
            "",
            "| cities | checkout | wall time | our work | peak memory | per city: time | per city: memory | report |",
            "|---|---|---|---|---|---|---|---|",
        ]
        sizes = vs["sizes"]
        ours_name = f"this checkout ({vs['checkout']})" if vs.get("checkout") else "this checkout"
        ratios = []
        for n, pair in sizes.items():
            base = sizes.get("30")
            if base and int(n) > 30:
                cost = {
                    who: (
                        (pair[who]["seconds"] - base[who]["seconds"]) / (int(n) - 30),
                        (pair[who]["peak_mib"] - base[who]["peak_mib"]) / (int(n) - 30),
                    )
                    for who in ("ours", "theirs")
                }
                ratios.append(
                    f"| {int(n):,} | {cost['ours'][0] / cost['theirs'][0]:.2f} | {cost['ours'][1] / cost['theirs'][1]:.2f} |"
                )
            for who, name in (("theirs", vs["against"]), ("ours", ours_name)):
                r, b = pair[who], sizes.get("30", {}).get(who)
                per_t = per_m = "—"
                if b and int(n) > 30:
                    per_t = f"{(r['seconds'] - b['seconds']) * 1000 / (int(n) - 30):.2f} ms"
                    per_m = f"{(r['peak_mib'] - b['peak_mib']) * 1024 / (int(n) - 30):.1f} KiB"
                rep = f"{r['report_mib']:.1f} MiB" if r.get("report_mib") is not None else "—"
                spread = (
                    " (" + ", ".join(f"{x:.1f}" for x in r["runs_seconds"]) + ")"
                    if len(r.get("runs_seconds", [])) > 1
                    else ""
                )
                lines.append(
                    f"| {int(n):,} | {name} | {r['seconds']:.1f} s{spread} | {r['work_seconds']:.1f} s | "
                    f"{r['peak_mib']:.0f} MiB | {per_t} | {per_m} | {rep} |"
                )
        lines.append("")
        if ratios:
            lines += [
                f"Per city, this checkout against {vs['against']} (below 1: cheaper; the issue asks for at most 0.5):",
                "",
                "| cities | time per city | memory per city |",
                "|---|---|---|",
                *ratios,
                "",
            ]
        if vs.get("workers_note"):
            lines += [vs["workers_note"], ""]
    out = ROOT / "benchmarks" / "README.md"
    out.write_text("\n".join(lines) + "\n")
    return out


if __name__ == "__main__":
    print(write_readme(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
