"""Vendor the stylesheets, scripts and fonts GX Data Docs load from CDNs, so that Data Docs work
offline: every package pinned in ops/data-docs-assets.json is downloaded from the npm registry,
checked against its sha512 integrity, and the files the pages use (plus the licence) are extracted
into vendor/data-docs/<name>@<version>/. Run by `make install`; nothing is fetched at run time.

    .venv/bin/python scripts/vendor_assets.py [--check]
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "ops" / "data-docs-assets.json"
TARGET = ROOT / "vendor" / "data-docs"
LICENCES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "license", "LICENSE-MIT", "package.json")


def folder(pkg: dict) -> Path:
    return TARGET / f"{pkg['name'].replace('/', '__')}@{pkg['version']}"


def complete(pkg: dict) -> bool:
    return (folder(pkg) / ".integrity").is_file() and (folder(pkg) / ".integrity").read_text() == pkg["integrity"]


def fetch(pkg: dict) -> None:
    with urllib.request.urlopen(pkg["tarball"], timeout=60) as resp:  # noqa: S310 - a pinned https URL
        data = resp.read()
    algo, digest = pkg["integrity"].split("-", 1)
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != digest:
        raise SystemExit(
            f"{pkg['name']}@{pkg['version']}: integrity mismatch ({algo} {got[:16]}…, pinned {digest[:16]}…)"
        )
    out = folder(pkg)
    wanted = pkg["files"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            if not m.isfile():
                continue
            rel = m.name.split("/", 1)[1] if "/" in m.name else m.name  # tarballs hold package/<path>
            keep = rel in LICENCES or any(rel == w or (w.endswith("/") and rel.startswith(w)) for w in wanted)
            if not keep or ".." in Path(rel).parts:
                continue
            dest = out / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(m)
            assert src is not None
            dest.write_bytes(src.read())
    missing = [w for w in wanted if not w.endswith("/") and not (out / w).is_file()]
    if missing:
        raise SystemExit(f"{pkg['name']}@{pkg['version']}: the tarball lacks {missing}")
    (out / ".integrity").write_text(pkg["integrity"])


def main() -> None:
    spec = json.loads(SPEC.read_text())
    todo = [p for p in spec["packages"] if not complete(p)]
    if "--check" in sys.argv:
        sys.exit(f"not vendored: {[p['name'] for p in todo]}" if todo else 0)
    for p in todo:
        print(f"vendoring {p['name']}@{p['version']} ({p['license']})")
        fetch(p)
    print(f"Data Docs assets: {len(spec['packages'])} packages in {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
