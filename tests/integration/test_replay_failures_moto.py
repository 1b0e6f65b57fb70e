"""No silent loss (issue 14, point 2), on moto: real rides through the rides stream, Lambda's event source
mapping as the template configures it (tests/doubles/esm.py) and the predict function's real handler;
an S3 capture outage longer than the retries; the failures queue's depth alarm; `make replay-failures`
(its boto3 adapters on moto, the function invoked in process as Lambda's invoke would run it).

Accounting per ride sent: predicted (its ride_id in a capture) or rejected (its sequence number in a
rejected-rides object), else lost; capture rows counted by prediction id, each once."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from cfnlint.decode import cfn_yaml
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.kinesis.models import kinesis_backends

from infra.harness.rides import Ride, bad_record, mixed_in, real_rides
from infra.harness.streams import put_actuals, put_records
from infra.replay.alarms import COMPARISONS
from infra.replay_failures.aws import KinesisShardStream, S3RejectedStore, SqsFailureQueue
from infra.replay_failures.service import TARGETS, MessageReport, Outcome, Ports, replay_queue
from lambda_actuals.bootstrap import build_service as build_actuals_service
from lambda_actuals.config import ActualsConfig
from lambda_actuals.handler import handle as handle_actuals
from lambda_predict import bootstrap
from tests.doubles.esm import EventSourceMapping
from tests.integration.test_predict_moto import ENV, LambdaContext, keys, load_app, publish_to_s3, read_stream
from trip_core.capture import Actual, decode_actuals, decode_capture, decode_rejected

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = dict(cfn_yaml.load(str(ROOT / "template.yaml")))
BATCH_SIZE = TEMPLATE["Parameters"]["BatchSize"]["Default"]
RETRIES = TEMPLATE["Parameters"]["MaximumRetryAttempts"]["Default"]
ALARM = TEMPLATE["Resources"]["PredictFailuresAlarm"]["Properties"]
RIDES, QUEUE, ACTUALS = "rides", "predict-failures", "actuals"
PREDICT = TARGETS["predict"]
BAD_PAYLOADS: list[Any] = [b"{not json", {"ride": {"PULocationID": 130}}, {"ride": "x"}, b"\xff\xfe", {}, []]


class CaptureOutage:
    """S3 unreachable for writes to the capture bucket while `on` (the rejected bucket stays up)."""

    def __init__(self) -> None:
        self.on = False

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        if self.on and params.get("Bucket") == "capture":
            raise EndpointConnectionError(endpoint_url="https://capture.s3.us-east-1.amazonaws.com")


class InProcessFunction:
    """A function's real handler, given the event as Lambda's invoke would (JSON on the wire); the event
    source mapping calls `handler` itself, so `invocations` counts the replay's."""

    def __init__(self, handler: Callable[[dict[str, Any]], Any]) -> None:
        self.handler, self.invocations = handler, 0

    def invoke(self, event: dict[str, Any]) -> Any:
        self.invocations += 1
        return self.handler(json.loads(json.dumps(event)))


@dataclass
class Stack:
    s3: Any
    kinesis: Any
    sqs: Any
    queue_url: str
    outage: CaptureOutage
    function: InProcessFunction

    def ports(self, queue_url: str | None = None, function: InProcessFunction | None = None) -> Ports:
        return Ports(
            SqsFailureQueue(self.sqs, queue_url or self.queue_url, wait_seconds=0),
            KinesisShardStream(self.kinesis),
            function or self.function,
            S3RejectedStore(self.s3, "rejected"),
        )

    def replay(self) -> list[MessageReport]:
        return replay_queue(self.ports(), PREDICT, self.stream_arn(RIDES))

    def stream_arn(self, stream: str) -> str:
        return str(
            self.kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
        )

    def depth(self) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["All"])[
            "Attributes"
        ]
        return int(attributes["ApproximateNumberOfMessages"])

    def alarm_breached(self) -> bool:
        """PredictFailuresAlarm's rule (template.yaml) on the queue's depth now."""
        return COMPARISONS[ALARM["ComparisonOperator"]](self.depth(), ALARM["Threshold"])


@pytest.fixture(scope="module")
def rides() -> list[Ride]:
    """Three hours of real traffic (2023-03, ~2,200 rides a day, in pickup order) ending now, with bad
    records among them."""
    good = real_rides(
        "data/green_tripdata_2023-03.parquet", 300, seed=0, id_base=10_000, end=datetime.now(UTC)
    )
    bad = [bad_record(90_000 + i, payload) for i, payload in enumerate(BAD_PAYLOADS)]
    return mixed_in(good, bad, seed=14)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3, kinesis, sqs = boto3.client("s3"), boto3.client("kinesis"), boto3.client("sqs")
        for bucket in ("models", "capture", "rejected"):
            s3.create_bucket(Bucket=bucket)
        for stream in ("predictions", RIDES, ACTUALS):
            kinesis.create_stream(StreamName=stream, ShardCount=1)
        boto3.client("secretsmanager").create_secret(Name="prediction-id-key", SecretString="k" * 64)
        publish_to_s3(s3, "3")
        outage = CaptureOutage()
        functions_s3 = boto3.client("s3")  # the function's own client, the one the outage cuts
        functions_s3.meta.events.register("provide-client-params.s3.PutObject", outage)
        clients = (functions_s3, boto3.client("kinesis"), boto3.client("secretsmanager"))
        monkeypatch.setattr(bootstrap, "aws_clients", lambda: clients)
        app = load_app()
        queue_url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
        function = InProcessFunction(lambda event: app.lambda_handler(event, LambdaContext()))
        yield Stack(s3, kinesis, sqs, queue_url, outage, function)


def stream_with_an_outage(stack: Stack, rides: list[Ride]) -> EventSourceMapping:
    """The rides on the stream; the first batch served, the next two within a capture outage that outlasts
    every retry, then the outage over and the rest served."""
    put_records(RIDES, rides, stack.kinesis)
    mapping = EventSourceMapping(
        stack.kinesis, stack.sqs, RIDES, stack.queue_url, stack.function.handler, BATCH_SIZE, RETRIES
    )
    assert mapping.poll()
    stack.outage.on = True
    assert mapping.poll() and mapping.poll()
    stack.outage.on = False
    while mapping.poll():
        pass
    assert len(mapping.given_up) == 2 and stack.depth() == 2
    return mapping


def sequence_numbers(stack: Stack, rides: list[Ride]) -> list[str]:
    """Each ride's sequence number on the rides stream (one shard, put in order)."""
    shard = stack.kinesis.describe_stream(StreamName=RIDES)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = stack.kinesis.get_shard_iterator(
        StreamName=RIDES, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    records = stack.kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [r["Data"] for r in records] == [ride.payload for ride in rides]
    return [r["SequenceNumber"] for r in records]


def captures(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    """Capture key -> its rows (prediction id, ride id, prediction, model version), capture time left out."""
    out = {}
    for key in keys(stack.s3, "capture"):
        batch = decode_capture(stack.s3.get_object(Bucket="capture", Key=key)["Body"].read())
        rows = zip(batch.prediction_id, batch.ride_id, batch.prediction, strict=True)
        out[key] = sorted((*row, batch.model_version) for row in rows)
    return out


def account(stack: Stack, rides: list[Ride], seqs: list[str]) -> Counter[str]:
    rows = [row for object_rows in captures(stack).values() for row in object_rows]
    by_id = Counter(row[0] for row in rows)
    captured_rides = {row[1] for row in rows}
    rejected = {
        rejection.sequence_number
        for key in keys(stack.s3, "rejected")
        for rejection in decode_rejected(stack.s3.get_object(Bucket="rejected", Key=key)["Body"].read())
    }
    tally: Counter[str] = Counter(duplicated=sum(n - 1 for n in by_id.values()))
    for ride, seq in zip(rides, seqs, strict=True):
        if ride.good and ride.ride_id in captured_rides:
            tally["predicted"] += 1
        elif seq in rejected:
            tally["rejected"] += 1
        else:
            tally["lost"] += 1
    return tally


def test_an_outage_longer_than_the_retries_raises_the_alarm_and_the_replay_loses_nothing(
    stack: Stack, rides: list[Ride]
) -> None:
    mapping = stream_with_an_outage(stack, rides)
    seqs = sequence_numbers(stack, rides)
    ranges = [r["KinesisBatchInfo"] for r in mapping.given_up]
    in_ranges = [
        ride for ride, seq in zip(rides, seqs, strict=True)
        if any(int(r["startSequenceNumber"]) <= int(seq) <= int(r["endSequenceNumber"]) for r in ranges)
    ]  # fmt: skip
    good_in_ranges = sum(ride.good for ride in in_ranges)
    before = account(stack, rides, seqs)
    assert stack.alarm_breached()
    assert before["lost"] == good_in_ranges > 0  # without the replay these rides are gone

    reports = stack.replay()

    assert [r.outcome for r in reports] == [Outcome.REPLAYED, Outcome.REPLAYED]
    assert [r.read for r in reports] == [r["batchSize"] for r in ranges]
    assert sum(r.predicted for r in reports) == good_in_ranges
    assert sum(r.rejected for r in reports) == len(in_ranges) - good_in_ranges
    assert all(r.still_failing == () for r in reports)
    after = account(stack, rides, seqs)
    assert (after["lost"], after["duplicated"]) == (0, 0)
    assert after["predicted"] + after["rejected"] == len(rides)
    assert stack.depth() == 0 and not stack.alarm_breached()
    given: dict[Any, set[str]] = {}  # every prediction id a ride was given on the predictions stream
    for record in read_stream(stack.kinesis):
        given.setdefault(record["prediction"]["ride_id"], set()).add(record["prediction"]["prediction_id"])
    captured = {row[1]: row[0] for rows in captures(stack).values() for row in rows}
    assert all(given[ride] == {pid} for ride, pid in captured.items())  # the id its client got first
    print(
        f"\n[replay-failures] before {dict(before)} after {dict(after)}; "
        + "; ".join(r.line() for r in reports)
    )


def test_replaying_the_same_ranges_twice_leaves_the_capture_as_after_once(
    stack: Stack, rides: list[Ride]
) -> None:
    mapping = stream_with_an_outage(stack, rides)
    seqs = sequence_numbers(stack, rides)
    assert [r.outcome for r in stack.replay()] == [Outcome.REPLAYED] * 2
    once, tally_once = captures(stack), account(stack, rides, seqs)
    for record in mapping.given_up:  # as if the first run had died before its deletes
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(record))

    assert [r.outcome for r in stack.replay()] == [Outcome.REPLAYED] * 2

    assert captures(stack) == once
    assert account(stack, rides, seqs) == tally_once and tally_once["duplicated"] == 0


def test_a_trimmed_range_is_reported_lost_and_its_message_kept(stack: Stack, rides: list[Ride]) -> None:
    mapping = stream_with_an_outage(stack, rides)
    first, second = (r["KinesisBatchInfo"] for r in mapping.given_up)
    middle = (int(first["startSequenceNumber"]) + int(first["endSequenceNumber"])) // 2
    shard = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].streams[RIDES].shards[first["shardId"]]
    for sequence in [s for s in shard.records if s <= middle]:  # Kinesis trims from the oldest record
        del shard.records[sequence]
    before = captures(stack)

    lost, replayed = stack.replay()

    assert lost.outcome is Outcome.LOST and replayed.outcome is Outcome.REPLAYED
    assert lost.line().startswith(f"LOST: {first['shardId']} sequence {first['startSequenceNumber']} .. ")
    assert f"the shard now begins at {middle + 1}" in lost.detail
    assert stack.function.invocations == 1  # only the readable range was re-driven
    assert set(before) < set(captures(stack))
    kept = stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["KinesisBatchInfo"] for m in kept] == [first]
    assert second["startSequenceNumber"] not in {
        json.loads(m["Body"])["KinesisBatchInfo"]["startSequenceNumber"] for m in kept
    }


def test_a_re_drive_that_still_fails_keeps_its_message_until_a_later_run_succeeds(
    stack: Stack, rides: list[Ride]
) -> None:
    stream_with_an_outage(stack, rides)
    seqs = sequence_numbers(stack, rides)
    stack.outage.on = True  # the replay runs before S3 is back

    reports = stack.replay()

    assert [r.outcome for r in reports] == [Outcome.STILL_FAILING] * 2
    assert all(
        r.still_failing and r.predicted == 0 and r.rejected + len(r.still_failing) == r.read for r in reports
    )
    assert stack.depth() == 2 and stack.alarm_breached()
    stack.outage.on = False
    assert [r.outcome for r in stack.replay()] == [Outcome.REPLAYED] * 2
    tally = account(stack, rides, seqs)
    assert (tally["lost"], tally["duplicated"], stack.depth()) == (0, 0, 0)


def test_messages_it_cannot_act_on_are_kept_and_reported(stack: Stack) -> None:
    elsewhere = "arn:aws:kinesis:us-east-1:123456789012:stream/elsewhere"
    info = {"shardId": "shardId-000000000000", "startSequenceNumber": "1", "endSequenceNumber": "2"}
    other = {"KinesisBatchInfo": {**info, "batchSize": 2, "streamArn": elsewhere}}
    for body in ("not json", json.dumps(other)):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)

    reports = stack.replay()

    assert sorted(r.outcome for r in reports) == [Outcome.UNREADABLE] * 2
    assert sorted(r.detail.split(":")[0] for r in reports) == ["body", "names arn"]
    assert stack.function.invocations == 0 and stack.depth() == 2


def test_the_same_tool_replays_the_actuals_failures_queue(stack: Stack, rides: list[Ride]) -> None:
    """The actuals of the rides, their writes to actuals/ cut by the outage for every retry, re-driven
    through the actuals function: each accepted once."""
    mapping = EventSourceMapping(
        stack.kinesis, stack.sqs, RIDES, stack.queue_url, stack.function.handler, BATCH_SIZE, RETRIES
    )
    put_records(RIDES, rides, stack.kinesis)
    while mapping.poll():
        pass
    duration = {ride.ride_id: ride.duration or 0.0 for ride in rides if ride.good}
    actuals = [
        Actual(r["prediction"]["prediction_id"], duration[r["prediction"]["ride_id"]])
        for r in read_stream(stack.kinesis)
    ]
    put_actuals(ACTUALS, actuals, stack.kinesis)
    actuals_s3 = boto3.client("s3")  # the actuals function's client: its writes go to the capture bucket
    actuals_s3.meta.events.register("provide-client-params.s3.PutObject", stack.outage)
    service = build_actuals_service(ActualsConfig("capture", "rejected"), actuals_s3)
    function = InProcessFunction(lambda event: handle_actuals(event, service))
    queue_url = stack.sqs.create_queue(QueueName="actuals-failures")["QueueUrl"]
    actuals_mapping = EventSourceMapping(
        stack.kinesis, stack.sqs, ACTUALS, queue_url, function.handler, BATCH_SIZE, RETRIES
    )
    stack.outage.on = True
    while actuals_mapping.poll():
        pass
    stack.outage.on = False
    assert len(actuals_mapping.given_up) == -(-len(actuals) // BATCH_SIZE)
    assert not [key for key in keys(stack.s3, "capture") if key.startswith("actuals/")]

    reports = replay_queue(stack.ports(queue_url, function), TARGETS["actuals"], stack.stream_arn(ACTUALS))

    assert {r.outcome for r in reports} == {Outcome.REPLAYED}
    assert sum(r.predicted for r in reports) == len(actuals) and sum(r.rejected for r in reports) == 0
    stored = Counter(
        line.prediction_id
        for key in keys(stack.s3, "capture")
        if key.startswith("actuals/")
        for line in decode_actuals(stack.s3.get_object(Bucket="capture", Key=key)["Body"].read())
        if isinstance(line, Actual)
    )
    assert stored == Counter(a.prediction_id for a in actuals)
