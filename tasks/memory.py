"""Give the memory a finished step has freed back to the operating system.

The C allocators under CPython keep what a step frees for reuse: glibc's malloc (libxml2's trees
of the parsed pages, numpy, CPython's own arenas) and Arrow's memory pool (pandas' strings). After
one source's pages are parsed, the process holds memory it no longer uses, and the next step's
peak stacks on top of it (benchmarks/README.md, section 4). Between the large steps of an ingest
and a release, `release_freed_memory()` collects garbage and hands the free pages back with
glibc's `malloc_trim(0)` and Arrow's `release_unused()`. Where the C library has no
`malloc_trim` (musl, macOS), the rest still runs.

Arrow allocates from jemalloc here, told to hand freed pages back at once (decay 0), set when this
module is imported: Arrow's default pool (mimalloc) kept what pandas' strings freed, which no trim
could return, and glibc's malloc, which returns it, made the string work slower. A pyarrow built
without jemalloc keeps its default pool.

glibc's malloc gives each new thread an arena of its own, up to eight per CPU (Prefect's threads,
the HTTP pools', the Monte Carlo's sorting threads). What a thread frees stays in its arena, where
the main thread cannot reuse it, and no trim runs below `WORTH_RELEASING_MIB`. On import, this
module limits the process to `MALLOC_ARENAS` arenas (`mallopt(M_ARENA_MAX)`), unless the operator
set glibc's own `MALLOC_ARENA_MAX` or tunable: threads then share them, and what one frees another
reuses.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os

import pyarrow as pa

try:
    pa.set_memory_pool(pa.jemalloc_memory_pool())
    pa.jemalloc_set_decay_ms(0)
except NotImplementedError:  # a build without jemalloc
    pass

MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # no C library found
        return None


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process; False where the operator set the cap (glibc read
    it at start) or the C library has no `mallopt` (musl accepts and ignores it, macOS lacks it)."""
    if "MALLOC_ARENA_MAX" in os.environ or "glibc.malloc.arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    return mallopt is not None and mallopt(_M_ARENA_MAX, arenas) == 1


limit_malloc_arenas()


@functools.cache
def _malloc_trim():
    return getattr(_libc(), "malloc_trim", None)  # None: no C library, or one without malloc_trim


WORTH_RELEASING_MIB = 1536  # below this resident size a full collection costs more than it returns


def _resident_mib() -> float | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # no /proc (macOS): always release
        return None


def release_freed_memory(min_resident_mib: float = WORTH_RELEASING_MIB) -> None:
    """Collect garbage, then return the allocators' free memory to the operating system; nothing
    when the process is smaller than `min_resident_mib` (a small run, the tests: a collection per
    step there only costs time)."""
    resident = _resident_mib()
    if resident is not None and resident < min_resident_mib:
        return
    gc.collect()
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
