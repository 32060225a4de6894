"""Screenshots of the Prefect UI of a running service, for the README (headless Chromium).

    .venv/bin/talent-index server up            # and at least one run of a deployment
    .venv/bin/python scripts/screenshots.py [--out docs/images]

Takes: the run list, the latest finished deployment run, and its data-quality table and ranking
artifacts. Chinese names need a CJK font (apt-get install fonts-wqy-microhei).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.service.browser import chromium, headless_args  # noqa: E402
from tasks.service.ops import state_dir  # noqa: E402


def shoot(browser: str, url: str, out: Path, size: str = "1440,1000") -> None:
    with tempfile.TemporaryDirectory() as profile:
        flags = headless_args(
            Path(profile),
            f"--window-size={size}",
            "--virtual-time-budget=30000",
            "--hide-scrollbars",
            f"--screenshot={out}",
        )
        res = subprocess.run([browser, *flags, url], capture_output=True, text=True, timeout=180)
    if res.returncode != 0 or not out.exists():
        raise SystemExit(f"chromium could not take {url}: {res.stderr[-500:]}")
    print(f"{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}  <- {url}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    browser = chromium()
    if not browser:
        raise SystemExit("chromium is needed (apt-get install chromium)")
    info = json.loads((state_dir() / "service.json").read_text())
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: info["api_url"]}), get_client(sync_client=True) as client:
        runs = [
            r
            for r in client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
            if r.deployment_id and r.state and r.state.is_final()
        ]
        if not runs:
            raise SystemExit("no finished deployment run yet: run one first (prefect deployment run …)")
        arts = {
            a.key: a
            for a in client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[runs[0].id]))
            )
        }
    args.out.mkdir(parents=True, exist_ok=True)
    ui = info["ui_url"]
    shoot(browser, f"{ui}/runs", args.out / "ui-runs.png")
    shoot(browser, f"{ui}/runs/flow-run/{runs[0].id}", args.out / "ui-run.png", "1440,1000")
    for key in ("data-quality", "ranking"):
        if key in arts:
            shoot(browser, f"{ui}/artifacts/artifact/{arts[key].id}", args.out / f"ui-artifact-{key}.png", "1440,1100")


if __name__ == "__main__":
    main()
