"""This checkout against another one (main at 2542293, in a git worktree): one `talent-index refresh
--offline` per size and checkout, with the temporary server (as `make run`), each checkout on
recordings from its own generator (benchmarks/e2e.py of that checkout, cached in its
benchmarks/.cache). Per-city costs are taken above the 30-city run: (wall(n) - wall(30)) / (n - 30),
the same for peak memory.

    git worktree add /tmp/main0 2542293 && make -C /tmp/main0 install
    .venv/bin/python benchmarks/versus.py /tmp/main0 "main 2542293" 30,10000,100000
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
    "runs with its defaults. Peak memory is that of the largest process: this checkout parses the night-light clips "
    "of a large replay in worker processes (one per CPU, `TALENT_INDEX_PARSE_WORKERS`), and a page of 16 MiB or "
    "more (a 100,000-city ranking, the curated table) in a worker of its own, each smaller than the run's own "
    "process and gone before it publishes."
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


def run(other: Path, label: str, sizes: tuple[int, ...]) -> dict:
    out: dict = {"against": label, "checkout": this_commit(), "sizes": {}, "note": NOTE}
    for n in sizes:
        ours = run_once(generate(n, CACHE / f"e2e-{n}"), None)
        theirs = run_once(their_recordings(other, n), None, checkout=other)
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
    if other == ROOT:
        raise SystemExit("versus.py compares this checkout with another one: give the other checkout's path")
    print(save("versus", run(other, label, sizes)))
