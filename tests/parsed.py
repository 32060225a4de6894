"""What the parsers made of a set of recordings, as digests: every snapshot table of a data home
(the tidy table and its extras), its `location` column left out (it holds temporary paths).
`tests/fixtures/parsed_digests.json` keeps them; an optimisation of a parser must leave them equal.
`TALENT_INDEX_WRITE_DIGESTS=1` rewrites an entry (only when a change of the results is intended)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from tasks.store.storage import frame_fingerprint

GOLDEN = Path(__file__).parent / "fixtures" / "parsed_digests.json"


def snapshot_digests(home: Path) -> dict[str, dict[str, str]]:
    """source -> table -> digest, of the latest ingest of every source under `home`."""
    out: dict[str, dict[str, str]] = {}
    for log in sorted((home / "snapshots").glob("*/ingests.jsonl")):
        entry = json.loads(log.read_text().splitlines()[-1])
        folder = home / "snapshots" / log.parent.name / str(entry["edition"]) / entry["snapshot_id"]
        out[log.parent.name] = {
            p.stem: frame_fingerprint(pd.read_parquet(p).drop(columns=["location"], errors="ignore"))
            for p in sorted(folder.glob("*.parquet"))
        }
    return out


def check_digests(name: str, home: Path) -> None:
    got = snapshot_digests(home)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("TALENT_INDEX_WRITE_DIGESTS") == "1":
        GOLDEN.write_text(json.dumps({**golden, name: got}, indent=1, sort_keys=True) + "\n")
        return
    assert name in golden, f"no digests of {name!r} in {GOLDEN}"
    changed = {s: t for s, t in got.items() if golden[name].get(s) != t}
    assert set(got) == set(golden[name]) and not changed, f"parsed results changed: {sorted(changed)}"
