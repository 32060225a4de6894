"""Every path the README and docs/ name exists (and every test they name, in its file)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP: tuple[str, ...] = ("tasks/", "tests/", "flows/", "scoring/", "data/", "docs/", "scripts/", "benchmarks/")
TOP += ("expectations/", "ops/", "talent_index/", ".ci/", "vendor/")
RUNTIME: tuple[str, ...] = (
    "data/releases",
    "data/snapshots",
    "data/raw",
    "data/runs",
    "data/FORMAT.json",
    "data/.refresh.lock",
)
RUNTIME += ("benchmarks/.cache",)  # made by `make bench`
PLACEHOLDER = re.compile(r"[<>{}*…]|\.\.\.")
TOKEN = re.compile(r"`([^`\s]+)`")
BARE_TEST = re.compile(r"`(test_\w+\.py)::(\w+)`")  # a test named by its file alone


def named_paths(text: str) -> list[str]:
    out = []
    for token in TOKEN.findall(text):
        token = token.rstrip(".,;:)")
        if token.startswith(TOP) and not PLACEHOLDER.search(token) and not token.startswith(RUNTIME):
            out.append(token)
    return out


def docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_path_and_test_named_in_the_docs_exists():
    missing = []
    checked = 0
    for doc in docs():
        for token in named_paths(doc.read_text()):
            path, _, test = token.partition("::")
            checked += 1
            if not (ROOT / path).exists():
                missing.append(f"{doc.name}: {token} (no such file)")
            elif test and not re.search(rf"^\s*def {re.escape(test)}\(", (ROOT / path).read_text(), re.M):
                missing.append(f"{doc.name}: {token} (no such test in the file)")
    for doc in docs():
        for name, test in BARE_TEST.findall(doc.read_text()):
            checked += 1
            files = list((ROOT / "tests").rglob(name))
            if not any(re.search(rf"^\s*def {test}\(", f.read_text(), re.M) for f in files):
                missing.append(f"{doc.name}: {name}::{test} (no test of that name in any tests/**/{name})")
    assert checked > 50  # the docs do name paths: the pattern still finds them
    assert missing == []


def test_a_stale_path_is_found():
    assert named_paths("see `tests/flows/test_toy_source.py` and `data/releases/<id>/`") == [
        "tests/flows/test_toy_source.py"
    ]
