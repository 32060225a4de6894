# Two entry points for a fresh machine: `make run` (the main job, offline sample) and `make test`.
# Both create .venv from the lock file (uv.lock) when it is missing or older than the lock, and vendor
# the Data Docs' stylesheets and scripts (pinned npm tarballs, ops/data-docs-assets.json) into vendor/.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export PREFECT_HOME := $(CURDIR)/.prefect
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

.PHONY: run test lint install audit clean-data recordings bench

run: .venv/.installed
	.venv/bin/talent-index refresh --offline

test: .venv/.installed
	.venv/bin/python -m pytest

# ruff (lint and format) and mypy on the whole tree; .ci/run runs it before the tests
lint: .venv/.installed
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

install: .venv/.installed

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.installed: uv.lock pyproject.toml ops/data-docs-assets.json | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	.venv/bin/python scripts/vendor_assets.py
	@touch $@

# Benchmarks against the peers users would pick; writes benchmarks/results/<date>.json and benchmarks/README.md.
bench: .venv/.installed
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON) --group bench
	cd benchmarks && ../.venv/bin/python run.py

# List the locked dependencies with versions (check them with `pip-audit` where the network allows).
audit: | $(UV)
	$(UV) export --frozen --no-hashes --format requirements-txt | grep -v '^ *#'

# Rebuild the bundled offline sample from data/sample/values.csv.
recordings: .venv/.installed
	.venv/bin/python scripts/build_recordings.py

# Remove run-time data (raw responses, snapshots, releases, per-run Data Docs) of this checkout.
clean-data:
	rm -rf data/raw data/snapshots data/releases data/runs data/.refresh.lock data/FORMAT.json
