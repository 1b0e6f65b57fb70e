"""trip_core.capture: capture / rejected / actuals objects round-trip, keys follow the contract."""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from tests.doubles.captures import pid, pids
from trip_core.capture import (
    ACTUAL_MALFORMED,
    ACTUAL_NON_FINITE,
    ACTUAL_NOT_POSITIVE,
    ACTUAL_OVER_MAX,
    Actual,
    CaptureBatch,
    RecordFormatError,
    Rejection,
    decode_actuals,
    decode_capture,
    decode_rejected,
    encode_actuals,
    encode_capture,
    encode_rejected,
)
from trip_core.contracts import capture_key, rejected_key, utc_iso
from trip_core.rides import FieldError

PROCESSED = datetime(2023, 3, 6, 4, 5, 6, tzinfo=UTC)


def batch() -> CaptureBatch:
    return CaptureBatch(
        model_name="trip-duration",
        model_version="3",
        captured_at="2023-03-06T14:30:02Z",
        prediction_id=pids([256, "abc"]),
        ride_id=[256, "abc"],
        pickup_datetime=["2023-03-06T14:30:00", "2023-03-06T09:00:00"],
        pu_location_id=[130, 1],
        do_location_id=[205, 2],
        trip_distance=[3.66, 0.0],
        prediction=[21.3, 5.25],
    )


def test_keys_follow_the_contract() -> None:
    shard, seq = "shardId-000000000000", "49590338271490256608559692538361571095921575989136588898"
    assert capture_key(PROCESSED, shard, seq) == f"captures/dt=2023-03-06/hour=04/{shard}_{seq}.json.gz"
    assert rejected_key(PROCESSED, shard, seq) == f"rejected/dt=2023-03-06/hour=04/{shard}_{seq}.json"


def test_capture_is_gzip_json_in_the_documented_shape() -> None:
    data = encode_capture(batch())
    document = json.loads(gzip.decompress(data))
    assert document["schema"] == 2 and document["model_version"] == "3"
    assert list(document["columns"]) == [
        "prediction_id",
        "ride_id",
        "pickup_datetime",
        "PULocationID",
        "DOLocationID",
        "trip_distance",
        "prediction",
    ]
    assert document["columns"]["ride_id"] == [256, "abc"]


def test_capture_round_trip() -> None:
    decoded = decode_capture(encode_capture(batch()))
    assert decoded == batch() and len(decoded) == 2
    assert decoded.pickup_datetime64()[0] == np.datetime64("2023-03-06T14:30:00")


def test_capture_decode_rejects_malformed() -> None:
    with pytest.raises(RecordFormatError):
        decode_capture(b"not gzip or json")
    with pytest.raises(RecordFormatError):
        decode_capture(json.dumps({"schema": 2}).encode())
    document = json.loads(gzip.decompress(encode_capture(batch())))
    schema_1 = {**document, "schema": 1}  # before prediction ids: no actual can label its rows
    with pytest.raises(RecordFormatError, match="schema must be 2"):
        decode_capture(json.dumps(schema_1).encode())
    document["columns"]["prediction"].pop()
    with pytest.raises(RecordFormatError, match="differ in length"):
        decode_capture(json.dumps(document).encode())
    del document["columns"]["prediction"]
    with pytest.raises(RecordFormatError, match="prediction"):
        decode_capture(json.dumps(document).encode())


def test_rejected_round_trip_and_shape() -> None:
    rejections = [
        Rejection("shardId-1", "42", "2023-03-06T14:30:02Z", "e30=", (FieldError("ride", "missing"),)),
    ]
    data = encode_rejected(rejections)
    assert json.loads(data) == {
        "schema": 1,
        "rejections": [
            {
                "shard_id": "shardId-1",
                "sequence_number": "42",
                "arrival_time": "2023-03-06T14:30:02Z",
                "raw_base64": "e30=",
                "reasons": [{"field": "ride", "reason": "missing"}],
            }
        ],
    }
    assert decode_rejected(data) == rejections
    with pytest.raises(RecordFormatError):
        decode_rejected(b'{"schema": 1, "rejections": [{}]}')


def test_actuals_round_trip_gives_each_bad_line_its_reason() -> None:
    a, b = pid(256), pid("x")
    bad_lines = [
        '{"prediction_id": 256, "duration_minutes": 1}',
        "nope",
        f'{{"prediction_id": "{a}"}}',
        '{"ride_id": 256, "duration_minutes": 3}',
        f'{{"prediction_id": "{a[:-1]}", "duration_minutes": 3}}',
        f'{{"prediction_id": "{a.upper()}", "duration_minutes": 3}}',
        f'{{"prediction_id": "{a}", "duration_minutes": "5"}}',
        f'{{"prediction_id": "{a}", "duration_minutes": true}}',
        *(f'{{"prediction_id": "{a}", "duration_minutes": {d}}}' for d in ("NaN", "1e400", 0, -0.5)),
        *(f'{{"prediction_id": "{a}", "duration_minutes": {d}}}' for d in ("1440.01", "1e300", 10**400)),
    ]
    data = encode_actuals([Actual(a, 18.2), Actual(b, 0.5), Actual(b, 1440)]) + "\n".join(bad_lines).encode()
    assert decode_actuals(data) == [
        Actual(a, 18.2),
        Actual(b, 0.5),
        Actual(b, 1440.0),
        *[ACTUAL_MALFORMED]
        * 8,  # not an id: a number, absent, a ride id, cut short, upper case; not a number
        ACTUAL_NON_FINITE,
        ACTUAL_NON_FINITE,
        ACTUAL_NOT_POSITIVE,
        ACTUAL_NOT_POSITIVE,
        ACTUAL_OVER_MAX,
        ACTUAL_OVER_MAX,
        ACTUAL_OVER_MAX,
    ]


def test_utc_iso() -> None:
    assert utc_iso(PROCESSED) == "2023-03-06T04:05:06Z"
    assert utc_iso(datetime(2023, 3, 6, 4, 5, 6, 123456, tzinfo=UTC)) == "2023-03-06T04:05:06.123Z"


def test_capture_encoding_keeps_json_semantics() -> None:
    """Non-finite values are refused; big-int and non-ASCII ride ids, tiny floats round-trip."""
    batch = CaptureBatch(
        "m",
        "1",
        "2023-03-06T14:30:02Z",
        pids("ab"),
        [2**70, "é-1"],
        ["2023-03-06T14:30:00"] * 2,
        [1, 2],
        [3, 4],
        [1e-05, 100.0],
        [12.5, 3e-7],
    )
    decoded = decode_capture(encode_capture(batch))
    assert decoded == batch
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            encode_capture(dataclasses.replace(batch, prediction=[1.0, bad]))
