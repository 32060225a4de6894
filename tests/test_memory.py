"""What a finished step frees goes back to the operating system (tasks/memory.py)."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pytest

from tasks.memory import MALLOC_ARENAS, release_freed_memory


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def test_arrow_strings_and_python_objects_freed_by_a_step_leave_the_process():
    release_freed_memory(min_resident_mib=0)
    before = _rss_mib()
    texts = [f"https://www.numbeo.com/cost-of-living/in/City-{i:07d}" for i in range(1_500_000)]
    table = pd.DataFrame({"location": pd.Series(texts, dtype="str"), "value": np.arange(1_500_000.0)})
    held = _rss_mib() - before
    assert held > 100  # the list's strings and the Arrow column are really held
    del texts, table
    release_freed_memory(min_resident_mib=0)
    assert _rss_mib() - before < 0.25 * held  # most of it is back with the system, not in the allocators


def test_arrow_allocates_from_a_pool_that_returns_freed_pages():
    assert pa.default_memory_pool().backend_name == "jemalloc"


def test_a_small_process_is_left_alone():
    """Below the threshold nothing is collected (a collection per step only costs time there)."""
    import gc

    before = gc.get_count()[2], gc.get_stats()[2]["collections"]
    release_freed_memory(min_resident_mib=10**9)
    assert gc.get_stats()[2]["collections"] == before[1]
    release_freed_memory(min_resident_mib=0)
    assert gc.get_stats()[2]["collections"] == before[1] + 1


THREADS_EACH_ALLOCATING = """
import ctypes, sys, threading
if sys.argv[1] == "with tasks.memory":
    import tasks.memory
together = threading.Barrier(7)
def work():
    held = [bytearray(50_000) for _ in range(20)]  # below glibc's mmap threshold: from an arena
    together.wait()  # all six alive at once, none hands its arena to the next
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads:
    t.start()
together.wait()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # "Arena <n>:" per arena, on stderr
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
def test_threads_share_the_few_malloc_arenas_the_module_allows():
    """Six threads allocating at once get an arena each from glibc; with tasks.memory imported they
    share MALLOC_ARENAS, so what one frees the others reuse."""
    env = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")}
    arenas = {}
    for mode in ("alone", "with tasks.memory"):
        run = subprocess.run(
            [sys.executable, "-c", THREADS_EACH_ALLOCATING, mode],
            capture_output=True,
            text=True,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        arenas[mode] = run.stderr.count("Arena ")
    assert arenas == {"alone": 7, "with tasks.memory": MALLOC_ARENAS}
