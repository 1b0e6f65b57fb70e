"""Monitor faults on moto S3 + CloudWatch (issue 8): corrupt capture objects (bad gzip, bad JSON, wrong
schema, bad captured_at), a corrupt rejected-rides object, an unknown model version and a version whose
reference profile is missing are each skipped, counted in MonitorErrors and logged, and the rest of the
window is still analysed; a window with no data raises no false alarm (no drift/quality metric at all,
PredictionCount 0, MonitorErrors 0) and still counts as completed for the heartbeat.

Tally (printed with -s): faults injected 7 in the first test (4 corrupt captures, 1 corrupt rejected
object, 1 unknown version, 1 missing profile) -> MonitorErrors 7, the 300 good rows analysed; no-data
run: 0 alarm-watched metrics.
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np

from lambda_monitor.aws import aws_ports
from lambda_monitor.config import MonitorConfig
from lambda_monitor.service import run_event
from tests.doubles.captures import capture_objects, rides_of_day
from tests.monitor_months import capture_batches, month_columns, reference_profile_dict, take, valid_rows
from trip_core.capture import Rejection, encode_capture, encode_rejected
from trip_core.contracts import version_pointer_key
from trip_core.pointer import ModelPointer

# the scheduled run at NOW evaluates the rides picked up on 2023-03-06 in New York (05:00 to 05:00 UTC)
NOW = datetime(2023, 3, 7, 6, 0, 0, tzinfo=UTC)
WINDOW_END = "2023-03-07T05:00:00Z"
CONFIG = MonitorConfig(
    models_bucket="models", capture_bucket="capture", rejected_bucket="rejected", min_predictions=200
)
ALARM_METRICS = {"DriftShare", "PredictionDrift", "MAERatio", "RejectedShare", "DatasetDrift"}
HEARTBEAT = {"MonitorWindowsCompleted": 1.0, "MonitorLagHours": 0.0}  # a window with no data is completed too


def _publish_version(s3: Any, version: str, with_profile: bool = True) -> None:
    profile_key = f"models/trip-duration/{version}/reference_profile.json"
    if with_profile:
        profile = reference_profile_dict(valid_rows(month_columns("2023-02")))
        s3.put_object(Bucket="models", Key=profile_key, Body=json.dumps(profile))
    pointer = ModelPointer(
        "trip-duration", version, f"models/trip-duration/{version}/bundle.npz", "0" * 64, profile_key,
        8.0, 5.0, "run", "2023-03-01T00:00:00Z",
    )  # fmt: skip
    s3.put_object(Bucket="models", Key=version_pointer_key(version), Body=pointer.to_json())


SAMPLE_ROWS = 400  # each part of the day's rides: different parts share no ride


def _sample(n: int, part: int) -> dict[str, np.ndarray]:
    """`n` rides picked up on 2023-03-06 in New York, from the day's `part` (shuffled once)."""
    rows = rides_of_day(valid_rows(month_columns("2023-03")), "2023-03-06")
    order = np.random.default_rng(0).permutation(len(rows["prediction"]))
    return take(rows, order[part * SAMPLE_ROWS : part * SAMPLE_ROWS + n])


def _put_captures(s3: Any, version: str, n: int, part: int, shard: str) -> None:
    for i, batch in enumerate(capture_batches(_sample(n, part), version, "2023-03-06T20:20:00Z")):
        for key, body in capture_objects(batch, shard, str(i)).items():
            s3.put_object(Bucket="capture", Key=key, Body=body)


def _metric_names(cloudwatch: Any) -> dict[str, float]:
    """Metric name (no dimensions) -> its maximum on 2023-03-07 (the runs' metrics timestamp)."""
    out = {}
    for metric in cloudwatch.list_metrics(Namespace="TripDuration")["Metrics"]:
        if metric.get("Dimensions"):
            continue
        stats = cloudwatch.get_metric_statistics(
            Namespace="TripDuration", MetricName=metric["MetricName"], Dimensions=[],
            StartTime=datetime(2023, 3, 7, tzinfo=UTC), EndTime=datetime(2023, 3, 8, tzinfo=UTC),
            Period=86400, Statistics=["Maximum"],
        )  # fmt: skip
        out[metric["MetricName"]] = max(p["Maximum"] for p in stats["Datapoints"])
    return out


def test_corrupt_inputs_are_counted_logged_and_the_rest_is_analysed(
    monitor_aws: tuple[Any, Any], log_stream: io.StringIO
) -> None:
    s3, cloudwatch = monitor_aws
    _publish_version(s3, "3")
    _publish_version(s3, "5", with_profile=False)  # pointer whose reference profile is missing
    _put_captures(s3, "3", 300, part=0, shard="shardId-good")
    _put_captures(s3, "5", 250, part=1, shard="shardId-noprofile")
    _put_captures(s3, "9", 220, part=2, shard="shardId-unknown")  # no pointer for version 9
    prefix = "captures/dt=2023-03-06/hour=14/"
    bad_capture_at = json.loads(gzip.decompress(encode_capture(capture_batches(_sample(5, 3), "3", "x")[0])))
    corrupt = {
        "bad_gzip.json.gz": b"\x1f\x8b\x08\x00 not really gzip",
        "bad_json.json.gz": gzip.compress(b'{"schema": 1, "columns": '),
        "wrong_schema.json.gz": gzip.compress(json.dumps({"schema": 2, "rows": []}).encode()),
        "bad_captured_at.json.gz": gzip.compress(json.dumps(bad_capture_at).encode()),
    }
    for name, body in corrupt.items():
        s3.put_object(Bucket="capture", Key=prefix + name, Body=body)
    good_rejected = encode_rejected(
        [Rejection("shardId-good", str(seq), "2023-03-06T14:21:00Z", "e30=") for seq in range(4)]
    )
    s3.put_object(Bucket="rejected", Key="rejected/dt=2023-03-06/hour=14/a.json", Body=good_rejected)
    s3.put_object(Bucket="rejected", Key="rejected/dt=2023-03-06/hour=14/b.json", Body=b"\x00garbage")

    summary = run_event(
        {"source": "aws.events"}, aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch), CONFIG, NOW
    )

    assert summary["versions"] == {"3": "ok", "5": "error", "9": "error"}
    metrics = _metric_names(cloudwatch)
    assert metrics["MonitorErrors"] == 7
    assert metrics["PredictionCount"] == 300 + 250 + 220  # corrupt objects add nothing
    assert {"DriftShare", "PredictionDriftScore", "RejectedShare"} <= set(metrics)  # version 3 analysed
    report = json.loads(
        s3.get_object(Bucket="capture", Key=f"reports/{WINDOW_END}/drift_report.json")["Body"].read()
    )
    assert report["errors"] == 7 and report["rejected"]["count"] == 4
    assert report["versions"]["3"]["prediction_count"] == 300
    problems = "\n".join(report["problems"])
    for name in [*corrupt, "b.json", "model version 5", "model version 9"]:
        assert name in problems
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    skipped = [line for line in lines if line["message"] == "monitor input skipped"]
    versions = [line for line in lines if line["message"] == "model version not analysed"]
    assert len(skipped) == 5 and {line["model_version"] for line in versions} == {"5", "9"}
    state = json.loads(s3.get_object(Bucket="capture", Key="monitor/state.json")["Body"].read())
    assert state == {"last_window_end": WINDOW_END}  # the run completed
    print(f"\n[faults/monitor] injected=7 MonitorErrors={metrics['MonitorErrors']:g} analysed_rows=300")


def test_no_data_raises_no_false_alarm(monitor_aws: tuple[Any, Any]) -> None:
    s3, cloudwatch = monitor_aws
    _publish_version(s3, "3")
    summary = run_event(
        {"source": "aws.events"}, aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch), CONFIG, NOW
    )
    assert summary["prediction_count"] == 0 and summary["versions"] == {}
    metrics = _metric_names(cloudwatch)
    assert metrics == {"PredictionCount": 0.0, "MonitorErrors": 0.0, "ConflictingRides": 0.0, **HEARTBEAT}
    assert not ALARM_METRICS & set(metrics)
    print("\n[faults/monitor] no data: alarm-watched metrics published = 0, MonitorErrors = 0, heartbeat 1")


def test_a_too_small_window_raises_no_false_alarm(monitor_aws: tuple[Any, Any]) -> None:
    s3, cloudwatch = monitor_aws
    _publish_version(s3, "3")
    _put_captures(s3, "3", 50, part=4, shard="shardId-few")  # below MIN_PREDICTIONS
    s3.put_object(
        Bucket="rejected",
        Key="rejected/dt=2023-03-06/hour=14/a.json",
        Body=encode_rejected([Rejection("s", str(seq), "2023-03-06T14:21:00Z", "e30=") for seq in range(40)]),
    )  # 40 of 90 rejected: a share, but too few rides to alarm on
    run_event({"source": "aws.events"}, aws_ports(CONFIG, s3=s3, cloudwatch=cloudwatch), CONFIG, NOW)
    metrics = _metric_names(cloudwatch)
    assert metrics == {"PredictionCount": 50.0, "MonitorErrors": 0.0, "ConflictingRides": 0.0, **HEARTBEAT}
