"""The actuals function (lambda_actuals) on in-memory buckets: every reason an actual is refused, the
accepted ones in the format the readers take, a retried batch overwriting its own objects, a capture
hour or a write that fails retried."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from lambda_actuals.handler import handle
from lambda_actuals.service import ActualsService
from lambda_predict.handler import handle_batch as predict
from lambda_predict.model_provider import ModelProvider
from lambda_predict.service import PredictService
from tests.doubles.actuals import SHARD, FlakyStore, actual_record
from tests.doubles.predict import InMemoryObjects, InMemoryStream, keyed_ids, publish, tiny_bundle
from tests.unit.test_predict_service import event, good, kinesis_record
from trip_core.bundle import load_bundle
from trip_core.capture import Actual, decode_actuals, decode_rejected
from trip_core.contracts import PREDICTION_ID_TOKEN_HEX, actuals_key, batch_name, rejected_actuals_key

NOW = datetime(2023, 3, 6, 19, 45, tzinfo=UTC)
REPORTED = datetime(2023, 3, 6, 19, tzinfo=UTC)  # the hour of the actuals records' arrival


@dataclass
class Stack:
    capture: FlakyStore
    rejected: FlakyStore
    stream: InMemoryStream
    predict: PredictService
    actuals: ActualsService

    def serve(self, *rides: dict[str, Any], first_seq: int = 1) -> dict[Any, str]:
        """Rides through the predict function: ride id -> the prediction id its client was given."""
        records = [kinesis_record(first_seq + i, ride) for i, ride in enumerate(rides)]
        predict(event(*records), None, self.predict)
        answers = [json.loads(entry.data)["prediction"] for entry in self.stream.records]
        return {answer["ride_id"]: answer["prediction_id"] for answer in answers}

    def accepted(self, first_seq: int = 1) -> list[Actual | str]:
        body = self.capture.get(actuals_key(REPORTED, batch_name(SHARD, str(first_seq))))
        return [] if body is None else decode_actuals(body)

    def rejected_reasons(self, first_seq: int = 1) -> list[tuple[str, str, str]]:
        body = self.rejected.get(rejected_actuals_key(REPORTED, SHARD, str(first_seq)))
        rejections = [] if body is None else decode_rejected(body)
        return [(r.sequence_number, r.reasons[0].field, r.reasons[0].reason) for r in rejections]


def new_stack() -> Stack:
    """The predict and actuals functions' logic over one capture bucket."""
    models = InMemoryObjects()
    publish(models, "3", tiny_bundle())
    provider = ModelProvider(models, "serving/live.json", load_bundle, ttl_seconds=60)
    provider.load_initial()
    capture, rejected, stream = FlakyStore(), FlakyStore(), InMemoryStream()
    service = PredictService(provider, stream, capture, InMemoryObjects(), keyed_ids(), now=lambda: NOW)
    return Stack(capture, rejected, stream, service, ActualsService(capture, rejected, now=lambda: NOW))


@pytest.fixture
def stack() -> Stack:
    return new_stack()


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


def test_each_actual_is_accepted_or_stored_with_its_reason(stack: Stack) -> None:
    ids = stack.serve(good(1), good(2))
    known, other = ids[1], ids[2]
    unknown_token = known[:-PREDICTION_ID_TOKEN_HEX] + "0" * PREDICTION_ID_TOKEN_HEX  # the right hour
    elsewhere = "2023030612" + known[10:]  # a real token in an hour without it
    nan = f'{{"prediction_id": "{known}", "duration_minutes": NaN}}'.encode()
    lines: list[tuple[Any, bytes | None, str | None]] = [
        ({"prediction_id": known, "duration_minutes": 12.5}, None, None),
        ({"prediction_id": other, "duration_minutes": 1440}, None, None),
        (None, b"{not json", "record:malformed"),
        (None, b"\xff\xfe", "record:malformed"),
        ({"ride_id": 1, "duration_minutes": 12.5}, None, "record:malformed"),  # the old, forgeable line
        ({"prediction_id": known}, None, "record:malformed"),
        ({"prediction_id": known, "duration_minutes": "12"}, None, "record:malformed"),
        (None, nan, "duration_minutes:non_finite"),
        ({"prediction_id": known, "duration_minutes": 0}, None, "duration_minutes:not_positive"),
        ({"prediction_id": known, "duration_minutes": -3.0}, None, "duration_minutes:not_positive"),
        ({"prediction_id": known, "duration_minutes": 1440.5}, None, "duration_minutes:over_max"),
        ({"prediction_id": unknown_token, "duration_minutes": 9.0}, None, "prediction_id:unknown_prediction"),
        ({"prediction_id": elsewhere, "duration_minutes": 9.0}, None, "prediction_id:unknown_prediction"),
    ]  # fmt: skip
    records = [actual_record(100 + i, line, raw) for i, (line, raw, _) in enumerate(lines)]
    assert failures(handle({"Records": records}, stack.actuals)) == []
    assert stack.accepted(100) == [Actual(known, 12.5), Actual(other, 1440.0)]
    expected = [(str(100 + i), *reason.split(":")) for i, (_, _, reason) in enumerate(lines) if reason]
    assert stack.rejected_reasons(100) == expected
    raw = decode_rejected(stack.rejected.objects[rejected_actuals_key(REPORTED, SHARD, "100")])[0].raw_base64
    assert raw == records[2]["kinesis"]["data"]  # kept as sent


def test_a_retried_batch_overwrites_its_own_objects(stack: Stack) -> None:
    ids = stack.serve(good(1))
    batch = {
        "Records": [
            actual_record(7, {"prediction_id": ids[1], "duration_minutes": 3.0}),
            actual_record(8, {}),
        ]
    }
    handle(batch, stack.actuals)
    before = dict(stack.capture.objects), dict(stack.rejected.objects)
    handle(batch, stack.actuals)
    assert (stack.capture.objects, stack.rejected.objects) == before
    assert stack.accepted(7) == [Actual(ids[1], 3.0)] and len(stack.rejected_reasons(7)) == 1


def test_an_unreadable_capture_hour_retries_its_actual_and_every_later_one(stack: Stack) -> None:
    ids = stack.serve(
        good(1), {**good(2), "ride": {**good(2)["ride"], "pickup_datetime": "2023-03-06T08:00:00"}}
    )
    stack.capture.unreadable = ("captures/dt=2023-03-06/hour=13/",)  # ride 2's pickup hour
    batch = [actual_record(20 + i, {"prediction_id": ids[ride], "duration_minutes": 4.0}) for i, ride in
             enumerate([1, 2, 1])]  # fmt: skip
    assert failures(handle({"Records": batch}, stack.actuals)) == ["21", "22"]
    assert stack.accepted(20) == [Actual(ids[1], 4.0)]
    stack.capture.unreadable = ()
    assert failures(handle({"Records": batch[1:]}, stack.actuals)) == []  # Lambda resumes at the failed one
    assert stack.accepted(21) == [Actual(ids[2], 4.0), Actual(ids[1], 4.0)]


def test_a_failed_write_retries_the_whole_batch(stack: Stack) -> None:
    ids = stack.serve(good(1))
    batch = [actual_record(30, {"prediction_id": ids[1], "duration_minutes": 4.0}), actual_record(31, {})]
    stack.rejected.down = True
    assert failures(handle({"Records": batch}, stack.actuals)) == ["30", "31"]
    stack.rejected.down = False
    assert failures(handle({"Records": batch}, stack.actuals)) == []
    assert stack.accepted(30) == [Actual(ids[1], 4.0)]


def test_an_empty_batch_writes_nothing(stack: Stack) -> None:
    assert handle({"Records": []}, stack.actuals) == {"batchItemFailures": []}
    assert stack.capture.objects == {} and stack.rejected.objects == {}
