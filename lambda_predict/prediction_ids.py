"""The ids the service gives its predictions (trip_core.contracts.prediction_id; docs/architecture.md,
"Prediction ids"): an actual names one, so only a client that was given a prediction can label it.

A rides-stream record's id is a keyed hash (HMAC-SHA256 with the stack's secret) of its shard id and
sequence number: Kinesis delivers a retried batch with the same shard and sequence numbers, so a ride
keeps the id its client was first given, and without the key no one can compute another rider's id from
what is public about a record. A direct invoke has no record to key on: its id is random.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime

from trip_core.contracts import PREDICTION_ID_TOKEN_HEX, prediction_id

# Shorter keys than this would be guessable; the stack's secret is generated well above it.
MIN_KEY_BYTES = 32
MAX_CACHED_HOURS = 1024


class PredictionIds:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the prediction id key must have at least {MIN_KEY_BYTES} bytes, got {len(key)}"
            )
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)  # copied per record: the key is hashed once
        self._prefixes: dict[datetime, str] = {}  # a batch's rides share a few pickup hours

    def of_record(self, pickup_hour: datetime, shard_id: str, sequence_number: str) -> str:
        """The id of a rides-stream record's prediction: the same on every delivery of that record."""
        mac = self._keyed.copy()
        mac.update(f"{shard_id}/{sequence_number}".encode())
        prefix = self._prefixes.get(pickup_hour)
        if prefix is None:
            if len(self._prefixes) >= MAX_CACHED_HOURS:  # pickups may name any past hour: stay bounded
                self._prefixes.clear()
            prefix = self._prefixes[pickup_hour] = prediction_id(pickup_hour, "")
        return prefix + mac.hexdigest()[:PREDICTION_ID_TOKEN_HEX]

    @staticmethod
    def of_direct(pickup_hour: datetime) -> str:
        """A direct invoke's id: random (a uuid4 has 122 random bits)."""
        return prediction_id(pickup_hour, uuid.uuid4().hex)
