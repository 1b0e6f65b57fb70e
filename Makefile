# Targets a newcomer guesses. Every target that needs the project venv depends on it.
SHELL := /bin/bash
PYTHON_BASE ?= $(shell infra/venvs.sh python)
VENV := .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true

.DEFAULT_GOAL := install
.PHONY: help install test lint check bench bench-quick clean

help:  ## this list: every documented target
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-zA-Z0-9_-]+):.*## /\1\t/' | expand -t 18

install: $(VENV)/.installed  ## .venv (Python 3.12, requirements.lock)

$(VENV)/.installed: pyproject.toml requirements.lock infra/venvs.sh
	rm -rf $(VENV)
	$(PYTHON_BASE) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c requirements.lock -e ".[train,dev]"
	touch $@

test: install sam-venv  ## unit + integration tests (one worker per core, a test file per worker)
	$(VENV)/bin/pytest -n auto --dist loadfile tests/unit tests/integration

lint: install  ## ruff, ruff format, mypy, cfn-lint, checkov
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy trip_core training lambda_predict lambda_monitor lambda_actuals lambda_retrain infra benchmarks tests
	$(VENV)/bin/cfn-lint template.yaml
	# Security scan of the template; each skipped check is justified in the resource's Metadata.checkov.
	infra/venvs.sh checkov
	BC_SKIP_MAPPING=TRUE .venvs/checkov/bin/checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

# README's test command (and CI's): everything, on a fresh machine, servers started and stopped.
check: install sam-venv lint test localstack-test bench-quick  ## what CI runs: lint, tests (the SAM translations too), LocalStack end to end, quick bench

bench: install localstack-venv sam-venv  ## performance record: ours vs the course, Evidently; e2e on LocalStack -> bench-results.jsonl
	infra/venvs.sh evidently
	$(PY) benchmarks/run.py

bench-quick: install  ## in-process figures only (CI proves they still run; never gates on a time)
	$(PY) benchmarks/run.py --quick

clean:  ## remove what the project built locally (venvs, state, build output)
	rm -rf .venv .venvs .state .aws-sam artifacts mlruns mlflow.db bench-results.jsonl

.PHONY: train score replay evaluation-set
# Trains on the committed 2023-01 + 2023-02, validates on 2023-03, registers and gates (promotes if better);
# publishes 2023-03 as the trusted evaluation set when MODELS_BUCKET is set.
train: install  ## train on 2023-01 + 2023-02, validate on 2023-03, register, gate
	$(PY) -m training.train --train data/green_tripdata_2023-01.parquet data/green_tripdata_2023-02.parquet \
		--valid data/green_tripdata_2023-03.parquet

# Batch scoring with the live bundle ($$MODELS_BUCKET) or a local one, through the serving code; e.g.
# make score SCORE_ARGS="--input data/green_tripdata_2023-03.parquet --output /tmp/scored.parquet --bundle /tmp/model"
score: install  ## score TLC parquet / rides JSON lines (SCORE_ARGS="--input ... --output ... [--bundle DIR]")
	$(PY) -m training.score $(SCORE_ARGS)

# The gate's trusted yardstick, refreshed as a new month lands: make evaluation-set MONTH=data/green_tripdata_2023-03.parquet
MONTH ?= data/green_tripdata_2023-03.parquet
evaluation-set: install  ## publish MONTH (default 2023-03) as the evaluation set to $$MODELS_BUCKET
	$(PY) -m training.evaluation_set --month $(MONTH)

# Time-ordered replay on a simulated clock, in-process over moto (docs/replay.md); e.g.
# make replay REPLAY_ARGS="--train data/green_tripdata_2021-01.parquet --valid data/green_tripdata_2021-02.parquet \
#   --replay data/green_tripdata_2023-03.parquet"
replay: install
	$(PY) -m infra.replay $(REPLAY_ARGS)

# ---------------------------------------------------------------- local stack (infra/, see infra/README.md)
.PHONY: localstack-venv sam-venv localstack-up localstack-down localstack-status mlflow-up mlflow-down \
	check-listeners sam-validate sam-build deploy-local delete-local

localstack-venv:  ## .venvs/localstack (Python 3.13, localstack-core + `local` Lambda executor)
	infra/venvs.sh localstack

sam-venv:  ## .venvs/sam (aws-sam-cli + samlocal)
	infra/venvs.sh sam

localstack-up:  ## LocalStack on 127.0.0.1:4566, no Docker
	infra/localstack.sh up

localstack-down:  ## stop it (by PID) and clean its state
	infra/localstack.sh down

localstack-status:
	infra/localstack.sh status

mlflow-up: install  ## MLflow on 127.0.0.1:5000, artifacts in the LocalStack models bucket
	infra/mlflow.sh up

mlflow-down:
	infra/mlflow.sh down

check-listeners:  ## every listener we started is on 127.0.0.1
	infra/check_listeners.sh

sam-validate: sam-venv
	SAM_CLI_TELEMETRY=0 .venvs/sam/bin/sam validate --lint --region us-east-1

sam-build: sam-venv
	SAM_CLI_TELEMETRY=0 .venvs/sam/bin/sam build

deploy-local: install sam-venv localstack-up  ## sam build + deploy template.yaml to LocalStack
	infra/deploy_local.sh

delete-local: sam-venv
	infra/deploy_local.sh delete

# ---------------------------------------------------------------- the whole service on this machine
.PHONY: demo localstack-test reliability chaos

demo: install localstack-venv sam-venv  ## README's first command: LocalStack + MLflow, train, deploy, stream a month, monitor, summary
	$(PY) -m infra.demo

reliability: install localstack-venv sam-venv  ## 10,000 real rides + 1% bad through the deployed stack, every ride accounted
	$(PY) -m infra.load_test --rides 10000

chaos: install localstack-venv sam-venv  ## model pointer, S3, predictions stream taken away in turn under real rides: every ride accounted, each fault an alarm
	$(PY) -m infra.chaos

localstack-test: install localstack-venv sam-venv  ## fresh LocalStack, deploy, MLflow, small model, pytest -m localstack, always tear down
	tests/e2e/run.sh

# ---------------------------------------------------------------- failed batches (infra/replay_failures)
.PHONY: replay-failures
# When PredictFailuresAlarm fires (ActualsFailuresAlarm: FAILURES=actuals). The LocalStack stack unless
# REPLAY_FAILURES_ARGS="--stack <name> --region <region>" (AWS, default credentials); exit 1 if a message is kept.
FAILURES ?= predict
replay-failures: install  ## re-drive the ranges in the predict (FAILURES=actuals) failures queue from the stream
	$(PY) -m infra.replay_failures --queue $(FAILURES) $(REPLAY_FAILURES_ARGS)

# ---------------------------------------------------------------- closed loop (lambda_retrain/, docs/architecture.md)
.PHONY: functions retrain-size audit-table loop-demo

functions: install  ## build every function's zip content into .state/functions/<Function> (the rule sam build runs) and print sizes
	for fn in Predict PredictRide Monitor Actuals Retrain; do rm -rf .state/functions/$${fn}Function; \
		$(MAKE) -s -f infra/function.mk build-$${fn}Function ARTIFACTS_DIR=$(CURDIR)/.state/functions/$${fn}Function; done
	@du -sm .state/functions/* | awk '{print $$2 " unzipped: " $$1 " MB (limit 250)"}'

retrain-size: functions  ## the retrain function's unzipped size (< 250 MB)

loop-demo: install localstack-venv sam-venv  ## the closed loop on LocalStack: 2021 model, 2023 rides, drift alarm -> retrain -> promote -> hot swap; gate refusal; rollback; audit
	$(PY) -m infra.loop_demo

rollout-demo: install localstack-venv sam-venv  ## safe rollout on LocalStack: shadow -> verdict -> canary 10% -> live; a bad challenger stopped in shadow; approve mode
	$(PY) -m infra.rollout_demo

# On-call commands (infra/operate.py): the LocalStack stack, or STACK=<name> [REGION=<region>] on AWS
OPERATE = $(PY) -m infra.operate $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION))
.PHONY: status retrain approve reject rollback rollout-demo

status: install  ## live / shadow / canary versions with their predictions, the rollout's stage, last decisions, alarms
	$(OPERATE) status

retrain: install  ## start the retrain pipeline now: make retrain REASON="why" (audited)
	$(OPERATE) retrain --reason "$(REASON)"

approve: install  ## the version awaiting approval goes on: make approve VERSION=n [REASON=...]
	$(OPERATE) approve --version "$(VERSION)" $(if $(REASON),--reason "$(REASON)")

reject: install  ## the version awaiting approval is retired: make reject VERSION=n [REASON=...]
	$(OPERATE) reject --version "$(VERSION)" $(if $(REASON),--reason "$(REASON)")

rollback: install  ## serving/live.json back to version n: make rollback VERSION=n [REASON=...] (audited)
	$(OPERATE) rollback --version "$(VERSION)" $(if $(REASON),--reason "$(REASON)")

audit-table: install  ## the loop's decisions on the LocalStack stack, as a table
	$(PY) -m infra.audit_table --local
