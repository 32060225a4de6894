"""`make bench`: run every benchmark, write benchmarks/results/<date>.json and the table in
benchmarks/README.md. Each figure is a median of 5 runs (min and max beside it); the 100,000-city refresh runs once (e2e.RUNS_AT)."""

from __future__ import annotations

import sys
import time

import e2e
import imports
import nightlights
import scoring_kernel
from common import GENERATED, save
from table import write_readme


def main(runs: int = 5) -> None:
    t0 = time.time()
    print("1. scoring kernel (ours vs pymcdm vs scikit-criteria)", flush=True)
    save("scoring_kernel", scoring_kernel.kernel(runs))
    print("2. Monte Carlo uncertainty (ours vs a Python loop calling pymcdm)", flush=True)
    save("monte_carlo", scoring_kernel.monte_carlo_bench(runs))
    print("3. night-light zonal sums (ours vs exactextract vs rasterstats), fresh processes", flush=True)
    save("nightlights", nightlights.run(runs))
    print("4. end-to-end offline refresh on generated recordings (30, 1,000, 10,000, 100,000 cities)", flush=True)
    path = save("end_to_end", e2e.run(e2e.SIZES, runs=runs, cold_size=None))
    print("5. import times, fresh interpreters", flush=True)
    save("imports", imports.run(runs))
    save("make_bench", {"seconds": time.time() - t0, "generated_seconds": dict(GENERATED)})
    write_readme(path)
    print(
        f"done in {time.time() - t0:.0f} s ({sum(GENERATED.values()):.0f} s of it generating inputs missing from "
        f"benchmarks/.cache): {path} and benchmarks/README.md"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
