"""Predict faults on moto S3 + Kinesis through the real app module (issue 8). LocalStack cannot inject
these, so they are injected here: PutRecords entries throttled (ProvisionedThroughputExceeded) for a
while or for good, the output stream missing, the capture bucket gone, the model pointer missing, a
bundle whose checksum does not match.

Each ends in a retry inside the invocation, a record reported in batchItemFailures (then redelivered,
as Lambda does), or a clear refusal at init. Accounting per ride: predicted (captured once) or rejected
(stored once), never lost; never put on the stream twice within one delivery. A Lambda retry after a
capture failure re-puts rides already delivered (at least once, docs/architecture.md: consumers
de-duplicate by ride_id): counted as `redelivered`, not as duplicates within a delivery.

Tally printed with -s (module teardown).
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from lambda_predict import service
from lambda_predict.model_provider import ModelLoadError
from tests.integration.test_predict_moto import (  # noqa: F401  (aws is a fixture)
    LambdaContext,
    aws,
    keys,
    load_app,
    publish_to_s3,
    read_stream,
)
from trip_core.capture import decode_capture, decode_rejected

TALLY: Counter[str] = Counter()
THROTTLED = "ProvisionedThroughputExceededException"


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    yield
    print(f"\n[faults/predict] {dict(sorted(TALLY.items()))}")


def record(seq: int, payload: Any) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return {
        "eventID": f"shardId-000000000001:{seq}",
        "eventSource": "aws:kinesis",
        "kinesis": {
            "sequenceNumber": str(seq),
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1678131002.0,
        },
    }


def batch(first_id: int, n_good: int, n_bad: int) -> list[dict[str, Any]]:
    good = [
        record(first_id + i, {"ride_id": first_id + i, "ride": {"PULocationID": 130, "DOLocationID": 205,
                                                                 "trip_distance": 1.0 + i % 7}})
        for i in range(n_good)
    ]  # fmt: skip
    bad = [record(first_id + n_good + i, b"{not json" if i % 2 else {"ride_id": 1}) for i in range(n_bad)]
    return good + bad


class Throttle:
    """Wraps the app's Kinesis client: entries at `positions` of the next `calls` PutRecords calls fail."""

    def __init__(self, kinesis: Any, plan: list[set[int]]) -> None:
        self.kinesis, self.plan, self.injected = kinesis, plan, 0
        self.real = kinesis.put_records

    def __call__(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        failing = self.plan.pop(0) if self.plan else set()
        passing = [r for i, r in enumerate(Records) if i not in failing]
        answers = iter(self.real(StreamName=StreamName, Records=passing)["Records"] if passing else [])
        self.injected += len(failing & set(range(len(Records))))
        out = [{"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded"} if i in failing else next(answers)
               for i in range(len(Records))]  # fmt: skip
        return {"FailedRecordCount": sum("ErrorCode" in r for r in out), "Records": out}


def invoke(app: Any, records: list[dict[str, Any]]) -> list[str]:
    response = app.lambda_handler({"Records": records}, LambdaContext())
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def account(s3: Any, kinesis: Any, sent: list[dict[str, Any]], deliveries: list[list[str]]) -> dict[str, int]:
    """Check and count: every good ride captured once, every bad one rejected once, none lost."""
    captured: Counter[Any] = Counter()
    for key in keys(s3, "capture"):
        captured.update(decode_capture(s3.get_object(Bucket="capture", Key=key)["Body"].read()).ride_id)
    rejected: Counter[str] = Counter()
    for key in keys(s3, "rejected"):
        body = s3.get_object(Bucket="rejected", Key=key)["Body"].read()
        rejected.update(r.sequence_number for r in decode_rejected(body))
    streamed = Counter(p["prediction"]["ride_id"] for p in read_stream(kinesis))
    sent_seqs = [r["kinesis"]["sequenceNumber"] for r in sent]
    predicted_seqs = {str(ride_id) for ride_id in captured}
    lost = [s for s in sent_seqs if s not in predicted_seqs and s not in rejected]
    assert lost == [], f"lost rides: {lost}"
    assert all(n == 1 for n in captured.values()), "a ride captured twice"
    assert all(n == 1 for n in rejected.values()), "a ride rejected twice"
    assert set(streamed) == set(captured), "streamed and captured rides differ"
    in_delivery_dupes = sum(n - 1 for d in deliveries for n in Counter(d).values())
    counts = {
        "rides_sent": len(sent_seqs),
        "rides_predicted": len(captured),
        "rides_rejected": len(rejected),
        "rides_lost": len(lost),
        "duplicated_within_delivery": in_delivery_dupes,
        "redelivered_after_retry": sum(streamed.values()) - len(streamed),
    }
    assert counts["rides_predicted"] + counts["rides_rejected"] == counts["rides_sent"]
    TALLY.update(counts)
    return counts


def stream_keys_since(kinesis: Any, before: int) -> list[str]:
    return [p["key"] for p in read_stream(kinesis)[before:]]


def test_throttled_entries_are_retried_within_the_invocation(aws: tuple[Any, Any]) -> None:  # noqa: F811
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    app = load_app()
    app.SERVICE._sleep = lambda _s: None
    throttle = Throttle(app.SERVICE._sink._kinesis, [{0, 2, 5, 11}, {1}])  # 2 calls: 4 then 1 entry
    app.SERVICE._sink._kinesis.put_records = throttle
    sent = batch(100, 20, 2)
    assert invoke(app, sent) == []
    counts = account(s3, kinesis, sent, [stream_keys_since(kinesis, 0)])
    assert (counts["rides_predicted"], counts["rides_rejected"]) == (20, 2)
    TALLY["faults_injected"] += throttle.injected
    TALLY["retried_in_invocation"] += throttle.injected


def test_persistent_throttling_is_reported_for_retry_then_delivered(aws: tuple[Any, Any]) -> None:  # noqa: F811
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    app = load_app()
    app.SERVICE._sleep = lambda _s: None
    attempts = app.SERVICE._policy.max_attempts
    # entries 3 and 7 fail every attempt (positions shift as the failed ones are retried alone)
    throttle = Throttle(app.SERVICE._sink._kinesis, [{3, 7}] + [{0, 1}] * (attempts - 1))
    app.SERVICE._sink._kinesis.put_records = throttle
    sent = batch(200, 12, 1)
    failed = invoke(app, sent)
    assert failed == ["203", "207"]
    first = stream_keys_since(kinesis, 0)
    assert "203" not in first and "207" not in first  # not captured either: nothing half-done
    # Lambda redelivers the reported records (the throttle has passed)
    retry = [r for r in sent if r["kinesis"]["sequenceNumber"] in failed]
    assert invoke(app, retry) == []
    counts = account(s3, kinesis, sent, [first, stream_keys_since(kinesis, len(first))])
    assert counts["redelivered_after_retry"] == 0  # the throttled ones had never reached the stream
    TALLY["faults_injected"] += throttle.injected
    TALLY["reported_for_retry"] += len(failed)


def test_output_stream_missing_then_created(aws: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    monkeypatch.setenv("PREDICTIONS_STREAM", "late-stream")
    app = load_app()
    app.SERVICE._sleep = lambda _s: None
    sent = batch(300, 5, 2)
    failed = invoke(app, sent)
    assert failed == [str(s) for s in range(300, 305)]  # the bad ones were handled, the good wait
    assert keys(s3, "capture") == []
    kinesis.create_stream(StreamName="late-stream", ShardCount=1)
    retry = [r for r in sent if r["kinesis"]["sequenceNumber"] in failed]
    assert invoke(app, retry) == []
    shard = kinesis.describe_stream(StreamName="late-stream")["StreamDescription"]["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="late-stream", ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    out = [json.loads(r["Data"])["prediction"]["ride_id"] for r in kinesis.get_records(
        ShardIterator=it["ShardIterator"])["Records"]]  # fmt: skip
    assert sorted(out) == list(range(300, 305))
    captured = [
        rid for key in keys(s3, "capture")
        for rid in decode_capture(s3.get_object(Bucket="capture", Key=key)["Body"].read()).ride_id
    ]  # fmt: skip
    assert sorted(captured) == list(range(300, 305))
    TALLY.update({"faults_injected": 1, "rides_sent": 7, "rides_predicted": 5, "rides_rejected": 2,
                  "reported_for_retry": len(failed)})  # fmt: skip


def test_capture_bucket_unavailable_then_back(aws: tuple[Any, Any]) -> None:  # noqa: F811
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    app = load_app()
    app.SERVICE._sleep = lambda _s: None
    s3.delete_bucket(Bucket="capture")  # NoSuchBucket on every capture write
    sent = batch(400, 6, 1)
    failed = invoke(app, sent)
    assert failed == [str(s) for s in range(400, 406)]  # delivered but not captured -> retried
    first = stream_keys_since(kinesis, 0)
    assert sorted(first) == sorted(failed)  # ... once each within this delivery
    s3.create_bucket(Bucket="capture")
    retry = [r for r in sent if r["kinesis"]["sequenceNumber"] in failed]
    assert invoke(app, retry) == []
    counts = account(s3, kinesis, sent, [first, stream_keys_since(kinesis, len(first))])
    assert counts["redelivered_after_retry"] == 6  # at least once: consumers de-duplicate by ride_id
    TALLY["faults_injected"] += 1
    TALLY["reported_for_retry"] += len(failed)


def test_model_pointer_missing_fails_init_clearly(aws: tuple[Any, Any]) -> None:  # noqa: F811
    with pytest.raises(
        ModelLoadError, match=r"cannot read model pointer s3 key 'serving/live\.json'.*NoSuchKey"
    ):
        load_app()
    TALLY["faults_injected"] += 1
    TALLY["init_refused"] += 1


def test_bundle_checksum_mismatch_is_refused(aws: tuple[Any, Any]) -> None:  # noqa: F811
    s3, _ = aws
    publish_to_s3(s3, "3")
    s3.put_object(Bucket="models", Key="models/trip-duration/3/bundle.npz", Body=b"tampered bundle bytes")
    with pytest.raises(
        ModelLoadError, match="bundle of model version 3 is refused: bundle checksum mismatch"
    ):
        load_app()
    TALLY["faults_injected"] += 1
    TALLY["init_refused"] += 1


def test_a_bundle_failing_its_smoke_test_fails_init_and_counts_it(
    aws: tuple[Any, Any],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bundle that loads but answers -999,997 min: the cold start fails with the reason, and
    BundleRefused is already on stdout (EMF) although no invocation ever ran."""
    s3, _ = aws
    publish_to_s3(s3, "3", base=-1_000_000.0)
    with pytest.raises(ModelLoadError, match="bundle of model version 3 is refused: smoke test: 48 of 48"):
        load_app()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [e["BundleRefused"] for e in emf] == [[1.0]]
    TALLY["faults_injected"] += 1
    TALLY["init_refused"] += 1


def test_records_that_fail_after_validation_are_rejected_not_their_batch(
    aws: tuple[Any, Any],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 14's measured hole, on moto through the real app: a ride id that is a lone surrogate escape
    (valid JSON, but no UTF-8 partition key can hold it), pickups in years 1 and 9999, and a prediction
    too large for a Kinesis record (the encoder patched) among good rides. Each is stored as rejected with
    its reason; the good rides are delivered and captured; nothing is retried."""
    s3, kinesis = aws
    publish_to_s3(s3, "3")
    app = load_app()
    real_encode = service.encode_prediction

    def oversized(record: dict[str, Any]) -> bytes:
        body = real_encode(record)
        return body + b" " * (1024 * 1024) if record["prediction"]["ride_id"] == 504 else body

    monkeypatch.setattr(service, "encode_prediction", oversized)
    ride = {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 2.0}
    surrogate_id = (
        b'{"ride_id": "\\ud800", "ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 2}}'
    )
    sent = [
        *batch(500, 5, 0),
        record(505, surrogate_id),
        record(506, {"ride_id": 506, "ride": {**ride, "pickup_datetime": "0001-01-01T00:00:00"}}),
        record(507, {"ride_id": 507, "ride": {**ride, "pickup_datetime": "9999-12-31T23:59:59"}}),
    ]
    assert invoke(app, sent) == []
    counts = account(s3, kinesis, sent, [stream_keys_since(kinesis, 0)])
    assert (counts["rides_predicted"], counts["rides_rejected"]) == (4, 4)
    reasons = {
        r.sequence_number: r.reasons[0]
        for key in keys(s3, "rejected")
        for r in decode_rejected(s3.get_object(Bucket="rejected", Key=key)["Body"].read())
    }
    assert {seq: reason.field for seq, reason in reasons.items()} == {
        "504": "prediction",
        "505": "ride_id",
        "506": "pickup_datetime",
        "507": "pickup_datetime",
    }
    assert reasons["504"].reason.startswith("too large for the predictions stream")
    TALLY["faults_injected"] += 4
