"""The actuals service's view of the outside world (boto3 behind them: adapters.py; in-memory doubles:
tests/doubles/)."""

from __future__ import annotations

from typing import Protocol

from trip_core.event_window import BlobSource


class BlobStore(Protocol):
    """Writes one object."""

    def put(self, key: str, body: bytes) -> None: ...


class CaptureBucket(BlobSource, BlobStore, Protocol):
    """The capture bucket: captures/ read (the prediction ids), actuals/ written."""
