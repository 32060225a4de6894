"""This checkout against another one (main at 2542293, in a git worktree): `talent-index refresh
--offline` per size and checkout, with the temporary server (as `make run`), each checkout on
recordings from its own generator (benchmarks/e2e.py of that checkout, cached in its
benchmarks/.cache). Per-city costs are taken above the 30-city run: (wall(n) - wall(30)) / (n - 30),
the same for peak memory. With a fourth argument, each size runs that many times, the two
checkouts alternating, and each figure is the median run's (wall time; peak memory its own median):
one run swings by several seconds on a shared machine.

    git worktree add /tmp/main0 2542293 && make -C /tmp/main0 install
    .venv/bin/python benchmarks/versus.py /tmp/main0 "main 2542293" 30,10000,100000 3
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from common import CACHE, ROOT, save
from e2e import generate, run_once

OLD_CAP = "    max_bytes: 20971520\n"  # main's one cap for every source, local files included
RAISED_CAP = "    max_bytes: 209715200\n"
NOTE = (
    "Main's single 20 MB cap stops its 100,000-city refresh at the 62 MB curated table: its generated "
    "sources.yaml gets `max_bytes: 209715200` under `defaults.http` (versus.py does it); this checkout "
    "runs with its defaults. Peak memory is that of the largest process: this checkout parses Numbeo's city pages "
    "and the night-light clips of a large replay in worker processes (one per CPU, `TALENT_INDEX_PARSE_WORKERS`), "
    "and a page of 16 MiB or more (a 100,000-city ranking, the curated table) in a worker too, each smaller than "
    "the run's own process and gone before it publishes."
)


def their_recordings(checkout: Path, n: int) -> Path:
    """The other checkout's generated recordings of n cities (its own generator, its own cache),
    with its download cap raised where it would refuse the generated curated table."""
    root = checkout / "benchmarks" / ".cache" / f"e2e-{n}"
    code = f"from e2e import generate; from common import CACHE; generate({n}, CACHE / 'e2e-{n}')"
    subprocess.run([str(checkout / ".venv/bin/python"), "-c", code], cwd=checkout / "benchmarks", check=True)
    sources = root / "sources.yaml"
    text = sources.read_text()
    if OLD_CAP in text and (root / "curated.csv").stat().st_size > 20971520:
        sources.write_text(text.replace(OLD_CAP, RAISED_CAP, 1))
    return root


def this_commit() -> str:
    """This checkout's commit (short), with `+changes` when its tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"], cwd=ROOT).returncode != 0
    return (head.stdout.strip() or "unknown") + ("+changes" if dirty else "")


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the lower middle one for an even count), with every run's wall
    time and peak listed and the peak memory's own median."""
    by_time = sorted(runs, key=lambda r: r["seconds"])
    peaks = sorted(r["peak_mib"] for r in runs)
    return {
        **by_time[(len(runs) - 1) // 2],
        "peak_mib": peaks[(len(runs) - 1) // 2],
        "runs_seconds": [r["seconds"] for r in runs],
        "runs_peak_mib": [r["peak_mib"] for r in runs],
    }


def run(other: Path, label: str, sizes: tuple[int, ...], repeats: int = 1) -> dict:
    out: dict = {"against": label, "checkout": this_commit(), "sizes": {}, "note": NOTE, "repeats": repeats}
    for n in sizes:
        ours_runs, theirs_runs = [], []
        for _ in range(repeats):
            ours_runs.append(run_once(generate(n, CACHE / f"e2e-{n}"), None))
            theirs_runs.append(run_once(their_recordings(other, n), None, checkout=other))
        ours, theirs = median_run(ours_runs), median_run(theirs_runs)
        out["sizes"][str(n)] = {"ours": ours, "theirs": theirs}
        print(
            f"  n={n:>6}: ours {ours['seconds']:.1f} s, {ours['peak_mib']:.0f} MiB; "
            f"{label} {theirs['seconds']:.1f} s, {theirs['peak_mib']:.0f} MiB",
            flush=True,
        )
    return out


if __name__ == "__main__":
    other = Path(sys.argv[1]).resolve()
    label = sys.argv[2]
    sizes = tuple(int(x) for x in sys.argv[3].split(",")) if len(sys.argv) > 3 else (30, 10_000, 100_000)
    repeats = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    if other == ROOT:
        raise SystemExit("versus.py compares this checkout with another one: give the other checkout's path")
    print(save("versus", run(other, label, sizes, repeats)))
