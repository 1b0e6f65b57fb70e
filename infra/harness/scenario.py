"""What every scenario script does: console output, the local services started (LocalStack, the stack,
MLflow), a model trained and published, the predict function warmed up, rides streamed with a progress bar."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from infra.aws import ENDPOINT, STACK_NAME, env, stack_outputs
from infra.harness.mlflow import MLFLOW_URL
from infra.harness.rides import ROOT, Ride, ride_payload
from infra.harness.stack import Stack
from infra.harness.streams import PredictionsConsumer, stream_rides

OUT = ROOT / "artifacts" / "demo"  # gitignored


class Console:
    """Lines on stdout; the progress bar on stderr (one line, redrawn); a lock between them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bar_visible = False
        self.tty = sys.stderr.isatty()

    def say(self, text: str = "") -> None:
        with self.lock:
            self._clear_bar()
            print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"\n== {text}")

    def bar(self, done: int, total: int, extra: str, final: bool = False) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {extra}"
        with self.lock:
            if self.tty:
                sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
                self.bar_visible = not final
            elif final or done == total:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def _clear_bar(self) -> None:
        if self.bar_visible and self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.bar_visible = False


CONSOLE = Console()
SAY = CONSOLE.say


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def run(cmd: list[str], what: str, extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a step's command, stream its status lines indented; (seconds, stdout) or exit on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if _worth_showing(line):
            SAY("   | " + line.rstrip()[:160])
    code = proc.wait()
    if code != 0:
        SAY("".join(lines[-40:]))
        sys.exit(f"{what} failed (exit {code}): {' '.join(cmd)}")
    return time.perf_counter() - started, "".join(lines)


def _worth_showing(line: str) -> bool:
    """Keep the output readable: the steps' own status lines, not SAM's tables or pip chatter."""
    keys = ("up on", "already running", "ready in", "building", "sam build", "Successfully", "No changes",
            "promoted", "gate:", "registered", "fitted", "Error", "error", "failed")  # fmt: skip
    return any(k in line for k in keys) and "botocore" not in line and "AlarmName" not in line


def healthy(url: str = f"{ENDPOINT}/_localstack/health") -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_services() -> tuple[Stack, dict[str, Any]]:
    """LocalStack, the stack, MLflow (in that order: MLflow's artifact bucket comes with the stack);
    (the stack, the deploy's timings)."""
    fresh = not healthy()
    CONSOLE.step("LocalStack (host mode, 127.0.0.1:4566)")
    if fresh:
        # a new LocalStack has empty buckets: an MLflow registry left from before would point at
        # artifacts that no longer exist, so start MLflow afresh too
        run(["infra/mlflow.sh", "down"], "mlflow down")
    run(["infra/localstack.sh", "up"], "localstack up")

    CONSOLE.step(f"deploy template.yaml (sam build + samlocal deploy, stack {STACK_NAME})")
    existed = _stack_exists()
    seconds, out = run(["infra/deploy_local.sh"], "deploy")
    kind = "create" if not existed else ("update, no changes" if "No changes to deploy" in out else "update")
    SAY(f"   deploy ({kind}): {seconds:.1f} s")

    stack = Stack.deployed()
    CONSOLE.step(f"MLflow server ({MLFLOW_URL}, artifacts in s3://{stack['ModelsBucketName']}/mlflow)")
    run(["infra/mlflow.sh", "up"], "mlflow up", {"MODELS_BUCKET": stack["ModelsBucketName"]})
    return stack, {"deploy_s": seconds, "deploy_kind": kind}


def _stack_exists() -> bool:
    try:
        stack_outputs(STACK_NAME)
        return True
    except Exception:
        return False


def train(stack: Stack, months: list[str], valid: str, out: Path) -> tuple[float, dict[str, Any]]:
    """training.train on `months`, validated on `valid`, registered in MLflow, gated, published to the
    stack's models bucket; (seconds, its JSON summary)."""
    cmd = [
        sys.executable,
        "-m",
        "training.train",
        "--train",
        *months,
        "--valid",
        valid,
        "--models-bucket",
        stack["ModelsBucketName"],
        "--out",
        str(out),
    ]
    extra = {
        **env(),
        "MLFLOW_TRACKING_URI": MLFLOW_URL,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }
    seconds, output = run(cmd, "training", extra)
    summary: dict[str, Any] = json.loads([ln for ln in output.splitlines() if ln.startswith("{")][-1])
    return seconds, summary


def warm_up(stack: Stack) -> None:
    """One ride by direct invoke (the answer shows the one-ride contract), and an empty batch to the
    rides-stream function: its cold start (new code after a deploy, bundle download) is not counted in
    the stream latency."""
    CONSOLE.step("direct invoke of the one-ride function; an empty batch warms up the stream function")
    good = ride_payload("demo-direct", 74, 168, 2.1)
    bad = {"ride": {**good["ride"], "trip_distance": "far"}, "ride_id": "demo-direct-bad"}
    for payload in (good, bad):
        started = time.perf_counter()
        answer = stack.invoke("PredictRideFunctionName", payload)
        ms = (time.perf_counter() - started) * 1000
        SAY(f"   {json.dumps(payload)}\n   -> {json.dumps(answer)} ({ms:.0f} ms)")
    assert stack.invoke("PredictFunctionName", {"Records": []}) == {"batchItemFailures": []}


def stream_with_bar(
    rides: list[Ride], stack: Stack, rate: float, consumer: PredictionsConsumer
) -> dict[Any, float]:
    """stream_rides into the rides stream with a progress bar; ride_id -> send time."""
    started = time.perf_counter()

    def progress(done: int, total: int, text: str) -> None:
        CONSOLE.bar(done, total, f"{text}  predictions out {len(consumer.received)}")

    sent_at = stream_rides(rides, stack["RidesStreamName"], rate, progress)
    CONSOLE.bar(len(rides), len(rides), f"rides sent in {time.perf_counter() - started:.1f} s", final=True)
    return sent_at


def show_prediction(record: dict[str, Any]) -> None:
    SAY(f"   <- {json.dumps(record)}")
