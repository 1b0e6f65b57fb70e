#!/usr/bin/env bash
# LocalStack in host mode (no Docker), every listener on 127.0.0.1, Lambda via the `local` executor.
#   infra/localstack.sh up      start (idempotent), wait for /_localstack/health
#   infra/localstack.sh down    stop what `up` started (by PID) and clean its state
#   infra/localstack.sh status
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=$ROOT/.state/localstack
PIDFILE=$STATE/localstack.pid
LOG=$STATE/localstack.log
FS=$STATE/fs
PORT=4566
URL=http://127.0.0.1:$PORT

ls_env() {
  export GATEWAY_LISTEN=127.0.0.1:$PORT GATEWAY_SERVER=hypercorn LOCALSTACK_HOST=127.0.0.1:$PORT
  export SQS_ENDPOINT_STRATEGY=path  # queue URLs on 127.0.0.1:4566, not sqs.<region>.127.0.0.1
  export DNS_ADDRESS=0 DISABLE_EVENTS=1 SKIP_SSL_CERT_DOWNLOAD=1 OVERRIDE_IN_DOCKER=0
  export FILESYSTEM_ROOT=$FS
  export LAMBDA_RUNTIME_EXECUTOR=local LAMBDA_LOCAL_PYTHON3_12=$ROOT/.venvs/lambda-python3.12/bin/python
  # the retrain function's cold start (numpy, scipy, scikit-learn) outlasts the default 20 s on a loaded machine
  export LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT=${LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT:-90}
  # event-source mappings: LocalStack waits POLL_INTERVAL (default 1 s) after every batch, so one shard
  # tops out near BatchSize records/s, and backs off up to 10 s on an empty stream. AWS keeps polling
  # while a shard has records and polls an idle one about once a second: come closer to that.
  export LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC=${LAMBDA_EVENT_SOURCE_MAPPING_POLL_INTERVAL_SEC:-0.1}
  export LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC=${LAMBDA_EVENT_SOURCE_MAPPING_MAX_BACKOFF_ON_EMPTY_POLL_SEC:-1}
  export NODE_OPTIONS="--require $ROOT/infra/localstack/node-listen-loopback.js"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1
  mkdir -p "$FS"
}

running() { [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
healthy() { curl -fsS --max-time 2 "$URL/_localstack/health" >/dev/null 2>&1; }

up() {
  if running && healthy; then echo "LocalStack already running (pid $(cat "$PIDFILE")) on $URL"; return; fi
  infra/venvs.sh localstack
  ls_env
  if [[ ! -f $STATE/.kinesis-mock ]]; then  # pre-install the Kinesis server (npm, once)
    .venvs/localstack/bin/python -m localstack.cli.lpm install kinesis-mock >>"$LOG" 2>&1 && touch "$STATE/.kinesis-mock"
  fi
  local t0=$SECONDS
  nohup .venvs/localstack/bin/python -m localstack.runtime.main >>"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 1 240); do
    healthy && break
    running || { echo "LocalStack died; tail of $LOG:" >&2; tail -30 "$LOG" >&2; exit 1; }
    sleep 0.25
  done
  healthy || { echo "LocalStack not healthy after 60 s (log: $LOG)" >&2; exit 1; }
  echo "LocalStack up on $URL in $((SECONDS - t0)) s (pid $(cat "$PIDFILE"), log $LOG)"
}

down() {
  if running; then
    local pid; pid=$(cat "$PIDFILE")
    # the Lambda runtimes and the kinesis server are children in their own groups: stop them by
    # their parent pid before LocalStack itself
    local children; children=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    for c in $children; do kill -KILL "$c" 2>/dev/null || true; done
    echo "LocalStack stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
  # clean state; keep the installed packages (usr/lib/localstack: kinesis-local, var/lib/localstack/lib)
  # for a fast restart
  rm -rf "$FS/var/lib/localstack/tmp" "$FS/var/lib/localstack/cache" "$FS/var/lib/localstack/logs" \
    "$FS/var/lib/localstack/state" "$FS/etc" "$FS/tmp"
  # fixed folders in the system temp dir: S3 object data, unzipped Lambda code, local executor logs
  local tmp; tmp=$(python3 -c 'import tempfile; print(tempfile.gettempdir())')
  rm -rf "$tmp/localstack-s3-storage" "$tmp/lambda" "$tmp/lambda-local"
}

status() {
  if running && healthy; then curl -fsS "$URL/_localstack/health"; echo; else echo "LocalStack not running"; exit 1; fi
}

case "${1:-}" in
  up) up ;; down) down ;; status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
