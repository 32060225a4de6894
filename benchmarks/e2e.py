"""End-to-end offline refresh on generated recordings for 30, 1,000 and 10,000 cities.

For each size a registry, sources.yaml and recordings in the real markup are generated once under
benchmarks/.cache/e2e-<n>/ (every value illustrative). Then `talent-index refresh --offline` runs
5 times per size, each in a fresh process, against one loopback Prefect server started for the
benchmark (deployments run against a real server): wall time and peak memory of the process, and,
from inside the same run (TALENT_INDEX_TIMINGS), the seconds spent in our own work and in GX
validation within the flow's tasks. Orchestration overhead = wall time - our work (Prefect's API
calls, subflow and task bookkeeping, interpreter start-up and imports). One more 10,000-city run
uses the temporary server, as `make run` does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import CACHE, GENERATED, ROOT, stats

QOL = [
    "Quality of Life Index",
    "Purchasing Power Index",
    "Safety Index",
    "Health Care Index",
    "Cost of Living Index",
    "Property Price to Income Ratio",
    "Traffic Commute Time Index",
    "Pollution Index",
    "Climate Index",
]
RANGES = [(80, 190), (30, 130), (20, 85), (40, 80), (25, 130), (4, 45), (20, 55), (15, 90), (40, 98)]
CURATED = {
    "economic_sustainability": ("index (0-1)", 0.2, 1.0),
    "rd_intensity": ("score (0-100)", 20, 95),
    "education_spending_share": ("percent", 8, 22),
    "foreign_born_share": ("percent", 0.1, 60),
    "international_students": ("students", 1000, 120000),
    "social_security_index": ("score (0-100)", 30, 95),
    "physician_density": ("per 10,000 people", 10, 70),
}


def generate(n: int, root: Path) -> Path:
    import yaml
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rec = root / "recordings"
    for d in ("numbeo", "hurun", "gawc", "night_lights"):
        (rec / d).mkdir(parents=True)
    rng = np.random.default_rng(n)
    ids = [f"c{i:05d}" for i in range(n)]
    names = [f"City {i:05d}" for i in range(n)]
    domestic = [i % 8 == 0 for i in range(n)]
    lat = rng.uniform(-50, 60, n)
    lon = rng.uniform(-170, 170, n)
    with open(root / "cities.csv", "w") as f:
        f.write(
            "city_id,name_en,name_zh,country,iso2,domestic,cluster,lat,lon,boundary_radius_km,numbeo_name,"
            "numbeo_slug,gawc_names,hurun_names,report_tier_2020\n"
        )
        for i in range(n):
            f.write(
                f"{ids[i]},{names[i]},城市{i},Country {i % 50},X{i % 50},{str(domestic[i]).lower()},,{lat[i]:.4f},"
                f'{lon[i]:.4f},10,"{names[i]}, Country {i % 50}",City-{i:05d},{names[i]},{names[i]},Beta\n'
            )
    cfg = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    cfg["curated"]["url"] = f"file://{root / 'curated.csv'}"
    (root / "sources.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    index = {}

    def add(source, url, name, body, ctype="text/html; charset=utf-8"):
        (rec / source / name).write_bytes(body if isinstance(body, bytes) else body.encode())
        index[url] = {"source": source, "file": f"{source}/{name}", "status": 200, "headers": {"content-type": ctype}}

    vals = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in RANGES]).round(2)
    head = "".join(f"<th><div>{h}</div></th>" for h in ["Rank", "City", *QOL])
    rows = "\n".join(
        '<tr style="width: 100%"><td></td><td class="cityOrCountryInIndicesTable">'
        f"{names[i]}, Country {i % 50}</td>"
        + "".join(f'<td style="text-align: right">{v}</td>' for v in vals[i])
        + "</tr>"
        for i in np.argsort(-vals[:, 0])
    )
    add(
        "numbeo",
        "https://www.numbeo.com/quality-of-life/rankings.jsp?title=2020",
        "ranking.html",
        f'<html><head><title>Ranking</title></head><body><table id="t2" class="stripe"><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{rows}\n</tbody></table></body></html>",
    )
    salary = rng.uniform(500, 5000, n)
    rent = salary * rng.uniform(0.2, 0.9, n)
    for i in range(n):
        add(
            "numbeo",
            f"https://www.numbeo.com/cost-of-living/in/City-{i:05d}?displayCurrency=EUR",
            f"col-{ids[i]}.html",
            '<html><head><title>Cost of living</title></head><body><table class="data_wide_table new_bar_table">'
            "<tr><th>Rent Per Month</th></tr>"
            f'<tr><td>Apartment (1 bedroom) in City Centre</td><td class="priceValue">{rent[i]:,.2f}&nbsp;&#8364;</td><td></td></tr>'
            f'<tr><td>Average Monthly Net Salary (After Tax)</td><td class="priceValue">{salary[i]:,.2f}&nbsp;&#8364;</td><td></td></tr>'
            "</table></body></html>",
        )
    counts = rng.poisson(0.8, n)
    comp, k = [], 0
    for i in range(n):
        for _ in range(counts[i]):
            k += 1
            comp.append(
                f"<tr><td>{k}</td><td>Company {k}</td><td>{rng.uniform(1, 20):.1f}</td><td>{names[i]}</td>"
                f"<td>Country {i % 50}</td><td>AI</td></tr>"
            )
    add(
        "hurun",
        cfg["hurun"]["url"],
        "list.html",
        "<html><body><table><tr><th>Rank</th><th>Company</th><th>Valuation (US$bn)</th><th>Headquarters</th>"
        f"<th>Country</th><th>Industry</th></tr>{''.join(comp)}</table></body></html>",
    )
    add(
        "gawc",
        cfg["gawc"]["tiers_url"],
        "tiers.html",
        "<html><body><p><b>Beta</b></p><p>" + "<br>".join(names) + "</p></body></html>",
    )
    conn = "Rank,City,Country,GNC_abs,GNC_rel(%)\n" + "".join(
        f"{i + 1},{names[i]},Country {i % 50},{100000 - i},{100 - i * 50 / n:.4f}\n" for i in range(n)
    )
    add("gawc", cfg["gawc"]["connectivity_url"], "conn.csv", conn, "text/csv")
    res = 15 / 3600
    for i in range(n):
        size = 48
        data = rng.gamma(0.8, 5.0, (size, size)).astype("float32")
        with MemoryFile() as mem:
            with mem.open(
                driver="GTiff",
                width=size,
                height=size,
                count=1,
                dtype="float32",
                crs="EPSG:4326",
                transform=from_origin(lon[i] - size / 2 * res, lat[i] + size / 2 * res, res, res),
                nodata=-999.0,
            ) as ds:
                ds.write(data, 1)
            add("night_lights", f"sample://night_lights/2020/{ids[i]}.tif", f"{ids[i]}.tif", mem.read(), "image/tiff")
    with open(root / "curated.csv", "w") as f:
        f.write("city_id,indicator,value,unit,publication,edition,table_or_page,date_entered,status,note\n")
        for i in range(n):
            for ind, (unit, lo, hi) in CURATED.items():
                f.write(f'{ids[i]},{ind},{rng.uniform(lo, hi):.3f},"{unit}",generated,2020,,2026-11-26,illustrative,\n')
    (rec / "index.json").write_text(json.dumps(index))
    (root / "done").write_text("ok")
    return root


def _free_port() -> int:
    import socket

    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


class LoopbackServer:
    """`prefect server start` on loopback (SQLite under benchmarks/.cache), started once for all flow
    runs, as deployments run against a real server; started and stopped with the service helpers of
    `talent-index server up/down` (pid and log in benchmarks/.cache/prefect-server/)."""

    def __enter__(self):
        from tasks import ops

        os.environ["TALENT_INDEX_SERVICE_DIR"] = str(CACHE / "prefect-server")
        self.url = f"http://127.0.0.1:{_free_port()}/api"
        env = {**ops._env(self.url), "PREFECT_HOME": str(CACHE / "prefect-server-home")}
        ops._start(
            "server",
            [
                ops._prefect(),
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                self.url.split(":")[-1].removesuffix("/api"),
            ],
            env,
        )
        try:
            ops.wait_healthy(self.url, timeout=180)
        except Exception:
            ops._stop("server")
            raise
        return self

    def __exit__(self, *exc):
        from tasks import ops

        ops._stop("server", timeout=60)


def run_once(root: Path, api_url: str | None) -> dict:
    """One `talent-index refresh --offline` in a fresh process: wall time, our work and GX time inside
    the flow's tasks (TALENT_INDEX_TIMINGS), peak memory. `api_url` None = temporary server."""
    home = root / "home-flow"
    shutil.rmtree(home, ignore_errors=True)
    timings = root / "timings.json"
    timings.unlink(missing_ok=True)
    env = {
        **os.environ,
        "TALENT_INDEX_HOME": str(home),
        "TALENT_INDEX_RECORDINGS": str(root / "recordings"),
        "TALENT_INDEX_REGISTRY": str(root / "cities.csv"),
        "TALENT_INDEX_SOURCES": str(root / "sources.yaml"),
        "TALENT_INDEX_TIMINGS": str(timings),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    if api_url:
        env["PREFECT_API_URL"] = api_url
        env["PREFECT_HOME"] = str(CACHE / "prefect-server-home")
    else:
        env.pop("PREFECT_API_URL", None)
        env["PREFECT_HOME"] = str(root / "prefect-home")
    # a small wrapper process starts the refresh: its RUSAGE_CHILDREN peak is the refresh's own (a process
    # started directly from here would also count this process's earlier peak, inherited through fork + exec)
    code = (
        "import json, resource, subprocess, sys, time; t = time.perf_counter(); "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "print(r.stderr[-3000:], file=sys.stderr) if r.returncode else None; "
        "print(json.dumps({'rc': r.returncode, 'seconds': time.perf_counter() - t, "
        "'peak_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(Path(sys.executable).with_name("talent-index")), "refresh", "--offline"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1800,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise RuntimeError(res.stderr[-3000:])
    t = json.loads(timings.read_text())
    return {
        "seconds": out["seconds"],
        "work_seconds": t.get("work", 0.0),
        "gx_seconds": t.get("gx", 0.0),
        "peak_mib": out["peak_mib"],
    }


def run(sizes=(30, 1_000, 10_000), runs: int = 5, cold_size: int | None = None) -> dict:
    out = {}
    roots = {}
    for n in sizes:
        t = time.time()
        missing = not (CACHE / f"e2e-{n}" / "done").exists()
        roots[n] = generate(n, CACHE / f"e2e-{n}")
        if missing:
            GENERATED[f"recordings for {n} cities"] = time.time() - t
            print(f"  recordings for {n} cities generated in {time.time() - t:.0f} s", flush=True)
    with LoopbackServer() as server:
        for n in sizes:
            rs = [run_once(roots[n], server.url) for _ in range(runs)]
            wall = stats([r["seconds"] for r in rs])
            work = stats([r["work_seconds"] for r in rs])
            gx = stats([r["gx_seconds"] for r in rs])
            overhead = [(r["seconds"] - r["work_seconds"]) / r["seconds"] for r in rs]
            row = {
                "flow_seconds": wall,
                "work_seconds": work,
                "gx_seconds": gx,
                "overhead_share": stats(overhead),
                "gx_share": stats([r["gx_seconds"] / r["seconds"] for r in rs]),
                "peak_mib": max(r["peak_mib"] for r in rs),
                "server": "loopback prefect server (SQLite)",
            }
            out[str(n)] = row
            print(
                f"  n={n:>6}: flow {wall['median']:.1f} s ({wall['min']:.1f}-{wall['max']:.1f}), our work "
                f"{work['median']:.1f} s, GX {gx['median']:.1f} s, peak {row['peak_mib']:.0f} MiB",
                flush=True,
            )
    if cold_size in roots:
        r = run_once(roots[cold_size], None)
        out[str(cold_size)]["temporary_server_run"] = r
        print(f"  n={cold_size:>6} with the temporary server (as `make run`): {r['seconds']:.1f} s", flush=True)
    return out


if __name__ == "__main__":
    from common import save

    sizes = tuple(int(x) for x in sys.argv[1].split(",")) if len(sys.argv) > 1 else (30, 1_000, 10_000)
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    cold = int(sys.argv[3]) if len(sys.argv) > 3 else None  # e.g. 10000: one more run with the temporary server
    print(save("end_to_end", run(sizes, runs, cold)))
