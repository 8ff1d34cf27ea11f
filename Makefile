# Targets mirror CI (.ci/run). The virtualenv lives in .venv.
PY ?= .venv/bin/python
# CI adds ray and inference (EXTRAS=dev,ray,inference) so the Ray sweep test and the
# embeddings example run; the demo does not need them.
EXTRAS ?= dev
VENV_STAMP := .venv/.installed

.PHONY: install test test-unit test-integration lint format openapi openapi-check bench sandbox demo up clean

install: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $(VENV_STAMP)

test: install
	$(PY) -m pytest

test-unit: install
	$(PY) -m pytest tests/unit

test-integration: install
	$(PY) -m pytest tests/integration

lint: install
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks
	$(PY) -m mypy

format: install
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

openapi: install
	$(PY) -m gpunet.indexer.openapi > docs/openapi.json

openapi-check: install
	$(PY) -m gpunet.indexer.openapi | diff -u docs/openapi.json - \
		|| (echo "docs/openapi.json is stale: run make openapi" && exit 1)

bench: install
	$(PY) benchmarks/run_all.py

# Jobs run in a bubblewrap sandbox: install Debian's package when it is missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sandbox:
	@command -v bwrap >/dev/null || { \
		echo "installing bubblewrap, the job sandbox"; \
		$(SUDO) apt-get install -y -qq bubblewrap >/dev/null || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; }; }

demo: install sandbox
	.venv/bin/gpunet demo

up: install sandbox
	.venv/bin/gpunet up --nodes 4

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
