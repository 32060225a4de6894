"""End-to-end offline refresh on generated recordings for 30, 1,000, 10,000 and 100,000 cities.

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
import pycountry
from common import CACHE, GENERATED, ROOT, stats


def generate(n: int, root: Path) -> Path:
    """A registry of n generated cities and recordings of every source for them (tasks.sources.synthetic)."""
    import pandas as pd

    from tasks.sources.synthetic import write_recordings

    if (root / "done").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    rng = np.random.default_rng(n)
    # 50 real countries (the World Bank's figures are fetched per ISO code), assigned in turn
    countries = sorted((c.alpha_2, c.name) for c in pycountry.countries)[::5][:50]
    reg = pd.DataFrame(
        {
            "city_id": [f"c{i:05d}" for i in range(n)],
            "name_en": [f"City {i:05d}" for i in range(n)],
            "name_zh": [f"城市{i}" for i in range(n)],
            "country": [countries[i % 50][1] for i in range(n)],
            "iso2": [countries[i % 50][0] for i in range(n)],
            "domestic": [str(i % 8 == 0).lower() for i in range(n)],
            "cluster": "",
            "lat": [f"{v:.4f}" for v in rng.uniform(-50, 60, n)],
            "lon": [f"{v:.4f}" for v in rng.uniform(-170, 170, n)],
            "boundary_radius_km": "10",
            "numbeo_name": [f"City {i:05d}, {countries[i % 50][1]}" for i in range(n)],
            "numbeo_slug": [f"City-{i:05d}" for i in range(n)],
            "gawc_names": [f"City {i:05d}" for i in range(n)],
            "hurun_names": [f"City {i:05d}" for i in range(n)],
            "report_tier_2020": "Beta",
        }
    )
    reg.to_csv(root / "cities.csv", index=False)
    write_recordings(reg, root, seed=n)
    (root / "done").write_text("ok")
    return root


def report_open(page: Path, cities: int, runs: int = 3) -> dict:
    """Seconds headless Chromium takes to open the report and build its explorer (its `--dump-dom`
    returns once the page and its scripts are done), beside the same browser on an empty page."""
    from tasks.report.html import LARGE
    from tasks.service.browser import chromium, headless_args

    browser = chromium()
    if browser is None:
        return {"skipped": "no chromium"}
    blank = CACHE / "blank.html"
    blank.write_text("<!DOCTYPE html><title>blank</title>")

    def once(target: Path) -> tuple[float, str]:
        flags = headless_args(CACHE / "chromium-profile", "--virtual-time-budget=30000")
        t = time.perf_counter()
        r = subprocess.run(
            [browser, *flags, "--dump-dom", target.as_uri()], capture_output=True, text=True, timeout=300
        )
        return time.perf_counter() - t, r.stdout

    opened, ready = [], []
    for _ in range(runs):
        seconds, dom = once(page)
        if cities > LARGE:  # the report has its explorer
            if f'data-explorer="{cities}"' not in dom:
                raise RuntimeError(f"the report of {cities} cities did not build its explorer in Chromium")
            ready.append(int(dom.split('data-explorer-ms="')[1].split('"')[0]) / 1000)
        opened.append(seconds)
    out = {"page": stats(opened), "blank": stats([once(blank)[0] for _ in range(runs)])}
    if ready:  # from navigation to the explorer built, as the page measures it (performance.now)
        out["explorer_ready"] = stats(ready)
    return out


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
        from tasks.service import ops

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
        from tasks.service import ops

        ops._stop("server", timeout=60)


def run_once(root: Path, api_url: str | None, checkout: Path = ROOT) -> dict:
    """One `talent-index refresh --offline` in a fresh process: wall time, our work and GX time inside
    the flow's tasks (TALENT_INDEX_TIMINGS), peak memory, the report's size. `api_url` None = temporary
    server; `checkout`: whose code runs (versus.py runs another checkout's on its own recordings)."""
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
    exe = checkout / ".venv" / "bin" / "talent-index"
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
        [sys.executable, "-c", code, str(exe), "refresh", "--offline"],
        env=env,
        capture_output=True,
        text=True,
        cwd=checkout,
        timeout=3600,
    )
    out = json.loads(res.stdout.strip().splitlines()[-1])
    if out["rc"] != 0:
        raise RuntimeError(res.stderr[-3000:])
    t = json.loads(timings.read_text())
    report = next(iter(home.glob("releases/*/report/index.html")), None)
    return {
        "seconds": out["seconds"],
        "work_seconds": t.get("work", 0.0),
        "gx_seconds": t.get("gx", 0.0),
        "peak_mib": out["peak_mib"],
        "report_mib": sum(f.stat().st_size for f in report.parent.iterdir()) / 2**20 if report else None,
        "report": str(report) if report else None,
    }


SIZES = (30, 1_000, 10_000, 100_000)
RUNS_AT = {100_000: 1}  # one run takes minutes at 100,000 cities: fewer runs there (named in the table)


def run(sizes=SIZES, runs: int = 5, cold_size: int | None = None) -> dict:
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
            rs = [run_once(roots[n], server.url) for _ in range(RUNS_AT.get(n, runs))]
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
                "report_mib": rs[-1]["report_mib"],
                "server": "loopback prefect server (SQLite)",
            }
            if n == max(sizes) and rs[-1]["report"]:
                row["report_open"] = report_open(Path(rs[-1]["report"]), n)
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

    sizes = tuple(int(x) for x in sys.argv[1].split(",")) if len(sys.argv) > 1 else SIZES
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    cold = int(sys.argv[3]) if len(sys.argv) > 3 else None  # e.g. 10000: one more run with the temporary server
    print(save("end_to_end", run(sizes, runs, cold)))
