"""Validation of one raw ride: the rides-stream record data and the direct-invoke payload.

Input format (docs/architecture.md, "Input ride"):
`{"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66,
"pickup_datetime": "2023-03-06T14:30:00"}, "ride_id": 256}` with `pickup_datetime` optional.

Validation never raises on bad input: it returns a `ValidRide` or the list of everything that is
wrong, as `FieldError(field, reason)` pairs, so a rejected record can be stored with its reasons.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from trip_core import jsontext
from trip_core.contracts import (
    DEFAULT_MAX_PICKUP_AGE,
    MAX_PICKUP_LEAD,
    MAX_TRIP_DISTANCE_MILES,
    MIN_TRIP_DISTANCE_MILES,
)
from trip_core.features import compute_features
from trip_core.validity import distance_in_bounds, is_known_zone

NEW_YORK = ZoneInfo("America/New_York")
MAX_RIDE_ID_LENGTH = 64
MAX_DATETIME_LENGTH = 64
MAX_REASON_VALUE_CHARS = 40  # a value quoted in a reason is cut to this (reasons are stored and logged)
# Records up to this size are parsed by orjson first (5x faster than json.loads). At most 256 levels of
# nesting fit in it, so orjson's depth limit (1024) and Python's recursion limit never decide there.
_ORJSON_MAX_BYTES = 512

# Field names used for errors that are not about one ride field.
RECORD_FIELD = "data"  # the record as a whole: base64, UTF-8, JSON, top-level object


class FieldError(NamedTuple):
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class ValidRide:
    ride_id: int | str
    pu_location_id: int
    do_location_id: int
    trip_distance: float
    pickup_datetime: datetime  # naive, New York local time (as in the TLC files)
    pickup_from_payload: bool  # False when the arrival/invoke time was used instead


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return type(value).__name__


def excerpt(value: object) -> str:
    """`repr`-like text of a value for a reason, at most MAX_REASON_VALUE_CHARS characters."""
    try:
        text = str(value) if isinstance(value, int) else repr(value)
    except ValueError:  # an int over Python's 4300-digit str() limit
        return f"an integer of {value.bit_length() if isinstance(value, int) else '?'} bits"
    if len(text) <= MAX_REASON_VALUE_CHARS:
        return text
    return f"{text[: MAX_REASON_VALUE_CHARS - 16]}...({len(text)} chars)"


def to_new_york_naive(moment: datetime) -> datetime:
    """New York local wall-clock time without tzinfo; a naive input is taken as New York local."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(NEW_YORK).replace(tzinfo=None)


def new_york_to_utc(local: np.ndarray) -> np.ndarray:
    """New York local wall-clock times (naive datetime64) -> the same moments in UTC (naive
    datetime64[s]); NaT stays NaT. A time in the repeated autumn hour is taken at its first occurrence
    (fold 0); one in the skipped spring hour keeps the offset before the change. The offset is looked up
    once per distinct local hour: rides of a batch or a window share a few hours."""
    seconds = np.asarray(local, dtype="datetime64[s]")
    known = ~np.isnat(seconds)
    hours, inverse = np.unique(seconds[known].astype("datetime64[h]"), return_inverse=True)
    offsets = np.array(
        [_utc_offset_seconds(hour.astype("datetime64[s]").item()) for hour in hours], dtype=np.int64
    )
    out = np.full(seconds.shape, np.datetime64("NaT"), dtype="datetime64[s]")
    out[known] = seconds[known] - offsets[inverse].astype("timedelta64[s]")
    return out


_UNIX_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


def _epoch_seconds(moment: datetime) -> int:
    """Naive datetime -> seconds since 1970-01-01 of the same wall clock, microseconds dropped
    (what numpy's datetime64[s] conversion gives, without its slow object path)."""
    days = moment.toordinal() - _UNIX_EPOCH_ORDINAL
    return days * 86_400 + moment.hour * 3_600 + moment.minute * 60 + moment.second


def pickup_column(rides: Sequence[ValidRide]) -> np.ndarray:
    """The rides' pickup times, New York local, as datetime64[s]."""
    seconds = np.fromiter(
        (_epoch_seconds(r.pickup_datetime) for r in rides), dtype=np.int64, count=len(rides)
    )
    return seconds.astype("datetime64[s]")


def ride_features(rides: Sequence[ValidRide]) -> np.ndarray:
    """Validated rides -> the one feature definition's matrix: serving's path to compute_features (the
    predict service's batches, batch scoring's JSON lines)."""
    n = len(rides)
    return compute_features(
        np.fromiter((r.pu_location_id for r in rides), dtype=np.int64, count=n),
        np.fromiter((r.do_location_id for r in rides), dtype=np.int64, count=n),
        np.fromiter((r.trip_distance for r in rides), dtype=np.float64, count=n),
        pickup_column(rides),
    )


def _utc_offset_seconds(local: datetime) -> int:
    offset = local.replace(tzinfo=NEW_YORK).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


class UndecodableRecord(ValueError):
    """The record data is not base64 of UTF-8 JSON; `error` says which step failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.error = FieldError(RECORD_FIELD, reason)


def decode_json_bytes(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UndecodableRecord("not UTF-8 text") from None
    try:
        return jsontext.loads(text)
    except ValueError:
        raise UndecodableRecord("not valid JSON") from None


def _check_ride_id(payload: dict[str, Any], errors: list[FieldError]) -> int | str | None:
    if "ride_id" not in payload:
        errors.append(FieldError("ride_id", "missing"))
        return None
    ride_id = payload["ride_id"]
    if ride_id is None:
        errors.append(FieldError("ride_id", "must not be null"))
        return None
    if isinstance(ride_id, bool) or not isinstance(ride_id, int | str):
        errors.append(FieldError("ride_id", f"must be an integer or a string, got {json_type(ride_id)}"))
        return None
    text = ride_id if isinstance(ride_id, str) else str(ride_id)
    if not text.strip():
        errors.append(FieldError("ride_id", "must not be empty"))
        return None
    if len(text) > MAX_RIDE_ID_LENGTH:
        errors.append(FieldError("ride_id", f"longer than {MAX_RIDE_ID_LENGTH} characters ({len(text)})"))
        return None
    surrogate = _lone_surrogate(text)
    if surrogate is not None:
        errors.append(FieldError("ride_id", f"not Unicode text: a lone surrogate {surrogate!r}"))
        return None
    return ride_id


def _lone_surrogate(text: str) -> str | None:
    """The first lone surrogate (a JSON escape such as \\ud800 decodes to one) in `text`, or None. The
    ride id is the predictions stream's partition key, which must be UTF-8: it cannot hold one."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


def _required_number(
    ride: dict[str, Any], name: str, kind: str, errors: list[FieldError]
) -> int | float | None:
    """The field's value if it is present, not null and a JSON number (a bool is not), else None."""
    if name not in ride:
        errors.append(FieldError(name, "missing"))
        return None
    value = ride[name]
    if value is None:
        errors.append(FieldError(name, "must not be null"))
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(FieldError(name, f"must be {kind}, got {json_type(value)}"))
        return None
    return value


def _check_location(ride: dict[str, Any], name: str, errors: list[FieldError]) -> int | None:
    value = _required_number(ride, name, "an integer", errors)
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            errors.append(FieldError(name, f"must be an integer, got {excerpt(value)}"))
            return None
        value = int(value)
    if not is_known_zone(value):
        errors.append(FieldError(name, f"{excerpt(value)} is not in the taxi-zone table"))
        return None
    return value


def _check_distance(ride: dict[str, Any], errors: list[FieldError]) -> float | None:
    name = "trip_distance"
    value = _required_number(ride, name, "a number", errors)
    if value is None:
        return None
    try:
        distance = float(value)
    except OverflowError:  # an int too large for a float
        errors.append(FieldError(name, "must be finite"))
        return None
    if not math.isfinite(distance):
        errors.append(FieldError(name, f"must be finite, got {distance!r}"))
        return None
    if distance_in_bounds(distance):
        return distance
    if distance < MIN_TRIP_DISTANCE_MILES:
        errors.append(FieldError(name, f"must not be negative, got {distance!r}"))
    else:
        errors.append(
            FieldError(name, f"must be at most {MAX_TRIP_DISTANCE_MILES:g} miles, got {distance!r}")
        )
    return None


MAX_PICKUP_LEAD_HOURS = MAX_PICKUP_LEAD / timedelta(hours=1)


def _implausible(pickup: datetime, fallback_local: datetime, max_age: timedelta) -> bool:
    """Both naive New York local: is the pickup outside [arrival - max_age, arrival + MAX_PICKUP_LEAD]?
    Compared on the wall clock (a DST hour is within the bounds); a difference of two datetimes never
    overflows, whatever their years."""
    ahead = pickup - fallback_local
    return ahead > MAX_PICKUP_LEAD or -ahead > max_age


def _pickup_bound_error(local: datetime, fallback_local: datetime, max_age: timedelta, value: str) -> str:
    if local > fallback_local:
        return f"more than {MAX_PICKUP_LEAD_HOURS:g} h after arrival: {excerpt(value)}"
    return f"more than {max_age / timedelta(days=1):g} days before arrival: {excerpt(value)}"


def _check_pickup(
    ride: dict[str, Any], fallback_time: datetime, max_age: timedelta, errors: list[FieldError]
) -> datetime | None:
    name = "pickup_datetime"
    value = ride.get(name)
    if value is None:  # optional: absent or null -> the caller's fallback time
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be an ISO 8601 string, got {json_type(value)}"))
        return None
    if len(value) > MAX_DATETIME_LENGTH:
        errors.append(FieldError(name, f"longer than {MAX_DATETIME_LENGTH} characters"))
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.append(FieldError(name, f"not an ISO 8601 datetime: {value!r}"))
        return None
    try:
        local = to_new_york_naive(moment)
    except (OverflowError, ValueError):
        errors.append(FieldError(name, f"out of range: {value!r}"))
        return None
    fallback_local = to_new_york_naive(fallback_time)
    if _implausible(local, fallback_local, max_age):
        errors.append(FieldError(name, _pickup_bound_error(local, fallback_local, max_age, value)))
        return None
    return local


def _fast_valid_ride(
    payload: Any, fallback_time: datetime, max_age: timedelta = DEFAULT_MAX_PICKUP_AGE
) -> ValidRide | None:
    """The common well-formed ride (int ids, float/int distance, no or a plain ISO pickup) accepted
    with exact-type checks only; None sends the payload to the full checks, which name every problem.
    Applies the same rules (trip_core.validity) and builds the same ValidRide as the full checks."""
    if type(payload) is not dict:
        return None
    ride = payload.get("ride")
    ride_id = payload.get("ride_id")
    if type(ride) is not dict or type(ride_id) is not int or not -_ID_BOUND < ride_id < _ID_BOUND:
        return None
    pu, do = ride.get("PULocationID"), ride.get("DOLocationID")
    if type(pu) is not int or type(do) is not int or not is_known_zone(pu) or not is_known_zone(do):
        return None
    distance = _fast_distance(ride.get("trip_distance"))
    if distance is None:
        return None
    pickup = ride.get("pickup_datetime")
    if pickup is None:
        return ValidRide(ride_id, pu, do, distance, to_new_york_naive(fallback_time), False)
    moment = _fast_pickup(pickup)
    if moment is None or _implausible(moment, to_new_york_naive(fallback_time), max_age):
        return None
    return ValidRide(ride_id, pu, do, distance, moment, True)


def _fast_distance(value: Any) -> float | None:
    """An exact int or float in bounds, as a float; None for anything the full checks must judge."""
    if type(value) is float or type(value) is int:
        return float(value) if distance_in_bounds(value) else None
    return None


def _fast_pickup(value: Any) -> datetime | None:
    """A plain (naive) ISO string's datetime; None for anything the full checks must judge or convert."""
    if type(value) is not str or len(value) > MAX_DATETIME_LENGTH:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is None else None


_ID_BOUND = 10 ** (MAX_RIDE_ID_LENGTH - 1)  # |ride_id| below it: at most MAX_RIDE_ID_LENGTH characters


def validate_ride(
    payload: Any, fallback_time: datetime, max_age: timedelta = DEFAULT_MAX_PICKUP_AGE
) -> ValidRide | list[FieldError]:
    """Check one decoded ride payload; `fallback_time` (arrival or invoke time) when no pickup is given,
    and a given pickup must lie in [fallback_time - max_age, fallback_time + MAX_PICKUP_LEAD].

    `fallback_time` may be aware (converted to New York local) or naive New York local time.
    """
    fast = _fast_valid_ride(payload, fallback_time, max_age)
    return _checked_ride(payload, fallback_time, max_age) if fast is None else fast


def _checked_ride(
    payload: Any, fallback_time: datetime, max_age: timedelta = DEFAULT_MAX_PICKUP_AGE
) -> ValidRide | list[FieldError]:
    """Every check, every problem named (the reference `_fast_valid_ride` must agree with)."""
    if not isinstance(payload, dict):
        return [FieldError(RECORD_FIELD, f"must be a JSON object, got {json_type(payload)}")]
    errors: list[FieldError] = []
    ride_id = _check_ride_id(payload, errors)
    if "ride" not in payload:
        errors.append(FieldError("ride", "missing"))
        return errors
    ride = payload["ride"]
    if not isinstance(ride, dict):
        errors.append(FieldError("ride", f"must be a JSON object, got {json_type(ride)}"))
        return errors
    pu = _check_location(ride, "PULocationID", errors)
    do = _check_location(ride, "DOLocationID", errors)
    distance = _check_distance(ride, errors)
    pickup = _check_pickup(ride, fallback_time, max_age, errors)
    if errors:
        return errors
    assert ride_id is not None and pu is not None and do is not None and distance is not None
    from_payload = pickup is not None
    if pickup is None:
        pickup = to_new_york_naive(fallback_time)
    return ValidRide(ride_id, pu, do, distance, pickup, from_payload)


def validate_record_data(
    data_base64: str, fallback_time: datetime, max_age: timedelta = DEFAULT_MAX_PICKUP_AGE
) -> ValidRide | list[FieldError]:
    """One Kinesis record's base64 data -> a validated ride or the reasons it is rejected."""
    try:
        raw = binascii.a2b_base64(data_base64, strict_mode=True)  # = base64.b64decode(validate=True)
    except (binascii.Error, ValueError, TypeError):
        return [FieldError(RECORD_FIELD, "invalid base64")]
    return validate_json_bytes(raw, fallback_time, max_age)


def validate_json_bytes(
    raw: bytes, fallback_time: datetime, max_age: timedelta = DEFAULT_MAX_PICKUP_AGE
) -> ValidRide | list[FieldError]:
    """One ride's JSON bytes (a rides-stream record's data, a line of a JSON lines file) -> a validated
    ride or the reasons it is rejected."""
    if len(raw) <= _ORJSON_MAX_BYTES:
        # orjson differs from json.loads on some inputs (an integer beyond 64 bits becomes a float;
        # NaN/Infinity, lone surrogates and 1e400 are errors), so its value is used only when the fast
        # checks accept it: ids and distances that are ints in 64 bits, finite floats and strings
        # decode identically; anything else is decoded again by json.loads and fully checked.
        try:
            fast = _fast_valid_ride(orjson.loads(raw), fallback_time, max_age)
        except orjson.JSONDecodeError:
            fast = None
        if fast is not None:
            return fast
    try:
        payload = decode_json_bytes(raw)
    except UndecodableRecord as exc:
        return [exc.error]
    return validate_ride(payload, fallback_time, max_age)
