"""Every internal of Prefect and Great Expectations the code relies on still holds: one test each,
failing with the internal's name and why we use it. After an upgrade of either, a failure here
says what to look at (tasks/service/prefect_api.py, tasks/gx_adapter.py)."""

import pytest

from tasks import gx_adapter
from tasks.internals import source_says
from tasks.service import prefect_api

INTERNALS = [("prefect", i) for i in prefect_api.INTERNALS] + [("gx", i) for i in gx_adapter.INTERNALS]


@pytest.mark.parametrize(("framework", "internal"), INTERNALS, ids=[f"{f}: {i.name}" for f, i in INTERNALS])
def test_internal_still_holds(framework, internal):
    problem = internal.check()
    assert problem is None, f"{framework} internal changed — {internal.name}: {problem} (used because {internal.why})"


def test_a_changed_internal_is_named():
    """The checks do fail: a string Prefect's server module does not hold, a URL GX's templates do not load."""
    said = source_says("prefect", "server/api/server.py", 'os.getenv("PREFECT__SERVER_GONE")')
    assert said is not None and "no longer contains ['os.getenv(\"PREFECT__SERVER_GONE\")']" in said
    assert source_says("prefect", "server/api/server.py", "def create_app(") is None


def test_every_framework_internal_is_in_its_adapter():
    """Prefect's server package and GX's internals are imported by their adapter only (flows use the
    documented API: flows, tasks, artifacts, events, runtime, the client, settings)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    private = ("prefect.server", "prefect._internal", "great_expectations")
    allowed = {"tasks/service/prefect_api.py": "prefect.server", "tasks/gx_adapter.py": "great_expectations"}
    found = []
    for pkg in ("tasks", "flows", "talent_index", "scoring"):
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                else:
                    continue
                for n in names:
                    if n.startswith(private) and not n.startswith(allowed.get(rel, "\0")):
                        found.append(f"{rel}:{node.lineno} imports {n}")
    assert found == []
