#!/usr/bin/env bash
# MLflow tracking server on 127.0.0.1:5000: SQLite backend under .state/mlflow, artifacts in the
# LocalStack models bucket (s3://<models bucket>/mlflow, the bucket comes with `make deploy-local`).
#   infra/mlflow.sh up | down | status
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$PWD/.state/mlflow
PIDFILE=$STATE/mlflow.pid
LOG=$STATE/mlflow.log
PORT=${MLFLOW_PORT:-5000}
URL=http://127.0.0.1:$PORT
STAGE=${STAGE:-local}
MODELS_BUCKET=${MODELS_BUCKET:-trip-duration-$STAGE-models-000000000000-us-east-1}  # template.yaml's name on LocalStack

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
healthy() { curl -fsS --max-time 2 "$URL/health" >/dev/null 2>&1; }

up() {
  if running && healthy; then echo "MLflow already running on $URL"; return; fi
  mkdir -p "$STATE"
  export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true
  export MLFLOW_S3_ENDPOINT_URL=${LOCALSTACK_ENDPOINT:-http://127.0.0.1:4566}
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
  local t0=$SECONDS
  # setsid: own process group, so `down` stops the server and its workers together
  setsid nohup .venv/bin/mlflow server --host 127.0.0.1 --port "$PORT" --workers 1 \
    --backend-store-uri "sqlite:///$STATE/mlflow.db" \
    --artifacts-destination "s3://$MODELS_BUCKET/mlflow" >>"$LOG" 2>&1 < /dev/null &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 240); do
    healthy && break
    running || { echo "MLflow died; tail of $LOG:" >&2; tail -30 "$LOG" >&2; exit 1; }
    sleep 0.25
  done
  healthy || { echo "MLflow not healthy after 60 s (log: $LOG)" >&2; exit 1; }
  echo "MLflow up on $URL in $((SECONDS - t0)) s (artifacts s3://$MODELS_BUCKET/mlflow, log $LOG)"
}

down() {
  if running; then
    local pid; pid=$(cat "$PIDFILE")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "MLflow stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
  [[ ${KEEP_STATE:-0} == 1 ]] || rm -rf "$STATE"
}

case "${1:-}" in
  up) up ;; down) down ;; status) running && healthy && echo "MLflow on $URL" || { echo "MLflow not running"; exit 1; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
