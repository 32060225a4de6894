"""Process faults: SIGKILL mid-write, a full disk, two refreshes at once, resuming after a failure."""

import errno
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

from tasks.errors import FetchError, StorageError

from .conftest import ROOT, assert_nothing_lost

pytestmark = pytest.mark.slow

# The children run only the step under test: the parent prepares its inputs (fetch, parse,
# validation, scoring), for which a child would otherwise import GX (seconds of CPU) itself.
CHILD_SNAPSHOT = """
import pickle, sys
from tasks.ingest.core import snapshot_source
snapshot_source(**pickle.loads(open(sys.argv[1], "rb").read()))
"""

CHILD_PUBLISH = """
import pickle, sys
from tasks.publish.publisher import publish
publish(**pickle.loads(open(sys.argv[1], "rb").read()))
"""


def snapshot_inputs(table, tmp_path):
    """What `ingest` hands to `snapshot_source` for the curated table at `table`, pickled."""
    from tasks.ingest.core import check_vintage, fetch_and_parse, tidy_source, validate_source
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config

    registry = load_registry()
    cfg = {**load_sources_config()["curated"], "url": "file://" + str(table)}
    fetched = fetch_and_parse("curated", cfg, "offline", registry)
    vintage = check_vintage("curated", cfg, fetched)
    tidy, extras = tidy_source("curated", cfg, registry, fetched)
    reports = validate_source("curated", cfg, registry, tidy, extras)
    assert all(r.success for r in reports)
    args = {"source": "curated", "cfg": cfg, "tidy": tidy, "extras": extras, "raws": fetched.raws}
    args |= {"reports": reports, "vintage": vintage, "mode": "offline"}
    (tmp_path / "snapshot.pickle").write_bytes(pickle.dumps(args))
    return tmp_path / "snapshot.pickle"


def publish_inputs(tmp_path):
    """What a refresh hands to the publisher (scored with vector normalisation), pickled."""
    from scoring import load_methodology
    from tasks.publish.gather import gather_inputs, score
    from tasks.publish.publisher import index_table, validate_index
    from tasks.registry.cities import load_registry
    from tasks.report.render import render_release

    m = load_methodology().with_choices(topsis_normalization="vector")
    registry = load_registry()
    inputs = gather_inputs(registry, m)
    result = score(inputs, registry, m)
    report = validate_index(index_table(result, registry), registry)
    args = {"result": result, "inputs": inputs, "registry": registry, "methodology": m, "sample": True}
    args |= {"edition": "2020", "index_report": report, "today": "2026-11-28", "renderers": (render_release,)}
    (tmp_path / "publish.pickle").write_bytes(pickle.dumps(args))
    return tmp_path / "publish.pickle"


def run_and_kill(code, args, env, marker, timeout=120):
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    t0 = time.time()
    while not marker.exists():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"child ended before the pause point: {err[-2000:]}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError("child never reached the pause point")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


def changed_curated(tmp_path):
    src = ROOT / "data" / "curated" / "report_indicators_2020.csv"
    lines = src.read_text().splitlines()
    lines = [ln.replace("berlin,gdp,", "berlin,gdp,1", 1) if ln.startswith("berlin,gdp,") else ln for ln in lines]
    out = tmp_path / "curated.csv"
    out.write_text("\n".join(lines) + "\n")
    return out


def test_sigkill_while_writing_a_snapshot(home, tmp_path):
    h, before = home
    marker = tmp_path / "paused"
    table = changed_curated(tmp_path)
    snaps_before = sorted(p.name for p in (h / "snapshots" / "curated" / "2020").iterdir())
    rc = run_and_kill(
        CHILD_SNAPSHOT,
        [str(snapshot_inputs(table, tmp_path))],
        {
            "TALENT_INDEX_HOME": str(h),
            "TALENT_INDEX_PAUSE_AT": "snapshot-before-rename",
            "TALENT_INDEX_PAUSE_MARKER": str(marker),
        },
        marker,
    )
    assert rc == -signal.SIGKILL
    after = sorted(p.name for p in (h / "snapshots" / "curated" / "2020").iterdir())
    finals = [n for n in after if not n.startswith(".")]
    assert finals == [n for n in snaps_before if not n.startswith(".")]  # no new final snapshot
    assert any(n.startswith(".") for n in after)  # the temporary folder the kill left behind
    assert_nothing_lost(h, before)
    from tasks.store.storage import remove_stale_temporaries

    removed = remove_stale_temporaries(h)
    assert removed and not any(
        n.startswith(".") for n in (p.name for p in (h / "snapshots" / "curated" / "2020").iterdir())
    )


def test_sigkill_while_publishing_a_release(home, tmp_path):
    h, before = home
    marker = tmp_path / "paused"
    latest = (h / "releases" / "LATEST").read_text()
    rc = run_and_kill(
        CHILD_PUBLISH,
        [str(publish_inputs(tmp_path))],
        {
            "TALENT_INDEX_HOME": str(h),
            "TALENT_INDEX_PAUSE_AT": "release-files-written",
            "TALENT_INDEX_PAUSE_MARKER": str(marker),
        },
        marker,
    )
    assert rc == -signal.SIGKILL
    assert (h / "releases" / "LATEST").read_text() == latest
    assert not (h / "releases" / "2020-sample-2026-11-28").exists()
    assert_nothing_lost(h, before)


def test_full_disk_while_publishing(home, monkeypatch):
    from flows.publish import publish_scored
    from scoring import load_methodology
    from tasks.publish import publisher
    from tasks.publish.gather import gather_inputs, score
    from tasks.registry.cities import load_registry

    h, before = home
    calls = {"n": 0}
    real = publisher.atomic_write_bytes

    def filling_up(path, data):
        calls["n"] += 1
        if calls["n"] == 4:
            from tasks.store.storage import StorageError as SE

            raise SE(f"cannot write {path}: disk full; nothing was changed under that name")
        return real(path, data)

    monkeypatch.setattr(publisher, "atomic_write_bytes", filling_up)
    m = load_methodology().with_choices(zero_rule="shift")
    registry = load_registry()
    inputs = gather_inputs(registry, m)
    result = score(inputs, registry, m)
    with pytest.raises(StorageError, match="disk full.*LATEST still points to 2020-sample-2026-11-26"):
        publish_scored(result, inputs, registry, m, analyses=False, today="2026-11-29")
    assert not any(p.name.startswith(".") for p in (h / "releases").iterdir())  # temporary folder removed
    assert_nothing_lost(h, before)


def test_real_enospc_is_reported_as_disk_full(tmp_path, monkeypatch):
    from tasks.store import storage

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage.os, "fsync", no_space)
    with pytest.raises(StorageError, match="disk full"):
        storage.atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("edition", ["2020", "2019"])
def test_two_refreshes_at_once(home, tmp_path, edition):
    """A second refresh is refused while one holds the data home, whatever edition either runs."""
    h, before = home
    marker = tmp_path / "holding"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import pathlib, sys, time\nfrom tasks.store.storage import refresh_lock\n"
                "with refresh_lock():\n    pathlib.Path(sys.argv[1]).write_text('x')\n    time.sleep(60)\n"
            ),
            str(marker),
        ],
        cwd=ROOT,
        env={**os.environ, "TALENT_INDEX_HOME": str(h)},
    )
    try:
        for _ in range(200):
            if marker.exists():
                break
            time.sleep(0.05)
        from flows.refresh import refresh

        with pytest.raises(StorageError, match=r"another refresh is running on .*\(pid \d+ since"):
            refresh.fn(mode="offline", edition=edition)
    finally:
        holder.kill()
        holder.wait()
    assert_nothing_lost(h, before)


def test_rerun_after_a_failure_reuses_what_was_fetched(home, server):
    """GaWC online against a local server: the dataset fails, the tier page succeeded; the rerun
    does not fetch the tier page again."""
    from tasks.http import Fetcher, HttpPolicy
    from tasks.ingest.core import fetch_and_parse
    from tasks.registry.cities import load_registry
    from tasks.sources import load_sources_config

    h, before = home
    server.add("/robots.txt", {"status": 404})
    server.add("/world2020t.html", {"body": (ROOT / "data/recordings/2020/gawc/world2020t.html").read_bytes()})
    xlsx = (ROOT / "data/recordings/2020/gawc/connectivity-2020.xlsx").read_bytes()
    server.add(
        "/da31.xlsx",
        {"status": 503},
        {"status": 503},
        {"status": 503},
        {"status": 503},
        {"body": xlsx, "content_type": "application/octet-stream"},
    )
    cfg = {
        **load_sources_config()["gawc"],
        "tiers_url": server.base + "/world2020t.html",
        "connectivity_url": server.base + "/da31.xlsx",
    }

    def fetcher():
        return Fetcher(
            source="gawc",
            mode="online",
            sleep=lambda s: None,
            policy=HttpPolicy(allowed_domains=("127.0.0.1",), min_interval_s=0, retries=2),
        )

    with pytest.raises(FetchError, match="HTTP 503 after 3 attempts"):
        fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=fetcher())
    f2 = fetcher()
    fetched = fetch_and_parse("gawc", cfg, "online", load_registry(), fetcher=f2)
    assert server.hits["/world2020t.html"] == 1 and server.hits["/da31.xlsx"] == 5
    assert len(fetched.parsed) == 2
    # robots.txt and two tries of the dataset (503, then 200); the tier page came from the raw store
    assert f2.requests_made == 3
    assert_nothing_lost(h, before)
