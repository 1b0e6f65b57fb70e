"""Per-record isolation (issue 14): a failure of one record anywhere in its path -- decoding, validation,
features, prediction, encoding for the stream, capture -- is that record's rejection with a field and a
reason, or its own retry when transient; never its batch's. Each failure site is injected for chosen
rides (the model, the feature code and the encoders patched to fail on them); a property runs every site
on random batches and poisoned subsets, all of a batch included."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambda_predict import service as service_module
from lambda_predict.delivery import MAX_BYTES_PER_RECORD
from lambda_predict.handler import handle_batch, handle_ride
from lambda_predict.service import ModelFailure
from tests.unit.test_predict_service import (
    Context,
    World,
    event,
    failures,
    good,
    kinesis_record,
    make_world,
)
from trip_core import rides as rides_module
from trip_core.capture import decode_capture, decode_rejected
from trip_core.features import FEATURE_NAMES

POISON_DISTANCE = 77.77  # the rides the patched feature code and model fail on
DISTANCE = FEATURE_NAMES.index("trip_distance")


def rejected(w: World) -> dict[str, list[tuple[str, str]]]:
    """sequence number -> its (field, reason)s, over every stored rejected-rides object."""
    return {
        r.sequence_number: [(e.field, e.reason) for e in r.reasons]
        for body in w.rejected.objects.values()
        for r in decode_rejected(body)
    }


def captured(w: World) -> list[Any]:
    return sorted(rid for body in w.captures.objects.values() for rid in decode_capture(body).ride_id)


def patch_model(
    w: World, predict: Callable[[np.ndarray, Callable[[np.ndarray], np.ndarray]], np.ndarray]
) -> None:
    """The loaded model's predict replaced by `predict(features, original)`."""
    predictor = w.service.models.current().predictor
    original = predictor.predict
    object.__setattr__(predictor, "predict", lambda features: predict(features, original))


def poisoned(features: np.ndarray) -> np.ndarray:
    return np.asarray(features[:, DISTANCE] == POISON_DISTANCE)


def _raise_on_poison(features: np.ndarray, original: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    if poisoned(features).any():
        raise IndexError("index 12 is out of bounds for axis 1 with size 12")
    return original(features)


def _nan_on_poison(features: np.ndarray, original: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.where(poisoned(features), np.nan, original(features))


Site = Callable[[pytest.MonkeyPatch, World, set[Any]], tuple[str, str]]


def _features_fail(mp: pytest.MonkeyPatch, _w: World, _ids: set[Any]) -> tuple[str, str]:
    real = rides_module.compute_features  # the service's features: trip_core.rides.ride_features

    def features(pu: Any, do: Any, distance: np.ndarray, pickup: Any) -> np.ndarray:
        if (np.asarray(distance) == POISON_DISTANCE).any():
            raise ValueError("a feature the code cannot compute")
        return real(pu, do, distance, pickup)

    mp.setattr(rides_module, "compute_features", features)
    return "features", "cannot be computed"


def _model_raises(_mp: pytest.MonkeyPatch, w: World, _ids: set[Any]) -> tuple[str, str]:
    patch_model(w, _raise_on_poison)
    return "prediction", "the model failed on this ride"


def _model_nan(_mp: pytest.MonkeyPatch, w: World, _ids: set[Any]) -> tuple[str, str]:
    patch_model(w, _nan_on_poison)
    return "prediction", "model answered nan minutes, outside [0, 1440]"


def _stream_encoding_fails(mp: pytest.MonkeyPatch, _w: World, ids: set[Any]) -> tuple[str, str]:
    real = service_module.encode_prediction

    def encode(record: dict[str, Any]) -> bytes:
        if record["prediction"]["ride_id"] in ids:
            raise TypeError("Object of type Decimal is not JSON serializable")
        return real(record)

    mp.setattr(service_module, "encode_prediction", encode)
    return "prediction", "cannot be encoded for the predictions stream"


def _stream_record_too_large(mp: pytest.MonkeyPatch, _w: World, ids: set[Any]) -> tuple[str, str]:
    real = service_module.encode_prediction

    def encode(record: dict[str, Any]) -> bytes:
        body = real(record)
        return body + b" " * MAX_BYTES_PER_RECORD if record["prediction"]["ride_id"] in ids else body

    mp.setattr(service_module, "encode_prediction", encode)
    return "prediction", "too large for the predictions stream"


def _capture_refuses(mp: pytest.MonkeyPatch, _w: World, ids: set[Any]) -> tuple[str, str]:
    real = service_module.encode_capture

    def encode(batch: Any) -> bytes:
        if ids & set(batch.ride_id):
            raise ValueError("Out of range float values are not JSON compliant")
        return real(batch)

    mp.setattr(service_module, "encode_capture", encode)
    return "capture", "cannot be encoded in the capture"


SITES: dict[str, Site] = {
    "features": _features_fail,
    "model raises": _model_raises,
    "model NaN": _model_nan,
    "stream encoding": _stream_encoding_fails,
    "stream size": _stream_record_too_large,
    "capture": _capture_refuses,
}


@contextmanager
def failing_at(site: str, w: World, poison_ids: set[Any]) -> Iterator[tuple[str, str]]:
    """Make `site` fail for the rides in `poison_ids` (which carry POISON_DISTANCE); -> the (field, reason
    prefix) their rejection must give."""
    with pytest.MonkeyPatch.context() as mp:
        yield SITES[site](mp, w, poison_ids)


@pytest.fixture
def world() -> World:
    return make_world()


def ride(i: int, poison: bool) -> dict[str, Any]:
    payload = good(i, POISON_DISTANCE if poison else 1.0 + i % 7)
    payload["ride"]["pickup_datetime"] = f"2023-03-06T{8 + i % 6:02d}:{i % 60:02d}:00"  # several hours
    return payload


@pytest.mark.parametrize("site", SITES)
def test_a_ride_failing_at_a_site_is_rejected_and_the_rest_of_its_batch_predicted(
    world: World, site: str
) -> None:
    records = [kinesis_record(i, ride(i, poison=i in (2, 5))) for i in range(8)]
    with failing_at(site, world, {2, 5}) as (field, reason):
        response = handle_batch(event(*records), None, world.service)
    assert failures(response) == []
    stored = rejected(world)
    assert sorted(stored) == ["2", "5"]
    for reasons in stored.values():
        [(got_field, got_reason)] = reasons
        assert got_field == field and got_reason.startswith(reason), reasons
    assert captured(world) == [0, 1, 3, 4, 6, 7]
    assert sorted(world.predictions()) == [0, 1, 3, 4, 6, 7]  # a rejected ride is never delivered


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 30),
    poison=st.sets(st.integers(0, 29)),
    site=st.sampled_from(sorted(SITES)),
)
def test_every_site_on_any_subset_rejects_exactly_the_poisoned_rides(
    n: int, poison: set[int], site: str
) -> None:
    """All of a batch poisoned included: the model answers the probe ride, so the rides are at fault."""
    poison &= set(range(n))
    w = make_world()  # a fresh one per example: the model is patched
    records = [kinesis_record(i, ride(i, poison=i in poison)) for i in range(n)]
    with failing_at(site, w, poison) as (field, reason):
        response = handle_batch(event(*records), None, w.service)
    assert failures(response) == []
    stored = rejected(w)
    assert {int(s) for s in stored} == poison
    assert all(len(r) == 1 and r[0][0] == field and r[0][1].startswith(reason) for r in stored.values())
    assert captured(w) == sorted(set(range(n)) - poison) == sorted(w.predictions())


# ------------------------------------------------------------------ the model's fault is not the rides'


@pytest.mark.parametrize("broken", ["raises", "NaN"])
def test_a_model_that_answers_no_ride_retries_the_rides_and_rejects_none(world: World, broken: str) -> None:
    def predict(features: np.ndarray, _original: Any) -> np.ndarray:
        if broken == "raises":
            raise IndexError("index 12 is out of bounds for axis 1 with size 12")
        return np.full(len(features), np.nan)

    patch_model(world, predict)
    records = [kinesis_record(i, good(i)) for i in range(3)] + [kinesis_record(9, None, raw=b"{oops")]
    response = handle_batch(event(*records), None, world.service)
    assert failures(response) == ["0", "1", "2"]  # the model's fault: retried (a hot swap may fix it)
    assert list(rejected(world)) == ["9"]  # the bad record is still handled
    assert world.stream.records == [] and world.captures.objects == {}


def test_direct_invoke_without_a_finite_answer_names_the_reason(world: World) -> None:
    patch_model(world, _nan_on_poison)
    answer = handle_ride(good(1, POISON_DISTANCE), Context(), world.service)
    assert answer == {
        "error": "no prediction for this ride",
        "reasons": [{"field": "prediction", "reason": "model answered nan minutes, outside [0, 1440]"}],
    }
    assert world.captures.objects == {}


def test_direct_invoke_on_a_broken_model_is_a_function_error(world: World) -> None:
    patch_model(world, lambda features, _original: np.full(len(features), np.inf))
    with pytest.raises(ModelFailure, match="model answered inf minutes"):
        handle_ride(good(1), Context(), world.service)


# ----------------------------------------------------------------------- a pickup with no UTC hour


def test_a_pickup_past_the_last_utc_hour_is_rejected_alone(world: World) -> None:
    """Records arriving at the end of year 9999 (by the service's clock): a pickup within the day's lead
    has no UTC hour (datetime ends first); the vectorised pass fails, ride by ride names the one."""
    records = [kinesis_record(i, good(i)) for i in range(3)]
    end_of_time = datetime(9999, 12, 31, 22, tzinfo=UTC)
    world.service._now = lambda: end_of_time
    for record in records:
        record["kinesis"]["approximateArrivalTimestamp"] = end_of_time.timestamp()
    late = ride(1, poison=False)
    late["ride"]["pickup_datetime"] = "9999-12-31T20:30:00"  # New York: 01:30 UTC on 10000-01-01
    records[1]["kinesis"]["data"] = base64.b64encode(json.dumps(late).encode()).decode()
    assert failures(handle_batch(event(*records), None, world.service)) == []
    [(field, reason)] = rejected(world)["1"]
    assert field == "pickup_datetime" and reason.startswith("has no UTC hour")
    assert captured(world) == [0, 2]


# ------------------------------------------------------------------ every kind in one batch, at once


def test_one_batch_with_a_failure_of_every_kind_keeps_each_to_its_record(world: World) -> None:
    """Undecodable, invalid, implausible pickup, lone-surrogate id, features, model, encodings, capture,
    and a throttled put: each record gets its own outcome; the good rides are predicted."""
    raw = {
        10: b"",  # its data is replaced by text that is not base64, below
        11: b"\xff\xfe",  # not UTF-8
        12: b'{"ride_id": 1, "ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}}',
        13: json.dumps(
            {**good(13), "ride": {**good(13)["ride"], "pickup_datetime": "0001-01-01T00:00:00"}}
        ).encode(),
        14: json.dumps(
            {**good(14), "ride": {**good(14)["ride"], "pickup_datetime": "9999-12-31T23:59:59"}}
        ).encode(),
        15: b'{"ride_id": "\\ud800", "ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 2}}',
    }
    records = [kinesis_record(seq, None, raw=body) for seq, body in raw.items()]
    records[0]["kinesis"]["data"] = "%%% not base64"
    records += [kinesis_record(i, ride(i, poison=i == 3)) for i in range(6)]
    world.stream.fail_next = [{3}, {0}, {0}]  # rides 0, 1, 2, 5 are put: ride 5 throttled at every attempt
    with failing_at("model NaN", world, {3}), failing_at("capture", world, {4}):
        response = handle_batch(event(*records), None, world.service)
    assert failures(response) == ["5"]  # transient: that record alone is retried
    fields = {seq: [f for f, _ in reasons] for seq, reasons in rejected(world).items()}
    assert fields == {
        "10": ["data"],
        "11": ["data"],
        "12": ["trip_distance"],
        "13": ["pickup_datetime"],
        "14": ["pickup_datetime"],
        "15": ["ride_id"],
        "3": ["prediction"],
        "4": ["capture"],
    }
    assert captured(world) == [0, 1, 2]
    assert sorted(world.predictions()) == [0, 1, 2]
