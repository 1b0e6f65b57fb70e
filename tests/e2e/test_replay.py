"""The replay through the deployed stack on LocalStack agrees with the in-process replay (infra.replay) on
the same rides: two days of a month sent through the rides stream (every row, as clients send them), the
actuals (named by the prediction ids the stack's predictions stream gave) written under the simulated hours
they are reported in, as the actuals function would write them (through its stream they would arrive in
real time, not in the replay's hours; LocalStack does not enforce the bucket policy that keeps other
writers out), then the monitor invoked with backfill windows
{"window_start", "window_end"} for the window ends the in-process replay's scheduled runs evaluated; the
per-window verdicts must be equal.

The month is one no other e2e test sends rides of, so the stack's windows over those days hold the replay's
rides only. The model is the stack's live one (bundle and profile read from its models bucket).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra.aws import client
from infra.harness.poll import poll
from infra.harness.rides import Ride
from infra.harness.stack import Stack
from infra.harness.streams import StreamReader, put_records
from infra.replay.model import ModelFiles
from infra.replay.results import WindowRow, window_row
from infra.replay.scenario import Outcome, run_replay
from infra.replay.simulation import stack_template
from infra.replay.traffic import Traffic, actuals_reported, build_traffic, monitor_hours
from trip_core.capture import decode_capture, encode_actuals
from trip_core.contracts import CAPTURE_PREFIX, MONITOR_STEP, actuals_key, training_rows_key

pytestmark = pytest.mark.localstack

MONTH = Path(__file__).resolve().parents[2] / "data" / "green_tripdata_2022-02.parquet"
DAYS = 2
WINDOWS_COMPARED = 12
PUT_CHUNK = 500  # records per PutRecords


@pytest.fixture(scope="module")
def model(stack: Stack) -> ModelFiles:
    pointer = stack.live()
    bundle, profile = stack.models.get(pointer.bundle_key), stack.models.get(pointer.profile_key)
    assert bundle is not None and profile is not None, pointer
    rows = stack.models.get(training_rows_key(pointer.model_name, pointer.version))
    scores = (pointer.validation_rmse, pointer.validation_mae)
    return ModelFiles(bundle, profile, pointer.bundle_sha256, *scores, rows)


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return build_traffic([str(MONTH)], days=DAYS, first_id=int(time.time()) * 100_000)


@pytest.fixture(scope="module")
def in_process(traffic: Traffic, model: ModelFiles) -> Outcome:
    return run_replay(traffic, model)


def send(stack: Stack, traffic: Traffic) -> None:
    rides = [Ride(int(i), p, good=True) for i, p in zip(traffic.ride_id, traffic.payload, strict=True)]
    kinesis = client("kinesis")
    for first in range(0, len(rides), PUT_CHUNK):
        put_records(stack["RidesStreamName"], rides[first : first + PUT_CHUNK], kinesis)


def report_actuals(stack: Stack, traffic: Traffic, given: dict[int, str]) -> None:
    """The accepted actuals of each hour, one object under that hour's key (`given`: ride id -> the
    prediction id the stack gave it)."""
    s3 = client("s3")
    for run in monitor_hours(traffic):
        hour = run - MONITOR_STEP
        actuals = [actual for actual, _at in actuals_reported(traffic, hour, given)]
        if actuals:
            key = actuals_key(hour, "e2e-replay")
            s3.put_object(Bucket=stack["CaptureBucketName"], Key=key, Body=encode_actuals(actuals))


class Captured:
    """How many of the replay's rides the stack has captured, wherever their partition (a meter clock of
    2009 is partitioned under its own hour); each capture object is read once."""

    def __init__(self, stack: Stack, traffic: Traffic) -> None:
        self.s3, self.bucket = client("s3"), stack["CaptureBucketName"]
        self.ids = set(traffic.ride_id.tolist())
        self.rows: dict[str, int] = {}

    def count(self) -> int:
        for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=CAPTURE_PREFIX
        ):
            for item in page.get("Contents", []):
                if item["Key"] not in self.rows:
                    body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read()
                    self.rows[item["Key"]] = sum(r in self.ids for r in decode_capture(body).ride_id)
        return sum(self.rows.values())


@pytest.fixture(scope="module")
def on_stack(stack: Stack, traffic: Traffic, in_process: Outcome) -> dict[str, tuple[WindowRow, WindowRow]]:
    """window end -> (in-process row, the deployed monitor's row) for the compared windows."""
    predictions = StreamReader(stack["PredictionsStreamName"])
    send(stack, traffic)
    expected = in_process.recorded.counts["predicted"]
    captured = Captured(stack, traffic)
    poll(lambda: captured.count() >= expected, timeout=300, interval=3, what=f"{expected} captured rides")
    poll(lambda: len(predictions.read()) >= expected, timeout=120, what=f"{expected} predictions")
    given = {r["prediction"]["ride_id"]: r["prediction"]["prediction_id"] for r in predictions.records}
    report_actuals(stack, traffic, given)
    reports = sorted(in_process.recorded.reports, key=lambda r: r["window"]["end"])
    chosen = sorted({int(i) for i in np.linspace(0, len(reports) - 1, WINDOWS_COMPARED)})
    pairs = {}
    for report in (reports[i] for i in chosen):
        event = {"window_start": report["window"]["start"], "window_end": report["window"]["end"]}
        answer = stack.invoke("MonitorFunctionName", event)
        pairs[event["window_end"]] = (
            window_row(report, []),
            window_row(stack.report(answer["report_key"]), []),
        )
    return pairs


def test_the_deployed_monitor_runs_with_the_replays_configuration(stack: Stack) -> None:
    deployed = client("lambda").get_function_configuration(FunctionName=stack["MonitorFunctionName"])
    variables: dict[str, Any] = deployed["Environment"]["Variables"]
    replayed = stack_template().function_environment("MonitorFunction")
    for name in ("MIN_PREDICTIONS", "MIN_ACTUALS", "DRIFT_THRESHOLD", "METRICS_NAMESPACE"):
        assert variables.get(name) == replayed.get(name), name


def test_some_compared_windows_have_a_verdict(on_stack: dict[str, tuple[WindowRow, WindowRow]]) -> None:
    assert any(replayed.has_verdict for replayed, _ in on_stack.values())


def test_per_window_verdicts_equal_the_in_process_replay(
    on_stack: dict[str, tuple[WindowRow, WindowRow]],
) -> None:
    for end, (replayed, deployed) in on_stack.items():
        assert deployed.n == replayed.n, end
        assert deployed.dataset_drift == replayed.dataset_drift, end
        assert {n: d for n, (d, _) in deployed.features.items()} == {
            n: d for n, (d, _) in replayed.features.items()
        }, end
        for name, (_, score) in replayed.features.items():
            assert deployed.features[name][1] == pytest.approx(score, rel=1e-9), (end, name)
        if replayed.mae_ratio is None:
            assert deployed.mae_ratio is None, end
        else:
            assert deployed.mae_ratio == pytest.approx(replayed.mae_ratio, rel=1e-9), end
