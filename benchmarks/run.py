"""`make bench`: run every benchmark, write benchmarks/results/<date>.json and the table in
benchmarks/README.md. Each figure is a median of at least 5 runs, with min and max."""

from __future__ import annotations

import sys
import time

import nightlights
import scoring_kernel
from common import save
from table import write_readme


def main(runs: int = 5) -> None:
    t0 = time.time()
    print("1. scoring kernel (ours vs pymcdm vs scikit-criteria)", flush=True)
    save("scoring_kernel", scoring_kernel.kernel(runs))
    print("2. Monte Carlo uncertainty (ours vs a Python loop calling pymcdm)", flush=True)
    save("monte_carlo", scoring_kernel.monte_carlo_bench(runs))
    print("3. night-light zonal sums (ours vs exactextract vs rasterstats), fresh processes", flush=True)
    path = save("nightlights", nightlights.run(runs))
    write_readme(path)
    print(f"done in {time.time() - t0:.0f} s: {path} and benchmarks/README.md")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
