"""Prediction Lambda benchmark: prints one JSON line per figure, {"metric", "value", "unit"}.

The model is a REAL bundle trained by the training code (training.model.fit on 2023-01 + 2023-02,
exported by training.export), cached in artifacts/bench/bundle.npz (gitignored; BENCH_BUNDLE=path
to use another, BENCH_MAX_ITER to train a smaller one). Without scikit-learn or the data files it
falls back to a synthetic bundle of realistic size and says so on stderr.

- predict_init_seconds: fresh process, imports (numpy, Powertools, botocore, lambda_predict) +
  S3/Kinesis clients + model load (pointer + bundle from an in-memory bucket; S3 latency excluded),
  tracing off (POWERTOOLS_TRACE_DISABLED); median of INIT_RUNS runs. Goal ≤ 0.5 s.
- predict_init_traced_seconds: the same as in Lambda with tracing on (X-Ray SDK, botocore patched).
- predict_warm_batch100_ms / predict_warm_batch500_ms: the handler (Powertools decorators included)
  on a 100- / 500-record Kinesis batch, AWS calls replaced by in-memory fakes; median. Goal ≤ 1 ms
  for 100. A third line gives batch 100 with a one-stump model: the service's own overhead.
- predict_warm_batch100_shadow_ms: batch 100 with a shadow in the traffic plan (a second copy of the
  trained bundle scoring every ride beside the live one), and its ratio to the batch without.
  Goal ≤ 1.5 times.
- predict_package_mb: the function's zip content built by the one rule `sam build` runs
  (infra/function.mk), unzipped. Goal ≤ 120 MB.
"""

from __future__ import annotations

import base64
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
FUNCTION = ROOT / "lambda_predict"
INIT_RUNS = 7
WARM_RUNS = 300
BENCH_BUNDLE = ROOT / "artifacts" / "bench" / "bundle.npz"
TRAIN_MONTHS = ("green_tripdata_2023-01.parquet", "green_tripdata_2023-02.parquet")

INIT_SCRIPT = """
import time
started = time.perf_counter()
import os, sys
from aws_lambda_powertools.utilities.typing import LambdaContext  # noqa: F401
from lambda_predict.bootstrap import aws_clients
from lambda_predict.handler import handle_batch  # noqa: F401  (Powertools Logger, Metrics, BatchProcessor)
from tests.doubles.predict import InMemoryObjects, keyed_ids
from lambda_predict.model_provider import ModelProvider
from trip_core.bundle import load_bundle
from trip_core.contracts import LIVE_POINTER_KEY
bucket = InMemoryObjects({{k: open(os.path.join({bundle_dir!r}, k.replace('/', '__')), 'rb').read()
                          for k in {keys!r}}})
s3, kinesis, secrets = aws_clients()
provider = ModelProvider(bucket, LIVE_POINTER_KEY, load_bundle, ttl_seconds=60)
provider.load_initial()
print("BENCH", time.perf_counter() - started)
if {first_prediction!r}:  # cold start to first prediction, then peak memory over a 500-record batch
    import resource
    from benchmarks.bench_predict import Context, batch_event
    from tests.doubles.predict import InMemoryStream
    from lambda_predict.service import PredictService
    service = PredictService(provider, InMemoryStream(), InMemoryObjects(), InMemoryObjects(), keyed_ids())
    assert handle_batch(batch_event(1), Context(), service) == {{"batchItemFailures": []}}
    print("BENCH", time.perf_counter() - started)
    assert handle_batch(batch_event(500), Context(), service) == {{"batchItemFailures": []}}
    print("BENCH", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 4), "unit": unit}), flush=True)


def model_bundle() -> bytes:
    """The cached real bundle, else one trained now by the training code, else a synthetic one."""
    path = Path(os.environ.get("BENCH_BUNDLE") or BENCH_BUNDLE)
    if path.exists():
        print(f"bench model: trained bundle {path}", file=sys.stderr)
        return path.read_bytes()
    try:
        data = train_bundle(int(os.environ.get("BENCH_MAX_ITER", "500")))
    except Exception as exc:  # no scikit-learn/pandas, no data files: say so, still measure
        from tests.doubles.predict import synthetic_bundle

        print(f"bench model: SYNTHETIC bundle (training failed: {exc!r})", file=sys.stderr)
        return synthetic_bundle()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"bench model: trained now, cached in {path}", file=sys.stderr)
    return data


def train_bundle(max_iter: int) -> bytes:
    import numpy as np

    from training.data import concat, frame_features, load_months
    from training.export import export_bundle
    from training.model import ModelParams, fit, predict
    from trip_core.bundle import load_bundle

    train = concat(load_months([str(ROOT / "data" / name) for name in TRAIN_MONTHS]))
    features = frame_features(train)
    model = fit(features, train["duration"].to_numpy(), ModelParams(max_iter=max_iter))
    data = export_bundle(model, {"model_name": "trip-duration", "purpose": "benchmark"})
    sample = features[:: max(1, len(features) // 20_000)]
    parity = float(np.max(np.abs(load_bundle(data).predict(sample) - predict(model, sample))))
    if parity > 1e-3:
        raise RuntimeError(f"bundle parity {parity} > 1e-3")
    return data


def bench_cold(tmp: Path, bundle: bytes, traced: bool = False, first_prediction: bool = False) -> list[float]:
    """Medians over INIT_RUNS fresh processes of what the script prints: init seconds, and with
    `first_prediction` also seconds to the first prediction and peak RSS (MB) after a 500 batch."""
    from tests.doubles.predict import InMemoryObjects, publish

    bucket = InMemoryObjects()
    publish(bucket, "1", bundle)
    for key, body in bucket.objects.items():
        (tmp / key.replace("/", "__")).write_bytes(body)
    script = INIT_SCRIPT.format(
        bundle_dir=str(tmp),
        keys=sorted(bucket.objects),
        first_prediction=first_prediction,
    )
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "",
    }
    if traced:  # as in Lambda with `Tracing: Active`
        env.pop("POWERTOOLS_TRACE_DISABLED")
        env["LAMBDA_TASK_ROOT"] = str(FUNCTION)
        env.pop("AWS_SAM_LOCAL", None)
    runs = []
    for _ in range(INIT_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        runs.append([float(line.split()[1]) for line in out.stdout.splitlines() if line.startswith("BENCH ")])
    return [statistics.median(column) for column in zip(*runs, strict=True)]


def batch_event(n: int) -> dict[str, Any]:
    records = []
    for i in range(n):
        ride = {
            "ride": {
                "PULocationID": 1 + i % 263,
                "DOLocationID": 1 + (i * 7) % 263,
                "trip_distance": 0.5 + i % 20,
            },
            "ride_id": 1000 + i,
        }
        if i % 2:
            ride["ride"]["pickup_datetime"] = "2023-03-06T14:30:00"  # type: ignore[index]
        seq = str(49590338271490256608559692538361571095921575989136588898 + i)
        records.append(
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": str(i),
                    "sequenceNumber": seq,
                    "data": base64.b64encode(json.dumps(ride).encode()).decode(),
                    "approximateArrivalTimestamp": 1678113002.5,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{seq}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/rides",
            }
        )
    return {"Records": records}


class Context:
    function_name = "predict"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:predict"
    aws_request_id = "bench"


def bench_warm(bundle: bytes, n_records: int = 100, shadow: bool = False) -> float:
    """Median ms of the handler on a warm batch (`shadow`: see warm_handler)."""
    [median] = bench_warm_interleaved([warm_handler(bundle, shadow)], n_records)
    return median


def bench_warm_interleaved(handlers: list[Any], n_records: int) -> list[float]:
    """Median ms of each handler on the same warm batch, run in turn so machine noise hits them alike."""
    import contextlib
    import io
    import logging

    from trip_core.observability import logger

    event = batch_event(n_records)
    context = Context()
    times: list[list[float]] = [[] for _ in handlers]
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # the handler's log lines and EMF blobs
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.stream = sink
        for _ in range(WARM_RUNS):
            for lambda_handler, column in zip(handlers, times, strict=True):
                started = time.perf_counter()
                response = lambda_handler(event, context)
                column.append(time.perf_counter() - started)
                assert response == {"batchItemFailures": []}, response
                sink.seek(0)
                sink.truncate()
    return [statistics.median(column[10:]) * 1000 for column in times]


def warm_handler(bundle: bytes, shadow: bool = False) -> Any:
    """The handler with app.py's decorators over in-memory fakes; `shadow`: the live pointer's plan names
    a shadow (the same trained bundle as a second version), which scores every ride beside the live one."""
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    from lambda_predict.handler import handle_batch
    from lambda_predict.model_provider import ModelProvider
    from lambda_predict.service import PredictService
    from tests.doubles.predict import InMemoryObjects, InMemoryStream, keyed_ids, publish
    from trip_core.bundle import load_bundle
    from trip_core.contracts import LIVE_POINTER_KEY
    from trip_core.observability import logger, metrics, tracer
    from trip_core.plan import TrafficPlan, live_document

    models = InMemoryObjects()
    live = publish(models, "1", bundle)
    if shadow:
        publish(models, "2", bundle, live=False)
        models.objects[LIVE_POINTER_KEY] = live_document(live, TrafficPlan(shadow="2"))
    provider = ModelProvider(models, LIVE_POINTER_KEY, load_bundle, ttl_seconds=60)
    provider.load_initial()
    assert (provider.serving().shadow is not None) == shadow
    service = PredictService(provider, InMemoryStream(), InMemoryObjects(), InMemoryObjects(), keyed_ids())

    # The same decorator stack as app.lambda_handler (app.py itself loads from S3 at import).
    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics(capture_cold_start_metric=True)
    @tracer.capture_lambda_handler(capture_response=False)
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return handle_batch(event, context, service)

    return lambda_handler


def tree_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def pip_install_size_mb(target: Path, *requirements: str) -> float:
    """Unzipped size of `pip install --target` of the requirements (plus what is already in target)."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "--target", str(target), *requirements],
        check=True,
    )  # fmt: skip
    return tree_size_mb(target)


def bench_package(tmp: Path) -> float:
    """The zip content as `sam build` makes it (the one rule, infra/function.mk), unzipped."""
    target = tmp / "package"
    build = ["make", "-s", "-f", "infra/function.mk", "build-PredictFunction", f"ARTIFACTS_DIR={target}"]
    subprocess.run(build, cwd=ROOT, check=True)
    return tree_size_mb(target)


def main() -> None:
    from tests.doubles.predict import tiny_bundle

    bundle = model_bundle()
    with tempfile.TemporaryDirectory(prefix="bench-predict-") as tmp:
        init, first_prediction, peak_rss = bench_cold(Path(tmp), bundle, first_prediction=True)
        emit("predict_init_seconds", init, "s")
        emit("predict_cold_start_to_first_prediction_seconds", first_prediction, "s")
        emit("predict_handler_peak_rss_batch500_mb", peak_rss, "MB")
        (traced_init,) = bench_cold(Path(tmp), bundle, traced=True)
        emit("predict_init_traced_seconds", traced_init, "s")
        plain, shadowed = bench_warm_interleaved(
            [warm_handler(bundle), warm_handler(bundle, shadow=True)], 100
        )
        emit("predict_warm_batch100_ms", plain, "ms")
        emit("predict_warm_batch100_shadow_ms", shadowed, "ms")  # the plan with a shadow (issue 15: <= 1.5x)
        emit("predict_warm_batch100_shadow_ratio", shadowed / plain, "x")
        emit("predict_warm_batch500_ms", bench_warm(bundle, 500), "ms")
        # the same with a one-stump model: the service's own overhead, without the trees
        emit("predict_warm_batch100_stump_model_ms", bench_warm(tiny_bundle(), 100), "ms")
        if "--quick" not in sys.argv:
            emit("predict_package_mb", bench_package(Path(tmp)), "MB")


if __name__ == "__main__":
    main()
