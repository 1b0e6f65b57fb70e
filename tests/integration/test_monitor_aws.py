"""The monitor over moto S3 + CloudWatch: keys as documented, PutMetricData names/dimensions/values."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from lambda_monitor.aws import MAX_METRICS_PER_CALL, aws_ports, metric_batches
from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import MetricDatum
from lambda_monitor.service import run_event
from lambda_monitor.window import Window
from tests.doubles.captures import capture_objects, pid, rides_of_day
from tests.monitor_months import capture_batches, month_columns, reference_profile_dict, valid_rows
from trip_core.capture import Actual, Rejection, encode_actuals, encode_rejected
from trip_core.contracts import actuals_key, rejected_key, version_pointer_key
from trip_core.pointer import ModelPointer

# the scheduled run at NOW evaluates the rides picked up on 2023-03-06 in New York (05:00 to 05:00 UTC)
NOW = datetime(2023, 3, 7, 6, 0, 0, tzinfo=UTC)
WINDOW_END = "2023-03-07T05:00:00Z"
CONFIG = MonitorConfig(models_bucket="models", capture_bucket="capture", rejected_bucket="rejected")


def _value(cloudwatch: Any, name: str, dimensions: dict[str, str]) -> float:
    stats = cloudwatch.get_metric_statistics(
        Namespace="TripDuration",
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=datetime(2023, 3, 7, tzinfo=UTC),
        EndTime=datetime(2023, 3, 8, tzinfo=UTC),
        Period=86400,
        Statistics=["Maximum"],
    )
    assert len(stats["Datapoints"]) == 1, (name, dimensions)
    return float(stats["Datapoints"][0]["Maximum"])


def test_hourly_run_against_s3_and_cloudwatch(monitor_aws: tuple[Any, Any]) -> None:
    s3, cloudwatch = monitor_aws
    profile_key = "models/trip-duration/3/reference_profile.json"
    s3.put_object(Bucket="models", Key=profile_key,
                  Body=json.dumps(reference_profile_dict(valid_rows(month_columns("2021-01")))))  # fmt: skip
    pointer = ModelPointer("trip-duration", "3", "models/trip-duration/3/bundle.npz", "0" * 64, profile_key,
                           8.0, 5.0, "run", "2023-03-01T00:00:00Z")  # fmt: skip
    s3.put_object(Bucket="models", Key=version_pointer_key("3"), Body=pointer.to_json())
    sample = rides_of_day(valid_rows(month_columns("2023-03")), "2023-03-06")
    n = len(sample["prediction"])
    for i, batch in enumerate(capture_batches(sample, "3", "2023-03-06T20:20:00Z")):
        for key, body in capture_objects(batch, "shardId-000", str(i)).items():
            s3.put_object(Bucket="capture", Key=key, Body=body)
    rejections = [Rejection("shardId-000", str(seq), "2023-03-06T14:21:00Z", "e30=") for seq in range(30)]
    s3.put_object(Bucket="rejected", Key="rejected/dt=2023-03-06/hour=14/shardId-000_0.json",
                  Body=encode_rejected(rejections))  # fmt: skip
    actuals = [
        Actual(pid(int(r)), float(d))
        for r, d in zip(sample["ride_id"], sample["duration_minutes"], strict=True)
    ]
    s3.put_object(
        Bucket="capture", Key=actuals_key(NOW - timedelta(hours=2), "a"), Body=encode_actuals(actuals[:1000])
    )
    bad = (
        f'{{"prediction_id": "{pid(1)}", "duration_minutes": -1}}\n'
        f'{{"prediction_id": "{pid("nobody")}", "duration_minutes": 3}}\n'
    ).encode()
    s3.put_object(Bucket="capture", Key=actuals_key(NOW - timedelta(hours=2), "b"), Body=bad)

    ports = aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch)
    summary = run_event({"source": "aws.events"}, ports, CONFIG, NOW)

    assert summary["versions"] == {"3": "ok"}
    assert _value(cloudwatch, "PredictionCount", {}) == n
    assert _value(cloudwatch, "PredictionCount", {"ModelVersion": "3"}) == n
    assert _value(cloudwatch, "RejectedShare", {}) == pytest.approx(30 / (n + 30))
    assert _value(cloudwatch, "DatasetDrift", {"ModelVersion": "3"}) == 1.0
    assert _value(cloudwatch, "DriftShare", {"ModelVersion": "3"}) >= 0.5
    assert _value(cloudwatch, "FeatureDriftScore", {"ModelVersion": "3", "Feature": "trip_distance"}) > 0.1
    assert _value(cloudwatch, "PredictionDriftScore", {"ModelVersion": "3"}) > 0.1
    truth = sample["duration_minutes"][:1000]
    domain, joined = (truth >= 1) & (truth <= 60), truth > 0  # zero minutes: not a plausible actual
    errors = sample["prediction"][:1000][domain] - truth[domain]
    assert _value(cloudwatch, "MAE", {"ModelVersion": "3"}) == pytest.approx(np.abs(errors).mean())
    assert _value(cloudwatch, "RMSERatio", {"ModelVersion": "3"}) == pytest.approx(
        np.sqrt((errors**2).mean()) / 8.0
    )
    assert _value(cloudwatch, "MonitorErrors", {}) == 0
    assert _value(cloudwatch, "ActualsOutOfDomainShare", {}) == pytest.approx(1 - domain.sum() / joined.sum())
    assert _value(cloudwatch, "ActualsRejected", {"Reason": "not_positive"}) == 1 + (~joined).sum()
    assert _value(cloudwatch, "ActualsRejected", {"Reason": "unknown_prediction"}) == 1
    assert _value(cloudwatch, "ActualsRejected", {"Reason": "duplicate"}) == 0
    for name in (
        "DriftShare",
        "PredictionDriftScore",
        "MAERatio",
        "DatasetDrift",
    ):  # aggregates for the alarms
        assert _value(cloudwatch, name, {}) == _value(cloudwatch, name, {"ModelVersion": "3"})
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="TripDuration")["Metrics"]}
    assert {"MissingShare", "MAERatio", "RMSE", "PredictionDrift", "FeatureDrift"} <= names

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="capture")["Contents"]}
    report = f"reports/{WINDOW_END}/drift_report"
    assert {f"{report}.json", f"{report}.html", "monitor/state.json"} <= keys
    state = json.loads(s3.get_object(Bucket="capture", Key="monitor/state.json")["Body"].read())
    assert state == {"last_window_end": WINDOW_END}

    later = datetime(2023, 3, 8, 7, 0, 0, tzinfo=UTC)  # a day on: the next day's window, no captures
    assert run_event({}, ports, CONFIG, later)["prediction_count"] == 0


def test_put_metric_data_is_batched_to_the_api_limits(monitor_aws: tuple[Any, Any]) -> None:
    _, cloudwatch = monitor_aws
    at = datetime(2023, 3, 7, 14, tzinfo=UTC)
    data = [MetricDatum("FeatureDriftScore", 0.01, "None", (("ModelVersion", "3"), ("Feature", f"f{i}")), at)
            for i in range(2500)]  # fmt: skip
    batches = metric_batches(data)
    assert [len(b) for b in batches] == [MAX_METRICS_PER_CALL, MAX_METRICS_PER_CALL, 500]
    for batch in batches:
        cloudwatch.put_metric_data(Namespace="TripDuration", MetricData=batch)
    assert _value(cloudwatch, "FeatureDriftScore", {"ModelVersion": "3", "Feature": "f2499"}) == 0.01


def test_rejections_are_counted_by_arrival_once_whatever_objects_hold_them(
    monitor_aws: tuple[Any, Any],
) -> None:
    """Rejected objects are keyed by the arrival hour of their batch's first rejected ride; a ride is
    counted by its own arrival (a batch's later ride may arrive in the next hour), once, however many
    objects hold it (a retry of its batch that starts at another record names another object)."""
    s3, cloudwatch = monitor_aws
    window = Window(datetime(2023, 3, 6, 5, tzinfo=UTC), datetime(2023, 3, 7, 5, tzinfo=UTC))
    for keyed_at, seq, arrival in (
        (datetime(2023, 3, 7, 4, 59, 50, tzinfo=UTC), "1", "2023-03-07T04:59:50Z"),  # in
        (datetime(2023, 3, 7, 4, 59, 50, tzinfo=UTC), "2", "2023-03-07T05:00:10Z"),  # after the end
        (datetime(2023, 3, 6, 5, 0, 1, tzinfo=UTC), "3", "2023-03-06T05:00:01Z"),  # in
        (datetime(2023, 3, 6, 5, 0, 1, tzinfo=UTC), "4", "2023-03-06T04:59:59Z"),  # before the start
    ):
        body = encode_rejected([Rejection("s", seq, arrival, "e30=")])
        s3.put_object(Bucket="rejected", Key=rejected_key(keyed_at, "s", seq), Body=body)
    again = encode_rejected([Rejection("s", "3", "2023-03-06T05:00:01Z", "e30=")])
    s3.put_object(
        Bucket="rejected", Key=rejected_key(datetime(2023, 3, 6, 7, tzinfo=UTC), "s", "0"), Body=again
    )
    assert aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch).rejected.count(window, []) == 2
