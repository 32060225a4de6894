"""Give the memory a finished step has freed back to the operating system.

The C allocators under CPython keep what a step frees for reuse: glibc's malloc (libxml2's trees
of the parsed pages, numpy, CPython's own arenas) and Arrow's memory pool (pandas' strings). After
one source's pages are parsed, the process holds hundreds of MB it no longer uses, and the next
step's peak stacks on top of them (benchmarks/README.md, section 4). Between the large steps of an
ingest and a release, `release_freed_memory()` collects garbage and hands the free pages back
with glibc's `malloc_trim(0)`. Where the C library has no `malloc_trim` (musl, macOS), only the
garbage collection runs.

Arrow allocates from glibc's malloc here too (`system_memory_pool`), set when this module is
imported: its default pool (mimalloc) kept what pandas' strings freed even after `release_unused()`,
about 600 MB after gathering 100,000 cities, which no trim could return.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

import pyarrow as pa

pa.set_memory_pool(pa.system_memory_pool())


@functools.cache
def _malloc_trim():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no C library found, or one without malloc_trim
        return None


def release_freed_memory() -> None:
    """Collect garbage, then return the allocators' free memory to the operating system."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
