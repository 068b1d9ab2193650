# Two commands from a fresh clone: `make demo` and `make test`. Both build .venv when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test bench lint setup clean browser

setup: $(STAMP)

# torch is pinned to the CPU wheel (torch==2.13.0) in pyproject.toml: any other spec pulls CUDA.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	@touch $(STAMP)

browser:
	@bash scripts/ensure-debian-tool.sh chromium chromium "the dashboard test"

demo: setup
	$(BIN)/aiw demo

test: setup browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: setup
	@bash scripts/ensure-debian-tool.sh wrk wrk "the serving benchmark's load generator"
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .aiw test-artifacts bench-results .pytest_cache .mypy_cache .ruff_cache
