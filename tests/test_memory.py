"""What a finished step frees goes back to the operating system (tasks/memory.py)."""

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

from tasks.memory import release_freed_memory


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
