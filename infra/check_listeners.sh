#!/usr/bin/env bash
# Every TCP listener of the processes we started (LocalStack and its children, MLflow) is on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
pids=()
for f in .state/localstack/localstack.pid .state/mlflow/mlflow.pid; do
  [[ -f $f ]] || continue
  p=$(cat "$f"); pids+=("$p")
  # descendants (kinesis server, Lambda runtimes, server workers)
  while read -r c; do [[ -n $c ]] && pids+=("$c"); done < <(pgrep -g "$(ps -o pgid= "$p" | tr -d ' ')" 2>/dev/null || true)
  while read -r c; do [[ -n $c ]] && pids+=("$c"); done < <(pgrep -P "$p" 2>/dev/null || true)
done
bad=0
while read -r line; do
  pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -1 | cut -d= -f2 || true)
  [[ -n $pid ]] || continue
  for p in "${pids[@]}"; do
    if [[ $p == "$pid" ]]; then
      addr=$(awk '{print $4}' <<<"$line")
      case $addr in 127.0.0.1:*|\[::1\]:*) echo "ok   $addr pid $pid";; *) echo "BAD  $addr pid $pid"; bad=1;; esac
      break
    fi
  done
done < <(ss -ltnpH)
exit $bad
