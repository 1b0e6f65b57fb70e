"""trip_core.rides: one raw ride -> ValidRide or the (field, reason) list."""

from __future__ import annotations

import base64
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trip_core.contracts import MAX_TRIP_DISTANCE_MILES, RideRequest
from trip_core.rides import (
    MAX_RIDE_ID_LENGTH,
    FieldError,
    ValidRide,
    _checked_ride,
    _fast_valid_ride,
    validate_record_data,
    validate_ride,
)

ARRIVAL = datetime(2023, 3, 6, 19, 30, 2, tzinfo=UTC)  # 14:30:02 in New York (EST)


def ride(**fields: Any) -> dict[str, Any]:
    """The course's example ride, with `fields` of its `ride` object replaced (possibly by bad values)."""
    payload = RideRequest(256, 130, 205, 3.66).to_payload()
    payload["ride"].update(fields)
    return payload


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def test_course_format_is_valid_and_uses_arrival_time_in_new_york() -> None:
    result = validate_ride(ride(), ARRIVAL)
    assert result == ValidRide(256, 130, 205, 3.66, datetime(2023, 3, 6, 14, 30, 2), False)


@pytest.mark.parametrize(
    ("given_pickup", "expected"),
    [
        ("2023-03-06T14:30:00", datetime(2023, 3, 6, 14, 30)),  # naive = New York local
        ("2023-03-06T19:30:00Z", datetime(2023, 3, 6, 14, 30)),
        ("2022-07-01T12:00:00+00:00", datetime(2022, 7, 1, 8, 0)),  # EDT
        ("2023-03-06", datetime(2023, 3, 6)),
    ],
)
def test_pickup_datetime_is_converted_to_new_york_local(given_pickup: str, expected: datetime) -> None:
    a_year = timedelta(days=366)  # the July pickup is EDT: months before the (EST) arrival
    result = validate_ride(ride(pickup_datetime=given_pickup), ARRIVAL, a_year)
    assert isinstance(result, ValidRide)
    assert result.pickup_datetime == expected and result.pickup_from_payload


@pytest.mark.parametrize(
    ("given_pickup", "accepted"),
    [
        ("2023-03-07T14:30:02", True),  # exactly MAX_PICKUP_LEAD after the arrival (New York local)
        ("2023-03-07T14:30:03", False),
        ("9999-12-31T23:30:00", False),  # its UTC hour lies past year 9999
    ],
)
def test_pickup_far_after_arrival_is_rejected_by_both_paths(given_pickup: str, accepted: bool) -> None:
    payload = ride(pickup_datetime=given_pickup)
    full, fast = _checked_ride(payload, ARRIVAL), _fast_valid_ride(payload, ARRIVAL)
    assert isinstance(full, ValidRide) is accepted
    assert (fast == full) if accepted else fast is None
    if not isinstance(full, ValidRide):
        assert [e.field for e in full] == ["pickup_datetime"]


@pytest.mark.parametrize(
    ("given_pickup", "reason"),
    [
        ("2023-02-20T14:30:02", None),  # exactly DEFAULT_MAX_PICKUP_AGE before the arrival (New York local)
        ("2023-02-20T14:30:01", "more than 14 days before arrival: '2023-02-20T14:30:01'"),
        ("0001-01-01T00:00:00", "more than 14 days before arrival: '0001-01-01T00:00:00'"),
        ("1970-01-01T00:00:00Z", "more than 14 days before arrival: '1970-01-01T00:00:00Z'"),
        ("9999-12-31T23:59:59", "more than 24 h after arrival: '9999-12-31T23:59:59'"),
        (
            "0001-01-01T00:00:00+14:00",
            "out of range: '0001-01-01T00:00:00+14:00'",
        ),  # before year 1 in New York
        ("9999-12-31T23:59:59-12:00", "out of range: '9999-12-31T23:59:59-12:00'"),
    ],
)
def test_pickup_far_before_arrival_is_rejected_by_both_paths(given_pickup: str, reason: str | None) -> None:
    payload = ride(pickup_datetime=given_pickup)
    full, fast = _checked_ride(payload, ARRIVAL), _fast_valid_ride(payload, ARRIVAL)
    if reason is None:
        assert isinstance(full, ValidRide) and fast == full
    else:
        assert full == [FieldError("pickup_datetime", reason)] and fast is None
        assert validate_record_data(b64(json.dumps(payload)), ARRIVAL) == full


def test_a_stack_sets_its_own_pickup_age() -> None:
    """A stack fed historical months as they were (MAX_PICKUP_AGE_DAYS): a year back is plausible there;
    the lead after arrival stays a day."""
    a_year = timedelta(days=365)
    assert isinstance(validate_ride(ride(pickup_datetime="2022-03-07T14:30:02"), ARRIVAL, a_year), ValidRide)
    assert validate_ride(ride(pickup_datetime="2022-03-06T14:30:01"), ARRIVAL, a_year) == [
        FieldError("pickup_datetime", "more than 365 days before arrival: '2022-03-06T14:30:01'")
    ]
    assert isinstance(validate_ride(ride(pickup_datetime="2023-03-07T14:30:03"), ARRIVAL, a_year), list)


RIDE_TEXT = '{"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 2}, "ride_id": '


@pytest.mark.parametrize(
    ("ride_id_text", "surrogate"),
    [
        ('"\\ud800"', "\ud800"),  # a lone high surrogate escape
        ('"ride \\udfff"', "\udfff"),  # a lone low one
        ('"\\udc00\\ud800"', "\udc00"),  # a pair in the wrong order is two lone ones
    ],
)
def test_a_ride_id_with_a_lone_surrogate_is_rejected(ride_id_text: str, surrogate: str) -> None:
    """Valid JSON, but not UTF-8 text: the ride id is the predictions stream's partition key."""
    assert validate_record_data(b64(RIDE_TEXT + ride_id_text + "}"), ARRIVAL) == [
        FieldError("ride_id", f"not Unicode text: a lone surrogate {surrogate!r}")
    ]


def test_a_ride_id_with_a_surrogate_pair_escape_is_its_character() -> None:
    result = validate_record_data(b64(RIDE_TEXT + '"\\ud83d\\ude95"}'), ARRIVAL)
    assert isinstance(result, ValidRide) and result.ride_id == "\U0001f695"


def test_string_ride_id_and_integral_float_location_are_accepted() -> None:
    payload = ride(DOLocationID=205.0, trip_distance=0)
    payload["ride_id"] = "abc-1"
    result = validate_ride(payload, ARRIVAL)
    assert isinstance(result, ValidRide)
    assert (result.ride_id, result.do_location_id, result.trip_distance) == ("abc-1", 205, 0.0)


BAD_RIDES: list[tuple[str, Any, FieldError]] = [
    ("not an object", [1, 2], FieldError("data", "must be a JSON object, got array")),
    ("no ride", {"ride_id": 1}, FieldError("ride", "missing")),
    ("ride not object", {"ride_id": 1, "ride": "x"}, FieldError("ride", "must be a JSON object, got string")),
    ("no ride_id", {"ride": ride()["ride"]}, FieldError("ride_id", "missing")),
    ("null ride_id", {**ride(), "ride_id": None}, FieldError("ride_id", "must not be null")),
    (
        "bool ride_id",
        {**ride(), "ride_id": True},
        FieldError("ride_id", "must be an integer or a string, got bool"),
    ),
    (
        "float ride_id",
        {**ride(), "ride_id": 1.5},
        FieldError("ride_id", "must be an integer or a string, got float"),
    ),
    ("empty ride_id", {**ride(), "ride_id": " "}, FieldError("ride_id", "must not be empty")),
    (
        "long ride_id",
        {**ride(), "ride_id": "x" * (MAX_RIDE_ID_LENGTH + 1)},
        FieldError("ride_id", "longer than 64 characters (65)"),
    ),
    (
        "missing PU",
        {"ride_id": 1, "ride": {"DOLocationID": 1, "trip_distance": 1}},
        FieldError("PULocationID", "missing"),
    ),
    ("null DO", ride(DOLocationID=None), FieldError("DOLocationID", "must not be null")),
    ("bool PU", ride(PULocationID=True), FieldError("PULocationID", "must be an integer, got bool")),
    ("string PU", ride(PULocationID="130"), FieldError("PULocationID", "must be an integer, got string")),
    ("fractional DO", ride(DOLocationID=205.5), FieldError("DOLocationID", "must be an integer, got 205.5")),
    (
        "PU not a zone",
        ride(PULocationID=999),
        FieldError("PULocationID", "999 is not in the taxi-zone table"),
    ),
    ("PU zero", ride(PULocationID=0), FieldError("PULocationID", "0 is not in the taxi-zone table")),
    ("bool distance", ride(trip_distance=False), FieldError("trip_distance", "must be a number, got bool")),
    (
        "string distance",
        ride(trip_distance="3.6"),
        FieldError("trip_distance", "must be a number, got string"),
    ),
    ("nan distance", ride(trip_distance=math.nan), FieldError("trip_distance", "must be finite, got nan")),
    ("inf distance", ride(trip_distance=math.inf), FieldError("trip_distance", "must be finite, got inf")),
    (
        "negative distance",
        ride(trip_distance=-0.1),
        FieldError("trip_distance", "must not be negative, got -0.1"),
    ),
    (
        "absurd distance",
        ride(trip_distance=MAX_TRIP_DISTANCE_MILES + 1),
        FieldError("trip_distance", "must be at most 100 miles, got 101.0"),
    ),
    ("null distance", ride(trip_distance=None), FieldError("trip_distance", "must not be null")),
    (
        "bad datetime",
        ride(pickup_datetime="yesterday"),
        FieldError("pickup_datetime", "not an ISO 8601 datetime: 'yesterday'"),
    ),
    (
        "numeric datetime",
        ride(pickup_datetime=1678113000),
        FieldError("pickup_datetime", "must be an ISO 8601 string, got int"),
    ),
]


@pytest.mark.parametrize(("case", "payload", "expected"), BAD_RIDES, ids=[c[0] for c in BAD_RIDES])
def test_bad_rides_name_the_field_and_reason(case: str, payload: Any, expected: FieldError) -> None:
    assert validate_ride(payload, ARRIVAL) == [expected]


def test_all_problems_are_reported_at_once() -> None:
    payload = {"ride_id": True, "ride": {"PULocationID": 999, "trip_distance": -1}}
    fields = [error.field for error in validate_ride(payload, ARRIVAL)]  # type: ignore[union-attr]
    assert fields == ["ride_id", "PULocationID", "DOLocationID", "trip_distance"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("not base64!!", "invalid base64"),
        (b64(b"\xff\xfe\x00"), "not UTF-8 text"),
        (b64("{not json"), "not valid JSON"),
        (b64('"a string"'), "must be a JSON object, got string"),
        (b64("null"), "must be a JSON object, got null"),
    ],
)
def test_undecodable_record_data(data: str, reason: str) -> None:
    assert validate_record_data(data, ARRIVAL) == [FieldError("data", reason)]


def test_nan_literal_in_json_is_rejected() -> None:
    data = b64('{"ride_id": 1, "ride": {"PULocationID": 1, "DOLocationID": 2, "trip_distance": NaN}}')
    assert validate_record_data(data, ARRIVAL) == [FieldError("trip_distance", "must be finite, got nan")]


def test_valid_record_data() -> None:
    result = validate_record_data(b64(json.dumps(ride())), ARRIVAL)
    assert isinstance(result, ValidRide) and result.ride_id == 256


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_validation_never_raises(payload: Any) -> None:
    for candidate in (payload, {"ride_id": 1, "ride": payload}, {"ride_id": payload, "ride": payload}):
        result = validate_ride(candidate, ARRIVAL)
        assert isinstance(result, ValidRide) or (result and all(isinstance(e, FieldError) for e in result))


@given(st.binary(max_size=64))
def test_any_bytes_never_raise(data: bytes) -> None:
    result = validate_record_data(base64.b64encode(data).decode(), ARRIVAL)
    assert isinstance(result, ValidRide | list)


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**70), max_value=10**70),
    st.sampled_from([0, 1, 130, 205, 263, 264, 265, 10**63 - 1, 10**63, -(10**63) + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 3.66, 100.0, 100.0000001, 130.0]),
    st.text(max_size=70),
    st.sampled_from(
        ["2023-03-06T14:30:00", "2023-03-06T19:30:00Z", "2023-03-06", "x", "9999-12-31T23:59:59"]
    ),
)


@given(
    ride_id=_VALUES,
    pu=_VALUES,
    do=_VALUES,
    distance=_VALUES,
    pickup=_VALUES,
    drop=st.sets(
        st.sampled_from(["ride_id", "PULocationID", "DOLocationID", "trip_distance", "pickup_datetime"])
    ),
)
def test_fast_path_accepts_only_what_the_full_checks_accept_and_builds_the_same_ride(
    ride_id: Any, pu: Any, do: Any, distance: Any, pickup: Any, drop: set[str]
) -> None:
    body = {"PULocationID": pu, "DOLocationID": do, "trip_distance": distance, "pickup_datetime": pickup}
    payload: dict[str, Any] = {"ride": {k: v for k, v in body.items() if k not in drop}, "ride_id": ride_id}
    if "ride_id" in drop:
        del payload["ride_id"]
    fast = _fast_valid_ride(payload, ARRIVAL)
    if fast is not None:
        assert fast == _checked_ride(payload, ARRIVAL)
        assert type(fast.trip_distance) is float


def test_fast_path_takes_the_common_rides() -> None:
    for payload in (ride(), ride(pickup_datetime="2023-03-06T14:30:00"), ride(trip_distance=2)):
        fast = _fast_valid_ride(payload, ARRIVAL)
        assert fast is not None and fast == _checked_ride(payload, ARRIVAL)


_PU = '{"ride": {"PULocationID": 130, "DOLocationID": 205, '


@pytest.mark.parametrize(
    "text",
    [
        _PU + '"trip_distance": 3.66}, "ride_id": 123456789012345678901234567890}',
        _PU + '"trip_distance": 1e400}, "ride_id": 1}',
        _PU + '"trip_distance": Infinity}, "ride_id": 1}',
        _PU + '"trip_distance": 2}, "ride_id": "\\ud800"}',
        _PU + '"trip_distance": 2, "trip_distance": 3.5}, "ride_id": 7}',
        '{"ride": {"PULocationID": 18446744073709551616, "DOLocationID": 5, "trip_distance": 2}, "ride_id": 7}',  # noqa: E501
        "\ufeff" + _PU + '"trip_distance": 2}, "ride_id": 7}',
        _PU + '"trip_distance": 2}, "ride_id": 7, "x": ' + "[" * 300 + "]" * 300 + "}",
    ],
)
def test_record_data_decodes_as_json_loads_does(text: str) -> None:
    """The orjson fast path gives what json.loads + the full checks give (big ints, NaN, surrogates...)."""
    try:
        expected: Any = validate_ride(json.loads(text), ARRIVAL)
    except ValueError:
        expected = [FieldError("data", "not valid JSON")]
    assert validate_record_data(b64(text.encode("utf-8", "surrogatepass")), ARRIVAL) == expected
