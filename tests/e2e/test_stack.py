"""End to end against the deployed stack on LocalStack (`make localstack-test`; fixtures in conftest.py).

Needs a live model (serving/live.json in the models bucket): `make localstack-test` trains and
publishes one before pytest starts. Every wait is a `poll` with a deadline.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.harness.poll import poll
from infra.harness.rides import (
    OK_RIDE,
    bad_record,
    pickup_window,
    predict_in_process,
    real_rides,
    ride_payload,
)
from infra.harness.stack import Stack
from infra.harness.streams import StreamReader
from tests.e2e.conftest import put_rides
from trip_core.bundle import ServingBundle
from trip_core.contracts import PREDICTION_DECIMALS, prediction_id_hour, utc_iso
from trip_core.pointer import ModelPointer

pytestmark = pytest.mark.localstack

ROOT = Path(__file__).resolve().parents[2]
MONTH = ROOT / "data" / "green_tripdata_2023-03.parquet"
GOOD_RIDES = 300  # >= the monitor's MIN_PREDICTIONS (200), so its drift metrics are published
DRIFTED_RIDES = 300
TOLERANCE = (
    10**-PREDICTION_DECIMALS + 1e-9
)  # both sides round; a value on a rounding edge may differ by one step

Aws = Callable[[str], Any]


def month_rides(count: int, id_base: int) -> list[dict[str, Any]]:
    return [json.loads(r.payload) for r in real_rides(MONTH, count, seed=7, id_base=id_base)]


def bad_payloads(id_base: int) -> list[tuple[bytes, str]]:
    """(record data, the field its rejection must name)."""
    items: list[tuple[Any, str]] = [
        (f"not json {id_base}".encode(), "data"),
        ({"ride": {**OK_RIDE, "trip_distance": True}}, "trip_distance"),
        ({"ride": {**OK_RIDE, "PULocationID": 999}}, "PULocationID"),
        ({"ride": {**OK_RIDE, "trip_distance": -1.0}}, "trip_distance"),
        ({"ride": {k: v for k, v in OK_RIDE.items() if k != "DOLocationID"}}, "DOLocationID"),
        ({"ride": {**OK_RIDE, "pickup_datetime": "not a date"}}, "pickup_datetime"),
    ]
    return [(bad_record(id_base + i, payload).payload, field) for i, (payload, field) in enumerate(items)]


def live_model(stack: Stack) -> tuple[ModelPointer, ServingBundle]:
    pointer = stack.live()
    return pointer, stack.bundle(pointer)


def in_process(bundle: ServingBundle, rides: list[dict[str, Any]]) -> dict[int, float]:
    minutes = np.round(predict_in_process(bundle, [r["ride"] for r in rides]), PREDICTION_DECIMALS)
    return {r["ride_id"]: float(m) for r, m in zip(rides, minutes, strict=True)}


@dataclass
class Run:
    started: datetime
    good: list[dict[str, Any]]
    bad: list[tuple[bytes, str]]
    predictions: dict[Any, dict[str, Any]]  # ride_id -> the prediction record
    rejected: list[dict[str, Any]]


@pytest.fixture(scope="module")
def run(aws: Aws, stack: Stack) -> Run:
    """Good rides of a real month and bad ones on the rides stream; everything that came out."""
    id_base = int(time.time()) * 100_000
    good = month_rides(GOOD_RIDES, id_base)
    bad = bad_payloads(id_base + GOOD_RIDES)
    reader = StreamReader(stack["PredictionsStreamName"])  # LATEST, before putting
    started = datetime.now(UTC).replace(microsecond=0)
    put_rides(stack, good)
    response = aws("kinesis").put_records(
        StreamName=stack["RidesStreamName"],
        Records=[{"Data": data, "PartitionKey": str(i)} for i, (data, _) in enumerate(bad)],
    )
    assert response["FailedRecordCount"] == 0
    ids = {r["ride_id"] for r in good}
    poll(
        lambda: ids <= {r["prediction"]["ride_id"] for r in reader.read()},
        timeout=120,
        what=f"{len(ids)} predictions on the output stream",
    )
    predictions = {r["prediction"]["ride_id"]: r for r in reader.records if r["prediction"]["ride_id"] in ids}

    def all_rejected() -> list[dict[str, Any]] | None:
        found = stack.rejections_since(started)
        return found if len(found) >= len(bad) else None

    rejected = poll(
        all_rejected,
        timeout=60,
        what=f"{len(bad)} rejections in the rejected store",
    )
    return Run(started, good, bad, predictions, rejected)


def test_stream_predictions_equal_in_process_bundle(stack: Stack, run: Run) -> None:
    pointer, bundle = live_model(stack)
    expected = in_process(bundle, run.good)
    assert set(run.predictions) == set(expected)
    for ride_id, record in run.predictions.items():
        assert record["model"] == pointer.model_name
        assert record["version"] == pointer.version
        assert abs(record["prediction"]["ride_duration"] - expected[ride_id]) <= TOLERANCE, ride_id
    exact = sum(run.predictions[i]["prediction"]["ride_duration"] == expected[i] for i in expected)
    assert exact >= 0.99 * len(expected)


def test_bad_rides_in_rejected_store_with_reasons_none_lost(run: Run) -> None:
    sent = {data: field for data, field in run.bad}
    mine = [r for r in run.rejected if base64.b64decode(r["raw_base64"]) in sent]
    assert len(mine) == len(sent), "every bad record rejected exactly once"
    for r in mine:
        field = sent[base64.b64decode(r["raw_base64"])]
        assert r["reasons"], r
        assert field in {reason["field"] for reason in r["reasons"]}, r
        assert r["shard_id"] and r["sequence_number"]
    good_ids = {r["ride_id"] for r in run.good}
    assert not good_ids & {json.loads(base64.b64decode(r["raw_base64"])).get("ride_id") for r in run.rejected
                           if base64.b64decode(r["raw_base64"]).startswith(b"{")}  # fmt: skip
    assert len(run.good) + len(run.bad) == len(run.predictions) + len(mine)  # none lost


def test_capture_objects_in_s3(stack: Stack, run: Run) -> None:
    def all_captured() -> dict[Any, float] | None:
        found = stack.captured_since(run.started)
        return found if set(run.predictions) <= set(found) else None

    captured = poll(
        all_captured,
        timeout=30,
        what="captures of every prediction",
    )
    for ride_id, record in run.predictions.items():
        assert round(captured[ride_id], PREDICTION_DECIMALS) == record["prediction"]["ride_duration"]


def test_direct_invoke_answers_prediction_or_error(stack: Stack) -> None:
    pointer, bundle = live_model(stack)
    a_week_ago = (datetime.now(UTC) - timedelta(days=7)).replace(tzinfo=None, hour=14, minute=30)
    good = ride_payload(42, 130, 205, 3.66, a_week_ago)  # a pickup within the service's bounds
    answer, error = stack.invoke_raw("PredictRideFunctionName", good)
    assert error is None, answer
    prediction_id = answer["prediction"].pop("prediction_id")
    assert answer == {
        "model": pointer.model_name,
        "version": pointer.version,
        "prediction": {
            "ride_duration": pytest.approx(in_process(bundle, [good])[42], abs=TOLERANCE),
            "ride_id": 42,
        },
    }
    assert prediction_id_hour(prediction_id) is not None, prediction_id  # a service-issued id
    bad = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": "far"}, "ride_id": 43}
    answer, error = stack.invoke_raw("PredictRideFunctionName", bad)
    assert error is None, answer  # a bad ride is an answer, not a function error
    assert answer["error"] == "invalid ride"
    assert [r["field"] for r in answer["reasons"]] == ["trip_distance"]


def test_the_stream_function_takes_no_ride_and_the_ride_function_no_batch(stack: Stack) -> None:
    """Who may ask for one ride cannot hand the stream function a batch naming real records."""
    ride = ride_payload(44, 130, 205, 3.66)
    answer, error = stack.invoke_raw("PredictFunctionName", ride)
    assert error is None and answer["error"] == "not a Kinesis batch", answer
    answer, error = stack.invoke_raw("PredictRideFunctionName", {"Records": [{"kinesis": {}}]})
    assert error is None and answer["error"] == "invalid ride", answer


def test_monitor_publishes_metrics(aws: Aws, stack: Stack, run: Run) -> None:
    pointer, _ = live_model(stack)
    # the run's pickups, and up to now: rejected rides are counted by arrival, the bad ones came last
    start, _ = pickup_window(r["ride"] for r in run.good)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    summary, error = stack.invoke_raw(
        "MonitorFunctionName", {"window_start": utc_iso(start), "window_end": utc_iso(end)}
    )
    assert error is None, summary
    assert summary["prediction_count"] >= len(run.good)
    assert summary["versions"][pointer.version] == "ok"
    report = json.loads(
        aws("s3").get_object(Bucket=stack["CaptureBucketName"], Key=summary["report_key"])["Body"].read()
    )
    assert report["rejected"]["count"] >= len(run.bad)
    aws("s3").head_object(
        Bucket=stack["CaptureBucketName"], Key=summary["report_key"].replace(".json", ".html")
    )

    cw = aws("cloudwatch")
    version = [{"Name": "ModelVersion", "Value": pointer.version}]

    def stats(metric: str, dimensions: list[dict[str, str]]) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = cw.get_metric_statistics(
            Namespace="TripDuration",
            MetricName=metric,
            Dimensions=dimensions,
            StartTime=end - timedelta(minutes=5),
            EndTime=end + timedelta(minutes=5),
            Period=60,
            Statistics=["Maximum", "Sum", "SampleCount"],
        )["Datapoints"]
        return points

    for metric, dims in [
        ("PredictionCount", version),
        ("PredictionCount", []),
        ("DriftShare", version),
        ("DriftShare", []),
        ("PredictionDriftScore", []),
        ("RejectedShare", []),
        ("MissingShare", version),
    ]:
        points = poll(lambda m=metric, d=dims: stats(m, d), timeout=30, what=f"{metric} {dims}")  # type: ignore[misc]
        assert points, (metric, dims)
    count = max(p["Maximum"] for p in stats("PredictionCount", version))
    assert count >= len(run.good)
    listed = cw.list_metrics(Namespace="TripDuration", MetricName="FeatureDriftScore")["Metrics"]
    features = {d["Value"] for m in listed for d in m["Dimensions"] if d["Name"] == "Feature"}
    assert features == {"PULocationID", "DOLocationID", "trip_distance"}


def test_alarm_fires_on_drifted_traffic_and_notifies(
    aws: Aws, stack: Stack, alarm_inbox: Callable[[], list[dict[str, Any]]]
) -> None:
    """Rides unlike the reference (40-60 miles, Staten Island zones) -> drift -> ALARM -> SNS."""
    rng = np.random.default_rng(1)
    id_base = int(time.time()) * 100_000 + 50_000
    zones = [5, 6, 23, 44, 84, 99, 109, 110, 115, 118]  # Staten Island: green cabs rarely go there
    drifted = [
        ride_payload(
            id_base + i,
            int(rng.choice(zones)),
            int(rng.choice(zones)),
            float(np.round(rng.uniform(40, 60), 2)),
        )  # picked up when sent: the service takes the arrival time
        for i in range(DRIFTED_RIDES)
    ]
    reader = StreamReader(stack["PredictionsStreamName"])
    started = datetime.now(UTC).replace(microsecond=0)
    put_rides(stack, drifted)
    reader.wait_for(DRIFTED_RIDES, timeout=120)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    summary, error = stack.invoke_raw(
        "MonitorFunctionName",
        {"window_start": utc_iso(started - timedelta(seconds=1)), "window_end": utc_iso(end)},
    )
    assert error is None, summary
    report = json.loads(
        aws("s3").get_object(Bucket=stack["CaptureBucketName"], Key=summary["report_key"])["Body"].read()
    )
    version = next(iter(report["versions"].values()))
    assert version["drift"]["dataset_drift"], version["drift"]

    alarm = stack["DriftShareAlarmName"]
    cw = aws("cloudwatch")
    poll(
        lambda: cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"][0]["StateValue"] == "ALARM",
        timeout=180,
        interval=2,
        what=f"{alarm} in ALARM",
    )
    message = poll(
        lambda: next(
            (m for m in alarm_inbox() if m.get("AlarmName") == alarm and m.get("NewStateValue") == "ALARM"),
            None,
        ),
        timeout=60,
        interval=0.5,
        what=f"SNS message of {alarm} -> ALARM on the SQS subscriber",
    )
    assert message.get("Trigger", {}).get("MetricName", "DriftShare") == "DriftShare"
