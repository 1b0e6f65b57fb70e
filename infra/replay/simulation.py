"""The replay itself: moto S3/Kinesis/CloudWatch/Secrets Manager behind the real boto3 adapters, the
prediction service fed Kinesis-shaped batches of the traffic on the simulated clock, the client's actuals
(named by the prediction ids the predictions stream gave) fed hourly to the actuals function's logic, the
monitor's scheduled run (lambda_monitor.service.run_event) at every simulated hour and, with the loop, the
retrain function's logic on its alarms and schedule (infra/replay/loop.py)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import numpy as np
from moto import mock_aws

from infra.replay.alarms import Published
from infra.replay.loop import ReplayLoop, loop_figures
from infra.replay.model import ModelFiles
from infra.replay.template import TEMPLATE, Template
from infra.replay.traffic import Traffic, actuals_reported, monitor_hours
from lambda_actuals.bootstrap import build_service as build_actuals_service
from lambda_actuals.config import ActualsConfig
from lambda_actuals.service import ActualsService
from lambda_monitor.aws import aws_ports
from lambda_monitor.config import MonitorConfig
from lambda_monitor.ports import MetricDatum, Ports
from lambda_monitor.service import run_event
from lambda_predict.bootstrap import build_service
from lambda_predict.config import PredictConfig
from lambda_predict.service import PredictService
from training import evaluation_set
from training.publish import S3ObjectStore, publish_live, publish_version
from trip_core.bundle import load_bundle
from trip_core.capture import encode_actuals
from trip_core.contracts import (
    MONITOR_STEP,
    REPORTS_PREFIX,
    bundle_key,
    profile_key,
    training_rows_key,
    utc_iso,
)
from trip_core.observability import logger
from trip_core.pointer import ModelPointer

# What the stack's resources are called in the replay (template `Ref`s resolve to these)
STACK_REFS = {
    "ModelsBucket": "replay-models",
    "CaptureBucket": "replay-capture",
    "RejectedBucket": "replay-rejected",
    "PredictionsStream": "replay-predictions",
    "PredictionIdSecret": "replay-prediction-id-key",
}
REPLAY_ID_KEY = "the replay's prediction id key: any 32 bytes or more will do"
# moto finds a shard's next sequence number by copying all its keys: a put costs O(records in the shard),
# quadratic over a month of predictions on one shard (minutes of a month's replay). Nothing in the replay
# reads that stream; spread over this many shards (partition key = ride id) the cost is negligible.
PREDICTIONS_SHARDS = 16
SHARD_ID = "shardId-000000000000"
MODEL_VERSION = "1"
ACTUALS_FIRST_SEQUENCE = 2 * 10**20  # the actuals stream's records (the rides' start at 10**20)
# The HTML report's history chart (no verdict depends on it): each run reads that many days of earlier
# reports, the replay's hot spot (each report read through moto); the replay draws its own picture.
HISTORY_DAYS = 0
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "replay",
    "AWS_SECRET_ACCESS_KEY": "replay",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class SimulatedClock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment


@dataclass
class Recorded:
    """What the monitor published and reported, as it did it."""

    points: list[Published] = field(default_factory=list)
    reports: list[dict[str, Any]] = field(default_factory=list)
    runs: list[datetime] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            ("sent", "predicted", "rejected", "actuals", "actuals_refused"), 0
        )
    )
    first_served: dict[str, datetime] = field(default_factory=dict)  # model version -> first prediction
    loop: dict[str, Any] | None = None  # infra.replay.loop.loop_figures, when the loop ran


class RecordingMetrics:
    """The real CloudWatch adapter, and a copy of every datum with the simulated time it was put."""

    def __init__(self, inner: Any, clock: SimulatedClock, recorded: Recorded) -> None:
        self.inner, self.clock, self.recorded = inner, clock, recorded

    def put(self, data: Sequence[MetricDatum]) -> None:
        self.inner.put(data)
        self.recorded.points.extend(Published(self.clock.now(), datum) for datum in data)


class RecordingReports:
    """The real S3 report store, and a copy of every JSON report."""

    def __init__(self, inner: Any, recorded: Recorded) -> None:
        self.inner, self.recorded = inner, recorded

    def put(self, key: str, body: bytes, content_type: str) -> None:
        self.inner.put(key, body, content_type)
        if key.startswith(REPORTS_PREFIX) and key.endswith(".json"):
            self.recorded.reports.append(json.loads(body))

    def reports_since(self, since: datetime) -> list[dict[str, Any]]:
        return list(self.inner.reports_since(since))


@contextmanager
def s3_urls_loaded_once() -> Iterator[None]:
    """moto re-imports (`reload`) its S3 URL table on every S3 request, in case the environment changed
    the endpoints; under the monitor's read threads that serialises on the import lock and was most of a
    replay's time. The replay never changes those variables, so the table loaded once is the same table."""
    import moto.s3.models
    import moto.s3.urls

    with mock.patch.object(moto.s3.models.S3Backend, "_url_module", property(lambda _: moto.s3.urls)):
        yield


@contextmanager
def simulated_aws() -> Iterator[dict[str, Any]]:
    """moto clients with the stack's buckets and predictions stream; the environment restored after."""
    saved = {name: os.environ.get(name) for name in [*FAKE_ENV, "AWS_ENDPOINT_URL"]}
    os.environ.update(FAKE_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws(), s3_urls_loaded_once():
            clients = {name: boto3.client(name) for name in ("s3", "kinesis", "cloudwatch", "secretsmanager")}
            for bucket in ("ModelsBucket", "CaptureBucket", "RejectedBucket"):
                clients["s3"].create_bucket(Bucket=STACK_REFS[bucket])
            stream = STACK_REFS["PredictionsStream"]
            clients["kinesis"].create_stream(StreamName=stream, ShardCount=PREDICTIONS_SHARDS)
            clients["secretsmanager"].create_secret(
                Name=STACK_REFS["PredictionIdSecret"], SecretString=REPLAY_ID_KEY
            )
            yield clients
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def publish_model(s3: Any, files: ModelFiles, at: datetime) -> None:
    """The model as training publishes a promoted version: bundle, profile, version and live pointers."""
    name = load_bundle(files.bundle).model_name
    pointer = ModelPointer(
        model_name=name,
        version=MODEL_VERSION,
        bundle_key=bundle_key(name, MODEL_VERSION),
        bundle_sha256=files.sha256,
        profile_key=profile_key(name, MODEL_VERSION),
        validation_rmse=files.validation_rmse,
        validation_mae=files.validation_mae,
        run_id="replay",
        published_at=utc_iso(at),
    )
    store = S3ObjectStore(STACK_REFS["ModelsBucket"], s3)
    publish_version(store, pointer, files.bundle, files.profile)
    if files.training_rows is not None:  # as make train leaves them
        store.put(training_rows_key(name, MODEL_VERSION), files.training_rows, "application/octet-stream")
    publish_live(store, pointer)


def kinesis_record(payload: bytes, sequence: int, arrival: float) -> dict[str, Any]:
    """One record of a Lambda Kinesis event, as the event source mapping delivers it."""
    number = str(sequence)
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "sequenceNumber": number,
            "data": base64.b64encode(payload).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventID": f"{SHARD_ID}:{number}",
    }


class PredictionsRead:
    """The predictions stream's client: what the service puts, and ride id -> the prediction id it gave."""

    def __init__(self, kinesis: Any) -> None:
        self.kinesis = kinesis
        self.given: dict[int, str] = {}

    def put_records(self, **request: Any) -> Any:
        for record in request["Records"]:
            prediction = json.loads(record["Data"])["prediction"]
            self.given[prediction["ride_id"]] = prediction["prediction_id"]
        return self.kinesis.put_records(**request)


def predict_service(
    clients: dict[str, Any], template: Template, clock: SimulatedClock, predictions: PredictionsRead
) -> PredictService:
    """Wired as the function's cold start does, with the template's configuration, on the simulated clock."""
    config = PredictConfig.from_env(template.function_environment("PredictFunction"))
    return build_service(config, clients["s3"], predictions, clients["secretsmanager"], now=clock.now)


def actuals_service(clients: dict[str, Any], template: Template, clock: SimulatedClock) -> ActualsService:
    config = ActualsConfig.from_env(template.function_environment("ActualsFunction"))
    return build_actuals_service(config, clients["s3"], now=clock.now)


def monitor_ports(
    clients: dict[str, Any], config: MonitorConfig, clock: SimulatedClock, recorded: Recorded
) -> Ports:
    ports: Ports = aws_ports(config, s3=clients["s3"], cloudwatch=clients["cloudwatch"])
    ports.metrics = RecordingMetrics(ports.metrics, clock, recorded)
    ports.reports = RecordingReports(ports.reports, recorded)
    return ports


def stack_template(path: Path = TEMPLATE, parameters: dict[str, str] | None = None) -> Template:
    """template.yaml with the replay's buckets and stream standing for the stack's; `parameters`
    override the template's parameter defaults (as a deploy's parameter overrides do)."""
    return Template.load(path, refs={**STACK_REFS, **(parameters or {})})


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@dataclass
class Replayer:
    traffic: Traffic
    service: PredictService
    predictions: PredictionsRead
    actuals: ActualsService
    ports: Ports
    config: MonitorConfig
    s3: Any
    clock: SimulatedClock
    recorded: Recorded
    batch_size: int
    step: timedelta
    loop: ReplayLoop | None = None
    sent: int = 0

    def send(self, until: float) -> None:
        """The rides sent before `until`, as Kinesis batches of at most batch_size, processed now."""
        upto = int(np.searchsorted(self.traffic.sent_at, until, side="left"))
        for first in range(self.sent, upto, self.batch_size):
            last = min(first + self.batch_size, upto)
            records = [
                kinesis_record(self.traffic.payload[i], 10**20 + i, float(self.traffic.sent_at[i]))
                for i in range(first, last)
            ]
            outcome = self.service.process_batch(records)
            if outcome.predicted:
                self.recorded.first_served.setdefault(outcome.model_version, self.clock.now())
            self.recorded.counts["predicted"] += outcome.predicted
            self.recorded.counts["rejected"] += outcome.rejected
        self.sent = max(self.sent, upto)
        self.recorded.counts["sent"] = self.sent

    def report_actuals(self, hour: datetime) -> None:
        """The client's actuals reported in the hour, through the actuals function's logic in Kinesis
        batches of batch_size (records arriving when they are reported)."""
        reported = actuals_reported(self.traffic, hour, self.predictions.given)
        records = [
            kinesis_record(
                encode_actuals([actual]), ACTUALS_FIRST_SEQUENCE + self.recorded.counts["actuals"] + k, at
            )
            for k, (actual, at) in enumerate(reported)
        ]
        for first in range(0, len(records), self.batch_size):
            outcome = self.actuals.process_batch(records[first : first + self.batch_size])
            self.recorded.counts["actuals_refused"] += outcome.rejected
        self.recorded.counts["actuals"] += len(records)

    def run(self) -> None:
        """Batches every --batch-minutes, then at each hour the hour's actuals and the monitor's run."""
        tick = monitor_hours(self.traffic)[0] - MONITOR_STEP
        for hour in monitor_hours(self.traffic):
            while tick < hour:
                tick += self.step
                self.clock.moment = min(tick, hour)
                self.send(self.clock.moment.timestamp())
            self.report_actuals(hour - MONITOR_STEP)
            run_event({"source": "aws.events"}, self.ports, self.config, hour)
            self.recorded.runs.append(hour)
            if self.loop is not None:
                self.loop.after_monitor(self.recorded.points, hour)


def replay(
    traffic: Traffic,
    files: ModelFiles,
    template: Template,
    batch_minutes: float,
    with_loop: bool = False,
    evaluation: str | None = None,
) -> tuple[Recorded, float]:
    """(what the monitor published and reported (and the loop did), wall seconds of the replay)."""
    started = time.perf_counter()
    clock, recorded = SimulatedClock(_utc(traffic.first_ride)), Recorded()
    logger.setLevel("ERROR")  # a rejected ride is a warning log line each: thousands in a month
    config = replace(
        MonitorConfig.from_env(template.function_environment("MonitorFunction")), history_days=HISTORY_DAYS
    )
    with simulated_aws() as clients:
        publish_model(clients["s3"], files, clock.now())
        if evaluation is not None:  # the loop's gate requires the trusted month
            models = S3ObjectStore(STACK_REFS["ModelsBucket"], clients["s3"])
            evaluation_set.publish(models, *evaluation_set.from_month(evaluation))
        predictions = PredictionsRead(clients["kinesis"])
        service = predict_service(clients, template, clock, predictions)
        actuals = actuals_service(clients, template, clock)
        ports = monitor_ports(clients, config, clock, recorded)
        batch = int(template.parameter("BatchSize"))
        step = timedelta(minutes=batch_minutes)
        loop = ReplayLoop.wire(clients, template, config.metrics_namespace) if with_loop else None
        replayer = Replayer(
            traffic,
            service,
            predictions,
            actuals,
            ports,
            config,
            clients["s3"],
            clock,
            recorded,
            batch,
            step,
            loop,
        )
        replayer.run()
        if loop is not None:
            span = (_utc(traffic.first_ride), clock.now())
            recorded.loop = loop_figures(loop, recorded.first_served, files.bundle, *span)
    return recorded, time.perf_counter() - started
