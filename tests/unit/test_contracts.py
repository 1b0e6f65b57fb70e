"""trip_core.contracts.RideRequest: the typed input ride and its wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from trip_core.contracts import FEATURE_INPUTS, TLC_PICKUP_COLUMN, RideRequest
from trip_core.features import MONITORED_FEATURES
from trip_core.rides import ValidRide, validate_ride

EVENTS = Path(__file__).resolve().parents[1] / "events"


def test_payload_is_the_wire_format_of_the_direct_event() -> None:
    expected = json.loads((EVENTS / "direct_ride.json").read_text())
    assert RideRequest(256, 130, 205, 3.66).to_payload() == expected


def test_pickup_is_sent_as_iso_seconds() -> None:
    payload = RideRequest("ride-257", 43, 151, 1.01, datetime(2023, 3, 6, 8, 15)).to_payload()
    assert payload == {
        "ride": {
            "PULocationID": 43,
            "DOLocationID": 151,
            "trip_distance": 1.01,
            "pickup_datetime": "2023-03-06T08:15:00",
        },
        "ride_id": "ride-257",
    }


def test_from_tlc_row_round_trips_through_validation() -> None:
    frame = pd.DataFrame(
        {
            "PULocationID": [130],
            "DOLocationID": [205],
            "trip_distance": [3.66],
            TLC_PICKUP_COLUMN: [pd.Timestamp("2023-03-06 14:30:00")],
        }
    )
    request = RideRequest.from_row(7, next(frame.itertuples(index=False)))
    result = validate_ride(request.to_payload(), datetime(2023, 3, 7, tzinfo=UTC))
    assert result == ValidRide(7, 130, 205, 3.66, datetime(2023, 3, 6, 14, 30), True)


def test_feature_inputs_name_exactly_the_monitored_features() -> None:
    assert set(FEATURE_INPUTS) == set(MONITORED_FEATURES)
