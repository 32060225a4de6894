"""The code follows the layers the README draws: every module of the packages sits in one layer,
imports only from its own layer or those below (imports inside functions count), no import cycle,
and no module outside tasks/sources/ imports a source's module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["scoring", "tasks", "flows", "talent_index"]
# what a module outside tasks/sources/ may import of it: the package's API and the interface
SOURCE_INTERFACE = {"tasks.sources", "tasks.sources.base", "tasks.sources.schema", "tasks.sources.config"}


def readme_layers() -> list[tuple[str, list[str]]]:
    """(layer, module prefixes) from the README's layer table, lowest first."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- layers -->")[1].split("<!-- /layers -->")[0]
    rows = [ln for ln in block.splitlines() if ln.startswith("| `")]
    layers = []
    for row in rows:
        name, paths = [c.strip() for c in row.strip("|").split("|")[:2]]
        prefixes = [p.strip("`").removesuffix("/").removesuffix(".py").replace("/", ".") for p in paths.split(", ")]
        layers.append((name.strip("`"), prefixes))
    return layers[::-1]  # the table lists the top first


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = p
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[tuple[str, int]]]:
    """module -> (imported in-project module, line), function-level imports included."""

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[tuple[str, int]]] = {}
    for m, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = m.split(".")[: len(m.split(".")) - node.level + (path.name == "__init__.py")]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                names = [f"{module}.{a.name}" for a in node.names] + [module]
            else:
                continue
            for n in names:
                r = resolve(n)
                if r and r != m:
                    found.add((r, node.lineno))
                    break
        graph[m] = found
    return graph


def layer_of(module: str, layers) -> int | None:
    best = None
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > best[1]):
                best = (i, len(p))
    return None if best is None else best[0]


def test_the_readme_draws_every_package_and_its_layers():
    layers = readme_layers()
    assert [n for n, _ in layers][:3] == ["base", "registry", "store"] and layers[-1][0] == "cli"
    mods = modules()
    unplaced = [m for m in mods if layer_of(m, layers) is None and m not in ("tasks",)]
    assert unplaced == [], f"modules in no layer of the README's table: {unplaced}"
    named = [p for _, prefixes in layers for p in prefixes]
    assert [p for p in named if not any(m == p or m.startswith(p + ".") for m in mods)] == []  # no stale entry


def upward(graph, layers) -> list[str]:
    out = []
    for m, targets in graph.items():
        for t, line in sorted(targets):
            a, b = layer_of(m, layers), layer_of(t, layers)
            if a is not None and b is not None and b > a:
                out.append(f"{m}:{line} ({layers[a][0]}) imports {t} ({layers[b][0]})")
    return out


def cycles(graph) -> list[list[str]]:
    edges = {m: {t for t, _ in ts} for m, ts in graph.items()}
    done: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            found.append(path[path.index(m) :] + [m])
            return
        if m in done:
            return
        for t in sorted(edges.get(m, ())):
            visit(t, path + [m])
        done.add(m)

    for m in sorted(edges):
        visit(m, [])
    return found


def source_imports(graph, mods) -> list[str]:
    source_modules = {m for m in mods if m.startswith("tasks.sources.")} - SOURCE_INTERFACE
    return [
        f"{m}:{line} imports {t}"
        for m, targets in graph.items()
        if not m.startswith("tasks.sources")
        for t, line in sorted(targets)
        if t in source_modules
    ]


def test_every_import_goes_down_the_layers():
    assert upward(imports(modules()), readme_layers()) == []


def test_no_import_cycle():
    assert cycles(imports(modules())) == []


def test_only_the_sources_import_a_source_module():
    mods = modules()
    assert source_imports(imports(mods), mods) == []


def test_the_checks_find_what_is_planted(tmp_path):
    """An upward import (which closes a cycle) and a source import planted in copies of two modules
    are each found by the checks above."""
    mods = modules()
    planted = dict(mods)
    store = tmp_path / "releases.py"
    store.write_text(
        mods["tasks.store.releases"].read_text() + "\n\ndef f():\n    from tasks.publish import publisher\n"
    )
    publisher = tmp_path / "publisher.py"
    publisher.write_text(mods["tasks.publish.publisher"].read_text() + "\nfrom tasks.sources import gawc\n")
    planted["tasks.store.releases"], planted["tasks.publish.publisher"] = store, publisher
    graph = imports(planted)
    assert [u for u in upward(graph, readme_layers()) if u.startswith("tasks.store.releases:")] == [
        f"tasks.store.releases:{len(store.read_text().splitlines())} (store) imports tasks.publish.publisher (publish)"
    ]
    assert ["tasks.store.releases", "tasks.publish.publisher", "tasks.store.releases"] in cycles(graph)
    assert [s for s in source_imports(graph, planted) if "gawc" in s] == [
        f"tasks.publish.publisher:{len(publisher.read_text().splitlines())} imports tasks.sources.gawc"
    ]
