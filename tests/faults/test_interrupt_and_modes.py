"""SIGTERM stops a refresh cleanly (a message, no process left, nothing half-written); published
files follow the umask."""

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.prefect_server import migrated_home

from .conftest import ROOT, assert_nothing_lost

pytestmark = pytest.mark.slow
CLI = str(Path(sys.executable).with_name("talent-index"))


def children(pid: int) -> set[int]:
    """Every live descendant of a process (from /proc)."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parents[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    found, todo = set(), [pid]
    while todo:
        cur = todo.pop()
        for child, parent in parents.items():
            if parent == cur and child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat")
    return state.exists() and state.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    "point,step,server",
    [
        # as `make run` does: the CLI starts Prefect's temporary server, which must go with it
        ("snapshot-before-rename", "numbeo", "temporary"),
        # against a real server (the session's), as a scheduled run does
        ("release-files-written", "release", "real"),
    ],
)
def test_sigterm_stops_cleanly_says_what_it_interrupted_and_leaves_no_process(
    home, recordings_copy, tmp_path, point, step, server, request
):
    h, before = home
    page = recordings_copy / "2020" / "numbeo" / "quality-of-life-rankings-2020.html"
    page.write_text(page.read_text().replace(">86.96<", ">86.95<", 1))  # new content: a snapshot is written
    marker = tmp_path / "paused"
    env = {
        **os.environ,
        "TALENT_INDEX_HOME": str(h),
        "TALENT_INDEX_PAUSE_AT": point,
        "TALENT_INDEX_PAUSE_MARKER": str(marker),
    }
    env.pop("PREFECT_API_URL", None)
    if server == "real":
        env["PREFECT_API_URL"] = request.getfixturevalue("prefect_harness")
    else:  # its database already migrated (a new one is migrated at start, for seconds)
        env["PREFECT_HOME"] = str(migrated_home(tmp_path / "prefect-home"))
    args = [CLI, "refresh", "--offline"] + (["--source", "numbeo"] if step == "numbeo" else ["--source", "hurun"])
    if step == "release":  # a change, so that a new release is written (and interrupted)
        env["TALENT_INDEX_METHODOLOGY"] = str(tmp_path / "m.yaml")
        (tmp_path / "m.yaml").write_text(
            (ROOT / "scoring" / "methodology.yaml")
            .read_text()
            .replace("normalization: minmax", "normalization: vector")
        )
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "the refresh never reached the pause point"
        time.sleep(0.1)
    kids = children(proc.pid)
    if step == "release":  # validated (GX) and scored, with the analyses: scipy.special, not scipy.stats
        maps = Path(f"/proc/{proc.pid}/maps").read_text()  # GX imports it for a check no suite here has
        assert "/scipy/special/" in maps and "/scipy/stats/" not in maps
    if server == "temporary":
        assert kids, "expected the temporary Prefect server as a child process"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, (out, err)
    assert "interrupted (SIGTERM) during:" in err and step in err.split("during:")[1], err
    assert "LATEST still names 2020-sample-2026-11-26" in err
    assert "Traceback" not in err
    time.sleep(0.5)
    assert [k for k in kids if alive(k)] == []
    for tree in ("snapshots", "releases"):
        assert [p for p in (h / tree).rglob(".*") if p.is_dir()] == []  # no temporary folder left
    assert_nothing_lost(h, before)


def test_published_files_follow_the_umask(home):
    """0644 files and 0755 folders under umask 022 (mkstemp and mkdtemp alone give 0600 and 0700)."""
    from flows.publish import gather_score_publish
    from scoring import load_methodology
    from tasks.ingest.core import ingest
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config

    h, _ = home
    old = os.umask(0o022)
    try:
        ingest("curated", load_sources_config(edition="2020")["curated"], "offline", load_registry())
        m = load_methodology().with_choices(zero_rule="shift")
        registry = load_registry()
        manifest = gather_score_publish(registry, m, edition="2020", analyses=False, today="2026-12-03")
    finally:
        os.umask(old)
    folder = h / "releases" / manifest["release_id"]
    modes = {p.relative_to(h): stat.S_IMODE(p.stat().st_mode) for p in [folder, *folder.rglob("*")]}
    assert {m for p, m in modes.items() if (h / p).is_dir()} == {0o755}
    assert {m for p, m in modes.items() if (h / p).is_file()} == {0o644}
    log = h / "snapshots" / "curated" / "ingests.jsonl"
    assert stat.S_IMODE(log.stat().st_mode) == 0o644
