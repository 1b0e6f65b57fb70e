"""The service's view of the outside world: small protocols, boto3 behind them (adapters.py),
in-memory fakes for tests and the benchmark (fakes.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import numpy as np


class Predictor(Protocol):
    """What a loaded serving bundle offers (trip_core.bundle.ServingBundle)."""

    @property
    def model_name(self) -> str: ...

    def predict(self, features: np.ndarray) -> np.ndarray: ...


class BundleLoader(Protocol):
    def __call__(self, data: bytes, expected_sha256: str | None = None) -> Predictor: ...


class ModelSource(Protocol):
    """Reads objects of the models bucket (pointers and bundles); raises BundleError for an object larger
    than any bundle may be (trip_core.contracts.MAX_BUNDLE_BYTES) without reading it."""

    def read(self, key: str) -> bytes: ...


class PutEntry(NamedTuple):
    partition_key: str
    data: bytes


class PredictionSink(Protocol):
    """One PutRecords call (≤ 500 entries): per entry None when accepted, else an error code.

    Raising means the whole call failed (every entry is retried)."""

    def put_records(self, entries: Sequence[PutEntry]) -> Sequence[str | None]: ...


class BlobStore(Protocol):
    """Writes one object (the capture bucket and the rejected bucket each have one)."""

    def put(self, key: str, body: bytes) -> None: ...


# The two stores play different roles but have the same shape.
CaptureStore = BlobStore
RejectedStore = BlobStore
