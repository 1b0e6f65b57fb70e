"""The prediction handler on in-memory fakes: golden event, bad records, mixed batch, transient
failures reported for retry, direct invoke."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lambda_predict.delivery import RetryPolicy
from lambda_predict.handler import handle_batch, handle_ride
from lambda_predict.model_provider import ModelProvider
from lambda_predict.service import PredictService, encode_prediction, prediction_record
from tests.doubles.kinesis import lambda_record
from tests.doubles.predict import InMemoryObjects, InMemoryStream, keyed_ids, publish, tiny_bundle
from trip_core.bundle import load_bundle
from trip_core.capture import decode_capture, decode_rejected
from trip_core.contracts import prediction_id_hour

EVENTS = Path(__file__).parents[1] / "events"
NOW = datetime(2023, 3, 6, 19, 30, 5, tzinfo=UTC)
SHARD = "shardId-000000000000"
ARRIVAL = 1678131002.0  # 2023-03-06T19:30:02Z = 14:30:02 New York


@dataclass
class World:
    models: InMemoryObjects
    stream: InMemoryStream
    captures: InMemoryObjects
    rejected: InMemoryObjects
    service: PredictService
    sleeps: list[float]

    def predictions(self) -> dict[Any, dict[str, Any]]:
        out = {}
        for entry in self.stream.records:
            record = json.loads(entry.data)
            assert entry.partition_key == str(record["prediction"]["ride_id"])
            out[record["prediction"]["ride_id"]] = record
        return out


@pytest.fixture
def world() -> World:
    return make_world()


def make_world() -> World:
    models = InMemoryObjects()
    publish(models, "3", tiny_bundle())
    provider = ModelProvider(models, "serving/live.json", load_bundle, ttl_seconds=60)
    provider.load_initial()
    stream, captures, rejected = InMemoryStream(), InMemoryObjects(), InMemoryObjects()
    sleeps: list[float] = []
    service = PredictService(
        provider,
        stream,
        captures,
        rejected,
        keyed_ids(),
        RetryPolicy(max_attempts=3),
        sleep=sleeps.append,
        now=lambda: NOW,
    )
    return World(models, stream, captures, rejected, service, sleeps)


def kinesis_record(seq: int, payload: Any, raw: bytes | None = None) -> dict[str, Any]:
    return lambda_record(SHARD, seq, payload, raw, ARRIVAL)


def good(ride_id: Any, distance: float = 3.0) -> dict[str, Any]:
    return {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": distance}, "ride_id": ride_id}


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def failures(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


# ------------------------------------------------------------------------------------- golden


def test_golden_kinesis_event(world: World) -> None:
    golden = json.loads((EVENTS / "kinesis_batch.json").read_text())
    expected = json.loads((EVENTS / "kinesis_batch.expected.json").read_text())
    assert handle_batch(golden, None, world.service) == expected
    predictions = world.predictions()
    ids = {ride: record["prediction"].pop("prediction_id") for ride, record in predictions.items()}
    assert predictions == {
        256: {"model": "trip-duration", "version": "3", "prediction": {"ride_duration": 8.0, "ride_id": 256}},
        "ride-257": {
            "model": "trip-duration",
            "version": "3",
            "prediction": {"ride_duration": 5.0, "ride_id": "ride-257"},
        },
        258: {"model": "trip-duration", "version": "3", "prediction": {"ride_duration": 8.0, "ride_id": 258}},
    }
    first_seq = golden["Records"][0]["kinesis"]["sequenceNumber"]
    # one object per UTC pickup hour, each named by the batch: the rides' pickups are 09:30:02 EST
    # (arrival time, 14:30 UTC) and 08:15, 08:05 EST (13:xx UTC)
    assert sorted(world.captures.objects) == [
        f"captures/dt=2023-03-06/hour=13/{SHARD}_{first_seq}.json.gz",
        f"captures/dt=2023-03-06/hour=14/{SHARD}_{first_seq}.json.gz",
    ]
    early, late = (decode_capture(world.captures.objects[k]) for k in sorted(world.captures.objects))
    assert {early.model_version, late.model_version} == {"3"}
    assert early.captured_at == late.captured_at == "2023-03-06T19:30:05Z"
    assert (early.ride_id, late.ride_id) == (["ride-257", 258], [256])
    # the ids returned are the ones captured: the pickup hour, then the keyed hash of shard and sequence
    assert (early.prediction_id, late.prediction_id) == ([ids["ride-257"], ids[258]], [ids[256]])
    assert ids[256] == keyed_ids().of_record(datetime(2023, 3, 6, 14, tzinfo=UTC), SHARD, first_seq)
    assert ids[258].startswith("2023030613-")
    # no pickup time -> arrival time in New York; naive -> as is; UTC -> New York
    assert early.pickup_datetime == ["2023-03-06T08:15:00", "2023-03-06T08:05:00"]
    assert late.pickup_datetime == ["2023-03-06T09:30:02"]
    assert (early.prediction, late.prediction) == ([5.0, 8.0], [8.0])
    (rejected_key,) = world.rejected.objects
    # named by the first rejected record (its arrival hour), which a retry of the batch rejects again
    first_rejected = golden["Records"][3]["kinesis"]["sequenceNumber"]
    assert rejected_key == f"rejected/dt=2023-03-06/hour=14/{SHARD}_{first_rejected}.json"
    rejections = decode_rejected(world.rejected.objects[rejected_key])
    assert [(r.sequence_number, r.reasons[0].field) for r in rejections] == [
        (golden["Records"][3]["kinesis"]["sequenceNumber"], "trip_distance"),
        (golden["Records"][4]["kinesis"]["sequenceNumber"], "data"),
    ]
    assert rejections[1].raw_base64 == golden["Records"][4]["kinesis"]["data"]
    assert rejections[1].arrival_time == "2023-03-06T14:30:06.500Z"


# ------------------------------------------------------------------------------ bad records

BAD_RECORDS: list[tuple[str, bytes, str, str]] = [
    ("not JSON", b"{oops", "data", "not valid JSON"),
    ("not UTF-8", b"\xff\xfe", "data", "not UTF-8 text"),
    ("not an object", b"[1, 2]", "data", "must be a JSON object, got array"),
    ("no ride", b'{"ride_id": 1}', "ride", "missing"),
    ("ride is a string", b'{"ride_id": 1, "ride": "x"}', "ride", "must be a JSON object, got string"),
    (
        "null field",
        json.dumps({**good(1), "ride": {**good(1)["ride"], "DOLocationID": None}}).encode(),
        "DOLocationID",
        "must not be null",
    ),
    ("bool distance", json.dumps(good(1, True)).encode(), "trip_distance", "must be a number, got bool"),
    (
        "NaN distance",
        b'{"ride_id": 1, "ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}}',
        "trip_distance",
        "must be finite, got nan",
    ),
    (
        "Infinity distance",
        b'{"ride_id": 1, "ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": Infinity}}',
        "trip_distance",
        "must be finite, got inf",
    ),
    (
        "negative distance",
        json.dumps(good(1, -2)).encode(),
        "trip_distance",
        "must not be negative, got -2.0",
    ),
    (
        "absurd distance",
        json.dumps(good(1, 5000)).encode(),
        "trip_distance",
        "must be at most 100 miles, got 5000.0",
    ),
    (
        "unknown zone",
        b'{"ride_id": 1, "ride": {"PULocationID": 300, "DOLocationID": 2, "trip_distance": 1}}',
        "PULocationID",
        "300 is not in the taxi-zone table",
    ),
    (
        "bad datetime",
        json.dumps({"ride_id": 1, "ride": {**good(1)["ride"], "pickup_datetime": "06/03/2023"}}).encode(),
        "pickup_datetime",
        "not an ISO 8601 datetime: '06/03/2023'",
    ),
    (
        "pickup in year 9999",  # its UTC hour is past datetime's range: it once crashed the whole batch
        json.dumps(
            {"ride_id": 1, "ride": {**good(1)["ride"], "pickup_datetime": "9999-12-31T23:30:00"}}
        ).encode(),
        "pickup_datetime",
        "more than 24 h after arrival: '9999-12-31T23:30:00'",
    ),
    ("long ride_id", json.dumps(good("r" * 65)).encode(), "ride_id", "longer than 64 characters (65)"),
    ("bool ride_id", json.dumps(good(False)).encode(), "ride_id", "must be an integer or a string, got bool"),
]


@pytest.mark.parametrize(("case", "raw", "field", "reason"), BAD_RECORDS, ids=[c[0] for c in BAD_RECORDS])
def test_bad_record_is_stored_with_its_reason_and_handled(
    world: World, case: str, raw: bytes, field: str, reason: str
) -> None:
    response = handle_batch(event(kinesis_record(7, None, raw=raw)), None, world.service)
    assert failures(response) == []  # handled: it must not block the shard
    (stored,) = world.rejected.objects.values()
    (rejection,) = decode_rejected(stored)
    assert (rejection.shard_id, rejection.sequence_number) == (SHARD, "7")
    assert base64.b64decode(rejection.raw_base64) == raw
    assert [(r.field, r.reason) for r in rejection.reasons] == [(field, reason)]
    assert world.stream.records == [] and world.captures.objects == {}


def test_invalid_base64_is_rejected(world: World) -> None:
    record = kinesis_record(1, good(1))
    record["kinesis"]["data"] = "%%% not base64"
    assert failures(handle_batch(event(record), None, world.service)) == []
    (rejection,) = decode_rejected(next(iter(world.rejected.objects.values())))
    assert rejection.raw_base64 == "%%% not base64"
    assert rejection.reasons[0].reason == "invalid base64"


def test_mixed_batch_predicts_valid_and_stores_bad(world: World) -> None:
    records = [kinesis_record(i, good(i, distance=i)) for i in range(1, 6)]
    records.insert(2, kinesis_record(100, None, raw=b"garbage"))
    records.append(kinesis_record(101, good(101, distance=-1)))
    assert failures(handle_batch(event(*records), None, world.service)) == []
    assert sorted(world.predictions()) == [1, 2, 3, 4, 5]
    assert world.stream.calls == [5]  # one PutRecords call for the batch
    rejected = decode_rejected(next(iter(world.rejected.objects.values())))
    assert [r.sequence_number for r in rejected] == ["100", "101"]
    assert decode_capture(next(iter(world.captures.objects.values()))).ride_id == [1, 2, 3, 4, 5]


def test_a_batch_is_captured_per_pickup_hour_and_a_failed_hour_alone_is_retried(world: World) -> None:
    """Pickups 08:50 and 09:10 New York (13:xx and 14:xx UTC): two objects of the same name; when the
    14:00 one cannot be written only its rides are retried, and the retry overwrites, never adds."""
    pickups = ["2023-03-06T08:50:00", "2023-03-06T09:10:00", "2023-03-06T08:55:00", "2023-03-06T09:20:00"]
    records = [
        kinesis_record(i, {**good(i), "ride": {**good(i)["ride"], "pickup_datetime": p}})
        for i, p in enumerate(pickups)
    ]
    world.captures.refused = "hour=14/"
    assert failures(handle_batch(event(*records), None, world.service)) == ["1", "3"]
    (early,) = world.captures.objects
    assert early == f"captures/dt=2023-03-06/hour=13/{SHARD}_0.json.gz"
    assert decode_capture(world.captures.objects[early]).ride_id == [0, 2]
    world.captures.refused = None
    assert failures(handle_batch(event(*records), None, world.service)) == []  # Lambda retries the batch
    assert sorted(world.captures.objects) == [early, f"captures/dt=2023-03-06/hour=14/{SHARD}_0.json.gz"]
    assert [decode_capture(body).ride_id for _, body in sorted(world.captures.objects.items())] == [
        [0, 2],
        [1, 3],
    ]


def test_one_vectorised_predict_call_per_batch(world: World) -> None:
    calls: list[int] = []
    model = world.service.models.current()
    original = model.predictor.predict

    def counting(features: Any) -> Any:
        calls.append(len(features))
        return original(features)

    object.__setattr__(model.predictor, "predict", counting)
    handle_batch(event(*[kinesis_record(i, good(i)) for i in range(50)]), None, world.service)
    assert calls == [50]


def test_retried_batch_overwrites_its_objects(world: World) -> None:
    batch = event(kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"x"))
    handle_batch(batch, None, world.service)
    handle_batch(batch, None, world.service)
    assert len(world.captures.objects) == 1 and len(world.rejected.objects) == 1


def test_large_batch_is_split_into_put_records_calls_of_500(world: World) -> None:
    records = [kinesis_record(i, good(i)) for i in range(1200)]
    assert failures(handle_batch(event(*records), None, world.service)) == []
    assert world.stream.calls == [500, 500, 200]


# ---------------------------------------------------------------------------- transient failures


def test_partial_put_records_failure_is_retried_with_backoff(world: World) -> None:
    world.stream.fail_next = [{0, 2}, {1}]  # first call: entries 0 and 2 fail; retry: the 2nd of those fails
    records = [kinesis_record(i, good(i)) for i in range(1, 5)]
    assert failures(handle_batch(event(*records), None, world.service)) == []
    assert world.stream.calls == [4, 2, 1]
    assert len(world.sleeps) == 2 and world.sleeps[1] > world.sleeps[0] * 0.9
    assert sorted(world.predictions()) == [1, 2, 3, 4]


def test_undelivered_records_are_reported_for_retry_and_not_captured(world: World) -> None:
    world.stream.fail_next = [{1}, {0}, {0}]  # entry 1 fails all 3 attempts
    records = [kinesis_record(i, good(i)) for i in range(1, 4)]
    response = handle_batch(event(*records), None, world.service)
    assert failures(response) == ["2"]
    assert decode_capture(next(iter(world.captures.objects.values()))).ride_id == [1, 3]


def test_stream_down_reports_every_valid_record_but_bad_ones_are_handled(world: World) -> None:
    world.stream.down = True
    records = [kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"bad"), kinesis_record(3, good(3))]
    response = handle_batch(event(*records), None, world.service)
    assert failures(response) == ["1", "3"]
    assert world.stream.calls == [2, 2, 2]  # bounded attempts
    assert len(world.rejected.objects) == 1 and world.captures.objects == {}


def test_capture_bucket_down_reports_delivered_records(world: World) -> None:
    world.captures.down = True
    records = [kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"bad")]
    assert failures(handle_batch(event(*records), None, world.service)) == ["1"]


def test_rejected_bucket_down_reports_the_bad_records(world: World) -> None:
    world.rejected.down = True
    records = [kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"bad")]
    assert failures(handle_batch(event(*records), None, world.service)) == ["2"]
    assert sorted(world.predictions()) == [1]


def test_everything_down_reports_the_whole_batch_without_raising(world: World) -> None:
    world.stream.down = world.rejected.down = world.captures.down = True
    records = [kinesis_record(1, good(1)), kinesis_record(2, None, raw=b"bad")]
    assert failures(handle_batch(event(*records), None, world.service)) == ["1", "2"]


def test_empty_batch(world: World) -> None:
    assert handle_batch({"Records": []}, None, world.service) == {"batchItemFailures": []}


# --------------------------------------------------------------------------------- direct invoke


@dataclass
class Context:
    aws_request_id: str = "req-1"


def test_direct_invoke_returns_the_prediction_and_captures_it(world: World) -> None:
    ride = json.loads((EVENTS / "direct_ride.json").read_text())
    answer = handle_ride(ride, Context(), world.service)
    pid = answer["prediction"].pop("prediction_id")
    assert answer == {
        "model": "trip-duration",
        "version": "3",
        "prediction": {"ride_duration": 8.0, "ride_id": 256},
    }
    (key,) = world.captures.objects
    assert key == "captures/dt=2023-03-06/hour=19/direct_req-1.json.gz"
    capture = json.loads(gzip.decompress(world.captures.objects[key]))
    assert capture["columns"]["prediction_id"] == [pid] and prediction_id_hour(pid) == datetime(
        2023, 3, 6, 19, tzinfo=UTC
    )
    assert capture["columns"]["pickup_datetime"] == ["2023-03-06T14:30:05"]  # invoke time in New York
    assert world.stream.records == []


@pytest.mark.parametrize(
    ("payload", "reasons"),
    [
        ({"ride_id": 1}, [{"field": "ride", "reason": "missing"}]),
        ("a string", [{"field": "data", "reason": "must be a JSON object, got string"}]),
        (good(1, True), [{"field": "trip_distance", "reason": "must be a number, got bool"}]),
        (
            {"ride_id": None, "ride": {"PULocationID": 0, "DOLocationID": 1, "trip_distance": 1}},
            [
                {"field": "ride_id", "reason": "must not be null"},
                {"field": "PULocationID", "reason": "0 is not in the taxi-zone table"},
            ],
        ),
    ],
)
def test_direct_invoke_with_bad_input_returns_reasons(world: World, payload: Any, reasons: list[Any]) -> None:
    assert handle_ride(payload, Context(), world.service) == {"error": "invalid ride", "reasons": reasons}
    assert world.captures.objects == {}


def test_direct_invoke_still_answers_when_capture_fails(world: World) -> None:
    world.captures.down = True
    answer = handle_ride(good(9), Context(), world.service)["prediction"]
    assert {key: answer[key] for key in ("ride_duration", "ride_id")} == {"ride_duration": 8.0, "ride_id": 9}
    assert prediction_id_hour(answer["prediction_id"]) is not None


@pytest.mark.parametrize("ride_id", [256, -7, "ride-257", 'quote " and \u00e9', 10**40])
@pytest.mark.parametrize("minutes", [8.0, 0.01, 12.35, 1e-05, 59.99])
def test_stream_record_is_the_prediction_record(ride_id: int | str, minutes: float) -> None:
    """The bytes put on the stream decode to the direct-invoke record (and to what json.dumps gave)."""
    model = type("Model", (), {"name": "trip-duration", "version": "3"})()
    record = prediction_record(model, ride_id, minutes, "2023030614-" + "0" * 32)
    encoded = encode_prediction(record)
    assert json.loads(encoded) == record == json.loads(json.dumps(record))
    assert json.loads(encoded)["prediction"]["ride_duration"] == minutes
