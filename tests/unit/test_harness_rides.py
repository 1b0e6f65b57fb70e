"""The scenarios send a month's rides as today's traffic: a valid pickup becomes the send time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from infra.harness.rides import OK_RIDE, Ride, bad_record, go_live, ride_payload

SENT = datetime(2026, 7, 1, 16, 30, 5, tzinfo=UTC)  # 12:30:05 in New York (EDT)


def test_a_valid_pickup_becomes_the_send_time_in_new_york() -> None:
    payload = ride_payload(1, 130, 205, 3.0, datetime(2023, 3, 6, 8, 15))
    assert go_live(payload, SENT)
    assert payload["ride"]["pickup_datetime"] == "2026-07-01T12:30:05"


def test_missing_or_invalid_pickups_and_bad_records_stay_as_they_are() -> None:
    without = ride_payload(2, 130, 205, 3.0)
    invalid: dict[str, Any] = {"ride": {**OK_RIDE, "pickup_datetime": "not a date"}, "ride_id": 3}
    assert not go_live(without, SENT) and not go_live(invalid, SENT) and not go_live([1, 2], SENT)
    assert "pickup_datetime" not in without["ride"] and invalid["ride"]["pickup_datetime"] == "not a date"
    bad = bad_record(4, {"ride": dict(OK_RIDE)})
    before = bad.payload
    bad.go_live(SENT)
    assert bad.payload == before
    good = Ride(
        5, json.dumps(ride_payload(5, 130, 205, 3.0, datetime(2023, 3, 6, 8, 15))).encode(), good=True
    )
    good.go_live(SENT)
    assert good.fields()["pickup_datetime"] == "2026-07-01T12:30:05"
