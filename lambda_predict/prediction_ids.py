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


class PredictionIds:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the prediction id key must have at least {MIN_KEY_BYTES} bytes, got {len(key)}"
            )
        self._key = key

    def of_record(self, pickup_hour: datetime, shard_id: str, sequence_number: str) -> str:
        """The id of a rides-stream record's prediction: the same on every delivery of that record."""
        message = f"{shard_id}/{sequence_number}".encode()
        token = hmac.new(self._key, message, hashlib.sha256).hexdigest()[:PREDICTION_ID_TOKEN_HEX]
        return prediction_id(pickup_hour, token)

    @staticmethod
    def of_direct(pickup_hour: datetime) -> str:
        """A direct invoke's id: random (a uuid4 has 122 random bits)."""
        return prediction_id(pickup_hour, uuid.uuid4().hex)
