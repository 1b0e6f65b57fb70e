"""Prediction ids (lambda_predict.prediction_ids): what a client is given with its prediction and names
its actual by. The same on a retried batch, different for every record, not computable without the key."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from lambda_predict.handler import handle_batch, handle_ride
from lambda_predict.prediction_ids import PredictionIds
from tests.doubles.predict import TEST_ID_KEY
from tests.unit import test_predict_service
from tests.unit.test_predict_service import SHARD, Context, World, event, good, kinesis_record
from trip_core.capture import decode_capture
from trip_core.contracts import PREDICTION_ID_TOKEN_HEX, prediction_id_hour

HOUR = datetime(2023, 3, 6, 14, tzinfo=UTC)
world = test_predict_service.world  # the predict service on in-memory fakes (a fixture)


def _ids_on_the_stream(world: World) -> dict[object, str]:
    records = [json.loads(entry.data)["prediction"] for entry in world.stream.records]
    return {record["ride_id"]: record["prediction_id"] for record in records}


def _captured_ids(world: World) -> dict[object, str]:
    batches = [decode_capture(body) for body in world.captures.objects.values()]
    return {ride: pid for b in batches for ride, pid in zip(b.ride_id, b.prediction_id, strict=True)}


def test_a_retried_batch_gives_every_ride_the_id_its_client_was_first_given(world: World) -> None:
    records = [kinesis_record(seq, good(seq)) for seq in range(1, 6)]
    handle_batch(event(*records), None, world.service)
    first = _ids_on_the_stream(world)
    world.stream.records.clear()
    handle_batch(event(*records), None, world.service)  # Lambda delivers the whole batch again
    assert _ids_on_the_stream(world) == first == _captured_ids(world)
    world.stream.records.clear()
    handle_batch(event(*records[2:]), None, world.service)  # a retry resuming at the third record
    assert _ids_on_the_stream(world) == {ride: first[ride] for ride in (3, 4, 5)}


def test_every_record_gets_its_own_id_a_resent_ride_too(world: World) -> None:
    records = [kinesis_record(seq, good(seq % 50)) for seq in range(100)]  # each ride sent twice
    handle_batch(event(*records), None, world.service)
    ids = [json.loads(entry.data)["prediction"]["prediction_id"] for entry in world.stream.records]
    assert len(ids) == len(set(ids)) == 100
    assert all(prediction_id_hour(pid) == datetime(2023, 3, 6, 19, tzinfo=UTC) for pid in ids)  # arrival hour


def test_without_the_key_an_id_cannot_be_computed_from_the_record() -> None:
    """What is public about a record (shard, sequence number, pickup hour) gives nothing: another key,
    or the plain hash of the same message, gives other ids."""
    ours = PredictionIds(TEST_ID_KEY).of_record(
        HOUR, SHARD, "49590338271490256608559692538361571095921575989136588898"
    )
    other_key = PredictionIds(b"x" * 32).of_record(
        HOUR, SHARD, "49590338271490256608559692538361571095921575989136588898"
    )
    plain = hashlib.sha256(f"{SHARD}/49590338271490256608559692538361571095921575989136588898".encode())
    token = ours.split("-", 1)[1]
    assert ours.startswith("2023030614-") and len(token) == PREDICTION_ID_TOKEN_HEX
    assert token != other_key.split("-", 1)[1] and token not in plain.hexdigest()


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        PredictionIds(b"short")


def test_direct_invokes_get_random_ids(world: World) -> None:
    answers = [handle_ride(good(7), Context(f"req-{i}"), world.service)["prediction"] for i in range(2)]
    first, second = (answer["prediction_id"] for answer in answers)
    assert first != second and prediction_id_hour(first) == prediction_id_hour(second) is not None
