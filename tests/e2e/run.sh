#!/usr/bin/env bash
# `make localstack-test`: a fresh LocalStack, the stack deployed, MLflow up, a small-but-real model
# trained and published, then `pytest tests/e2e -m localstack`; LocalStack and MLflow are ALWAYS
# stopped (trap), and the exit code is pytest's.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true E2E_REQUIRED=1 SAM_CLI_TELEMETRY=0
T0=$SECONDS
step() { printf '\n== [%3d s] %s\n' "$((SECONDS - T0))" "$*"; }

teardown() {
  local code=$?
  step "tear down (mlflow-down, localstack-down)"
  infra/mlflow.sh down || true
  infra/localstack.sh down || true
  printf 'localstack-test: exit %d after %d s\n' "$code" "$((SECONDS - T0))"
  exit "$code"
}
trap teardown EXIT

step "fresh LocalStack"
infra/mlflow.sh down >/dev/null
infra/localstack.sh down >/dev/null
infra/localstack.sh up

step "deploy template.yaml"
mkdir -p .state/e2e
# the closed loop's test (test_loop.py): no cooldown, a short pointer TTL, and the local MLflow server (the
# retrain Lambda runs as a host process: it reaches 127.0.0.1); test_replay.py sends 2022 rides as they
# were: pickups years before their arrival, so the stack accepts pickups up to 10 years old
export PARAMETER_OVERRIDES="${PARAMETER_OVERRIDES:-} RetrainCooldownMinutes=0 AllowForcePromote=true PointerTtlSeconds=5 MaxPickupAgeDays=3653 MlflowTrackingUri=http://127.0.0.1:${MLFLOW_PORT:-5000}"
if ! infra/deploy_local.sh >.state/e2e/deploy.log 2>&1; then tail -40 .state/e2e/deploy.log; exit 1; fi
grep -E '^(sam build|  trip-duration-local-(predict|monitor|retrain):|Successfully)' .state/e2e/deploy.log || true
MODELS_BUCKET=$(.venv/bin/python -c 'from infra.aws import stack_outputs; print(stack_outputs()["ModelsBucketName"])')
export MODELS_BUCKET

step "MLflow server"
infra/mlflow.sh up

step "train a small model (--max-iter ${E2E_MAX_ITER:-30}) and publish it"
env AWS_ENDPOINT_URL=${LOCALSTACK_ENDPOINT:-http://127.0.0.1:4566} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
  AWS_DEFAULT_REGION=us-east-1 MLFLOW_TRACKING_URI=http://127.0.0.1:${MLFLOW_PORT:-5000} \
  .venv/bin/python -m training.train --max-iter "${E2E_MAX_ITER:-30}" \
  --train data/green_tripdata_2023-01.parquet data/green_tripdata_2023-02.parquet \
  --valid data/green_tripdata_2023-03.parquet --out .state/e2e/model 2>&1 | grep -E 'gate:|^\{' 

step "pytest tests/e2e -m localstack"
code=0
.venv/bin/python -m pytest tests/e2e -m localstack -p no:cacheprovider --durations=0 "$@" || code=$?
step "pytest exit $code"
exit "$code"
