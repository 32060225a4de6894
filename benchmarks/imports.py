"""Import times, in fresh interpreters: what a module costs the process that imports it. The reason
some imports sit inside functions (pyproject.toml, PLC0415): the CLI imports what each command
uses; GX loads on the first validation; dask with --dask; rasterio and h5py when tiles are read."""

from __future__ import annotations

import subprocess
import sys
import time

from common import ROOT, save, stats

MODULES = [
    ("the CLI (talent-index --help)", "talent_index.cli"),
    ("every source module (tasks.sources + all_sources())", "tasks.sources"),
    ("the publisher", "tasks.publish.publisher"),
    ("the flows (flows.refresh)", "flows.refresh"),
    ("pandas", "pandas"),
    ("prefect", "prefect"),
    ("prefect_dask (dask)", "prefect_dask"),
    ("great_expectations", "great_expectations"),
    ("rasterio", "rasterio"),
    ("h5py", "h5py"),
]


def once(module: str) -> float:
    code = f"import {module}" + ("; tasks.sources.all_sources()" if module == "tasks.sources" else "")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - t


def run(runs: int = 5) -> dict:
    base = stats([once("sys") for _ in range(runs)])  # the interpreter's own start
    out = {"interpreter_start": base}
    for label, module in MODULES:
        samples = [once(module) for _ in range(runs)]
        out[module] = {"label": label, **stats(samples)}
    return out


if __name__ == "__main__":
    print(save("imports", run(int(sys.argv[1]) if len(sys.argv) > 1 else 5)))
