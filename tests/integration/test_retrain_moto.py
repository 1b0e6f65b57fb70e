"""The real retrain handler (app.py) on moto S3 at real volume: a 2021-trained live model (its training rows
kept, as make train keeps them), DAYS days of real 2023-03 rides in time order (every ride, ~2,200 a day)
captured with it and their actual durations reported hourly at dropoff, as clients report them; the
alarm's retrain gathers the RETRAIN_TARGET_ROWS most recent of them backwards from now, mixes in the
champion's rows and promotes a challenger with a lower holdout MAE."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws

from infra.audit_table import main as audit_table
from lambda_retrain.aws import S3Store
from lambda_retrain.guards import lock_holder
from tests.doubles.captures import capture_objects, pid, pids
from training import evaluation_set
from training.data import PICKUP, frame_features, load_month
from training.export import export_bundle
from training.model import ModelParams, fit
from training.pipeline import Rows, encode_rows
from training.publish import publish_live, publish_version
from trip_core.bundle import load_bundle
from trip_core.capture import Actual, CaptureBatch, encode_actuals
from trip_core.contracts import (
    LIVE_POINTER_KEY,
    LOOP_LOCK_KEY,
    actuals_key,
    bundle_key,
    profile_key,
    training_rows_key,
)
from trip_core.pointer import ModelPointer
from trip_core.rides import to_new_york_naive

ROOT = Path(__file__).parents[2]
DATA = ROOT / "data"
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MODELS_BUCKET": "models-it",
    "CAPTURE_BUCKET": "capture-it",
    "MODEL_NAME": "trip-duration",
    "RETRAIN_COOLDOWN_MINUTES": "30",
    "RETRAIN_ALARMS": "trip-duration-it-drift-share",
    "ROLLBACK_ALARMS": "trip-duration-it-mae-ratio",
    "POWERTOOLS_SERVICE_NAME": "retrain",
}
DAYS = 6  # of 2023-03: more labelled rides than RETRAIN_TARGET_ROWS (template default 10000)
TARGET_ROWS = 10_000


@dataclass
class Context:
    function_name: str = "trip-duration-it-retrain"
    memory_limit_in_mb: int = 3008
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:retrain"
    aws_request_id: str = "req-1"


def load_app() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "retrain_app_under_test", ROOT / "lambda_retrain" / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("retrain_app_under_test", None)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3")
        for bucket in (ENV["MODELS_BUCKET"], ENV["CAPTURE_BUCKET"]):
            s3.create_bucket(Bucket=bucket)
        put_alarm_in_alarm(ENV["RETRAIN_ALARMS"])
        yield s3


def put_alarm_in_alarm(name: str) -> None:
    """The drift alarm as CloudWatch describes it: the loop re-checks a notification's claim there."""
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        MetricName="DriftShare",
        Namespace="TripDuration",
        Statistic="Maximum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.3,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="drift")


def publish_2021_model(s3: Any) -> bytes:
    month = load_month(str(DATA / "green_tripdata_2021-01.parquet")).frame.sample(20_000, random_state=0)
    body = export_bundle(
        fit(frame_features(month), month["duration"].to_numpy(), ModelParams(max_iter=150)), {}
    )
    bundle = load_bundle(body)
    pointer = ModelPointer(
        "trip-duration",
        "1",
        bundle_key("trip-duration", "1"),
        bundle.sha256,
        profile_key("trip-duration", "1"),
        6.0,
        4.0,
        "run-2021",
        "2024-01-01T00:00:00Z",
    )
    store = S3Store(ENV["MODELS_BUCKET"], s3)
    publish_version(store, pointer, body, b"{}")
    rows = Rows(frame_features(month), month["duration"].to_numpy())
    store.put(training_rows_key("trip-duration", "1"), encode_rows(rows))
    publish_live(store, pointer)
    # the training side's trusted evaluation set, which the loop's gate requires
    evaluation_set.publish(store, *evaluation_set.from_month(str(DATA / "green_tripdata_2023-02.parquet")))
    return body


def capture_2023_rides(s3: Any, bundle: bytes, at: datetime) -> pd.DataFrame:
    """What serving + the client leave behind: capture batches of 100 and the actuals, each reported in
    the hour of its dropoff; the rides are 2023-03's first DAYS days, served live: moved by whole weeks
    (same hours and weekdays) to end before `at`."""
    frame = load_month(str(DATA / "green_tripdata_2023-03.parquet")).frame.sort_values(PICKUP)
    frame = frame[frame[PICKUP] < pd.Timestamp("2023-03-01") + pd.Timedelta(days=DAYS)].reset_index(drop=True)
    week = pd.Timedelta(days=7)
    frame[PICKUP] += week * ((pd.Timestamp(to_new_york_naive(at)) - frame[PICKUP].max()) // week)
    pred = load_bundle(bundle).predict(frame_features(frame))
    store = S3Store(ENV["CAPTURE_BUCKET"], s3)
    rows = len(frame)
    ids: list[int | str] = list(range(rows))
    for start in range(0, rows, 100):
        rows = frame.iloc[start : start + 100]
        batch = CaptureBatch(
            "trip-duration",
            "1",
            at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            pids(ids[start : start + 100]),
            ids[start : start + 100],
            [t.isoformat() for t in rows[PICKUP]],
            rows["PULocationID"].astype(int).tolist(),
            rows["DOLocationID"].astype(int).tolist(),
            rows["trip_distance"].astype(float).tolist(),
            pred[start : start + 100].tolist(),
        )
        for key, body in capture_objects(batch, "shardId-000", f"{start:08d}").items():
            store.put(key, body)
    reported = new_york_to_utc_hours(frame[PICKUP] + pd.to_timedelta(frame["duration"], unit="min"))
    for hour in sorted(set(reported)):
        actuals = [Actual(pid(int(i)), float(frame["duration"][i])) for i in np.flatnonzero(reported == hour)]
        store.put(actuals_key(hour, "client"), encode_actuals(actuals))
    return frame


def new_york_to_utc_hours(local: pd.Series) -> np.ndarray:
    """The UTC hour (aware datetime) each New York local time lies in."""
    utc = local.dt.tz_localize("America/New_York", ambiguous=True, nonexistent="shift_forward").dt.tz_convert(
        UTC
    )
    return np.array([moment.to_pydatetime() for moment in utc.dt.floor("h")], dtype=object)


def test_drift_alarm_retrains_on_2023_rides_and_promotes(
    aws: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    champion = publish_2021_model(aws)
    served = capture_2023_rides(aws, champion, datetime.now(UTC) - timedelta(hours=2))
    app = load_app()
    alarm = {"AlarmName": "trip-duration-it-drift-share", "NewStateValue": "ALARM", "NewStateReason": "drift"}
    started = time.perf_counter()
    result = app.lambda_handler({"Records": [{"Sns": {"Message": json.dumps(alarm)}}]}, Context())
    seconds = time.perf_counter() - started
    (decision,) = result["decisions"]
    assert decision["kind"] == "promoted", decision["verdict"]
    m, data = decision["metrics"], decision["data"]
    print(
        f"\nretrain on {data['train_rows']} rows (+{data['holdout_rows']} holdout) in {seconds:.1f} s "
        f"(fit {m['fit_seconds']} s): holdout MAE champion(2021) {m['champion_holdout_mae']:.3f} -> "
        f"challenger {m['challenger_holdout_mae']:.3f} min"
    )
    per_day = len(served) / DAYS
    print(f"{len(served)} rides in {DAYS} days ({per_day:.0f} a day), {data['ranges_read']} ranges read")
    assert data["labelled_rows"] == TARGET_ROWS < len(served)  # the most recent, not every ride
    assert data["pickup_range"][1] == str(served[PICKUP].max().to_datetime64().astype("datetime64[s]"))
    assert data["champion_rows"] == 20_000 and data["recent_weight"] == 2.0
    assert m["challenger_holdout_mae"] < m["champion_holdout_mae"]
    live = ModelPointer.from_json(
        aws.get_object(Bucket=ENV["MODELS_BUCKET"], Key=LIVE_POINTER_KEY)["Body"].read()
    )
    assert live.version.startswith("loop-") and abs(live.validation_mae - m["challenger_holdout_mae"]) < 1e-9
    body = aws.get_object(Bucket=ENV["MODELS_BUCKET"], Key=live.bundle_key)["Body"].read()
    assert load_bundle(body, expected_sha256=live.bundle_sha256).sha256 == live.bundle_sha256

    # within the cooldown the same alarm is audited as skipped; the table lists both decisions
    again = app.lambda_handler({"Records": [{"Sns": {"Message": json.dumps(alarm)}}]}, Context())
    assert again["decisions"][0]["kind"] == "skipped"
    table = audit_table(["--bucket", ENV["MODELS_BUCKET"]])
    assert "promoted" in table and "skipped" in table
    lock = aws.get_object(Bucket=ENV["MODELS_BUCKET"], Key=LOOP_LOCK_KEY)["Body"].read()
    assert lock_holder(lock, datetime.now(UTC)) is None  # released
