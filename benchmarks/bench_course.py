"""The course's serving path and model, measured the same way as ours: JSON lines {"metric","value","unit"}.

- course_cold_start_seconds: fresh process: import mlflow.pyfunc + boto3, load the pyfunc model,
  handle a one-record Kinesis event (first prediction); median of COLD_RUNS.
- course_warm_batch{100,500}_ms: its handler on a Kinesis batch, PutRecord to an in-memory fake; median.
- course_package_mb (full mode): `pip install --target` of its dependency set (mlflow, scikit-learn, boto3).
- course_rmse / course_mae on the validation month, trained on the same months as ours.

Usage: bench_course.py --model-dir DIR [--quick]   (DIR caches the trained course model)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

TRAIN = [str(ROOT / "data/green_tripdata_2023-01.parquet"), str(ROOT / "data/green_tripdata_2023-02.parquet")]
VALID = str(ROOT / "data/green_tripdata_2023-03.parquet")
COLD_RUNS = 5
WARM_RUNS = 7

COLD_SCRIPT = """
import time
started = time.perf_counter()
import boto3, mlflow.pyfunc
from benchmarks.course_reference import CourseHandler
from benchmarks.bench_predict import batch_event
class FakeKinesis:
    def put_record(self, **kwargs): return {{"SequenceNumber": "1", "ShardId": "shardId-000000000000"}}
model = mlflow.pyfunc.load_model({model!r})
CourseHandler(model, FakeKinesis())(batch_event(1))
print(time.perf_counter() - started)
"""


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


class FakeKinesis:
    def __init__(self) -> None:
        self.calls = 0

    def put_record(self, **kwargs: Any) -> dict[str, str]:
        self.calls += 1
        return {"SequenceNumber": str(self.calls), "ShardId": "shardId-000000000000"}


def course_model(model_dir: Path) -> Path:
    from benchmarks.course_reference import train_course_model

    path = model_dir / "course_model"
    if not (path / "MLmodel").exists():
        model_dir.mkdir(parents=True, exist_ok=True)
        train_course_model(TRAIN, model_dir)
    return path


def bench_cold(model: Path) -> float:
    script = COLD_SCRIPT.format(model=str(model))
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    times = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def bench_warm(model_path: Path, size: int) -> float:
    import mlflow.pyfunc

    from benchmarks.bench_predict import batch_event
    from benchmarks.course_reference import CourseHandler

    kinesis = FakeKinesis()
    handler = CourseHandler(mlflow.pyfunc.load_model(str(model_path)), kinesis)
    event = batch_event(size)
    handler(event)  # warm-up
    times = []
    for _ in range(WARM_RUNS):
        started = time.perf_counter()
        handler(event)
        times.append(time.perf_counter() - started)
    assert kinesis.calls == size * (WARM_RUNS + 1)
    return statistics.median(times) * 1000


def bench_quality(model_path: Path) -> tuple[float, float]:
    import mlflow.pyfunc
    import numpy as np
    import pandas as pd

    from benchmarks.course_reference import frame_dicts
    from training.data import concat, load_months

    frame = concat(load_months([VALID]))
    model = mlflow.pyfunc.load_model(str(model_path))
    predicted = model.predict(pd.DataFrame(frame_dicts(frame)))
    error = np.asarray(predicted) - frame["duration"].to_numpy()
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))


def bench_package() -> float:
    from benchmarks.bench_predict import pip_install_size_mb

    with tempfile.TemporaryDirectory(prefix="bench-course-pkg-") as tmp:
        return pip_install_size_mb(Path(tmp), "mlflow==3.17.2", "scikit-learn==1.9.1", "boto3==1.44.8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".state/bench")
    parser.add_argument("--quick", action="store_true", help="in-process figures only (no package install)")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    model = course_model(args.model_dir)
    rmse, mae = bench_quality(model)
    emit("course_rmse", rmse, "min")
    emit("course_mae", mae, "min")
    emit("course_cold_start_seconds", bench_cold(model), "s")
    for size in (100, 500):
        emit(f"course_warm_batch{size}_ms", bench_warm(model, size), "ms")
    if not args.quick:
        emit("course_package_mb", bench_package(), "MB")


if __name__ == "__main__":
    main()
