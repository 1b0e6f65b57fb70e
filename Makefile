# Targets a newcomer guesses. Every target that needs the project venv depends on it.
SHELL := /bin/bash
PYTHON_BASE ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.PHONY: install test lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON_BASE) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e ".[train,dev]"
	touch $@

test: install
	$(PY) -m pytest tests/unit tests/integration

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy trip_core training lambda_predict lambda_monitor infra benchmarks tests

.PHONY: train
# Trains on the committed 2023-01 + 2023-02, validates on 2023-03, registers and gates (promotes if better).
train: install
	$(PY) -m training.train --train data/green_tripdata_2023-01.parquet data/green_tripdata_2023-02.parquet \
		--valid data/green_tripdata_2023-03.parquet
