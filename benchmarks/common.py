"""Shared helpers of the benchmarks: repeated timing, fresh-process runs, results files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CACHE = ROOT / "benchmarks" / ".cache"
GENERATED: dict[str, float] = {}  # seconds spent generating inputs missing from CACHE, in this `make bench`


def stats(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def repeat(fn, runs: int = 5, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def fresh_process(code: str, env: dict | None = None, timeout: int = 900) -> dict:
    """Run `code` in a new interpreter; it must print one JSON line (its own timing and peak RSS)."""
    res = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
    )
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def save(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    path = RESULTS / f"{day}.json"
    doc = json.loads(path.read_text()) if path.exists() else {"machine": machine()}
    if isinstance(doc.get(name), dict) and name == "end_to_end":
        payload = {**doc[name], **payload}  # sizes measured in separate runs add up
    doc[name] = payload
    doc["machine"] = machine()
    path.write_text(json.dumps(doc, indent=1, default=float) + "\n")
    return path
