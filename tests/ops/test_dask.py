"""`refresh --dask`: tile work on a two-worker Dask cluster on loopback, reporting to a real Prefect
server (the session's); refused without one."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.flows.conftest import cli

ROOT = Path(__file__).resolve().parent.parent.parent
CLI = str(Path(sys.executable).with_name("talent-index"))

pytestmark = pytest.mark.slow


def test_night_light_tiles_run_on_a_two_worker_dask_cluster(prefect_harness, tmp_path):
    """`refresh --dask` (run in this process, against the session's Prefect server): the per-tile
    VNP46A4 work runs as Prefect tasks on a two-worker Dask LocalCluster on loopback, the workers
    reporting to the same server, with the same sums as in-process."""
    import yaml
    from distributed import LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config
    from tasks.sources import night_lights as nl
    from tests.sources.raster_helpers import write_vnp46a4_recordings

    class Finished(SchedulerPlugin):
        def __init__(self):
            self.on = []

        def transition(self, key, start, finish, *args, **kwargs):
            if finish == "memory" and kwargs.get("worker"):
                self.on.append(kwargs["worker"])

    registry = load_registry()
    cfg = {**load_sources_config()["night_lights"], "format": "vnp46a4"}
    rec = tmp_path / "rec"
    tiles = write_vnp46a4_recordings(rec, registry, cfg, seed=3)
    sources = yaml.safe_load((ROOT / "data" / "sources.yaml").read_text())
    sources["night_lights"]["format"] = "vnp46a4"
    sources["night_lights"].pop("offline")  # replay tiles, not the sample's clips
    (tmp_path / "sources.yaml").write_text(yaml.safe_dump(sources))
    data = tmp_path / "data"
    env = {
        "TALENT_INDEX_HOME": str(data),
        "TALENT_INDEX_RECORDINGS": str(rec),
        "TALENT_INDEX_SOURCES": str(tmp_path / "sources.yaml"),
    }
    worker_env = {"PREFECT_API_URL": prefect_harness} | {
        k: os.environ[k]
        for k in ("PREFECT_HOME", "DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED")
        if k in os.environ
    }
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None, env=worker_env
    ) as cluster:
        finished = Finished()
        cluster.scheduler.add_plugin(finished)
        workers = set(cluster.scheduler_info["workers"])
        # in this process (the CLI as the user runs it, without a second interpreter to start)
        res = cli(
            "refresh",
            "--offline",
            "--source",
            "night_lights",
            "--no-publish",
            "--dask",
            cluster.scheduler_address,
            env=env,
        )
    assert res.exit_code == 0, res.output[-3000:]
    assert len(workers) == 2 and len(finished.on) == len(tiles) and set(finished.on) <= workers
    print(
        f"{len(tiles)} tile tasks on Dask workers: "
        + ", ".join(f"{w} x{finished.on.count(w)}" for w in sorted(set(finished.on)))
    )
    snap = sorted((data / "snapshots" / "night_lights" / "2020").iterdir())
    assert len(snap) == 1
    got = pd.read_parquet(snap[0] / "zonal_stats.parquet").set_index("city_id")
    c = registry.get("london")
    tile_paths = {
        t: str(p) for t, p in ((p.name.split(".")[2], p) for p in (rec / "2020" / "night_lights").glob("*.h5"))
    }
    expected = nl.vnp46a4_zonal(tile_paths, nl.circle(c["lon"], c["lat"], c["boundary_radius_km"]), (0, 2))
    assert got.loc["london", "sum"] == expected["sum"] and got.loc["london", "tiles"] == "h17v03;h18v03"
    assert len(got) == 30 and (got["pixels_valid"] > 0).all()


def test_dask_needs_a_real_server(tmp_path):
    """Refused before anything starts: no flow runs, nothing is written."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["TALENT_INDEX_HOME"] = str(tmp_path / "data")
    res = subprocess.run(
        [CLI, "refresh", "--offline", "--dask", "tcp://127.0.0.1:1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert res.returncode == 1 and "needs a real Prefect server" in res.stderr
    assert not (tmp_path / "data").exists()
