"""Where a run's time goes: seconds spent in our own work (and in GX validation) inside the flow's
tasks, so orchestration overhead = wall time - work. Written to $TALENT_INDEX_TIMINGS (JSON) by the
CLI when that variable is set (the end-to-end benchmark does). Tasks that run in other processes
(tile tasks on Dask workers) are not counted here."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

_LOCK = threading.Lock()
_TOTALS: dict[str, float] = defaultdict(float)


@contextmanager
def timed(*steps: str):
    """Add the block's wall time to each of `steps` (e.g. "work", "gx")."""
    t = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - t
        with _LOCK:
            for s in steps:
                _TOTALS[s] += elapsed


def totals() -> dict[str, float]:
    with _LOCK:
        return dict(_TOTALS)


def write_if_asked() -> Path | None:
    path = os.environ.get("TALENT_INDEX_TIMINGS")
    if not path:
        return None
    Path(path).write_text(json.dumps(totals(), indent=1) + "\n")
    return Path(path)
