"""In-memory implementations of the ports, for unit tests and the benchmark (no AWS)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lambda_predict.ports import PutEntry
from lambda_predict.prediction_ids import PredictionIds
from trip_core.bundle import dump_bundle
from trip_core.features import FEATURE_NAMES
from trip_core.pointer import ModelPointer


class Unavailable(ConnectionError):
    """What a fake raises while it is switched off (stands in for a boto3 ClientError/EndpointError)."""


class InMemoryObjects:
    """A bucket: ModelSource and BlobStore in one; `down = True` makes every call fail, `refused` every
    put of a key containing it."""

    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects: dict[str, bytes] = dict(objects or {})
        self.down = False
        self.refused: str | None = None
        self.reads: list[str] = []
        self.puts: list[str] = []

    def read(self, key: str) -> bytes:
        if self.down:
            raise Unavailable("bucket unavailable")
        self.reads.append(key)
        try:
            return self.objects[key]
        except KeyError:
            raise KeyError(f"NoSuchKey: {key}") from None

    def put(self, key: str, body: bytes) -> None:
        if self.down or (self.refused is not None and self.refused in key):
            raise Unavailable("bucket unavailable")
        self.puts.append(key)
        self.objects[key] = body


class InMemoryStream:
    """PutRecords: `fail_next` lists, call by call, the positions to fail (ProvisionedThroughputExceeded)."""

    def __init__(self) -> None:
        self.records: list[PutEntry] = []
        self.calls: list[int] = []
        self.fail_next: list[set[int]] = []
        self.down = False

    def put_records(self, entries: Sequence[PutEntry]) -> list[str | None]:
        if len(entries) > 500:
            raise ValueError("PutRecords takes at most 500 records")
        self.calls.append(len(entries))
        if self.down:
            raise Unavailable("stream unavailable")
        failing = self.fail_next.pop(0) if self.fail_next else set()
        results: list[str | None] = []
        for i, entry in enumerate(entries):
            if i in failing:
                results.append("ProvisionedThroughputExceededException")
            else:
                self.records.append(entry)
                results.append(None)
        return results


def tiny_bundle(model_name: str = "trip-duration", minutes_per_mile: float = 3.0, base: float = 5.0) -> bytes:
    """A real serving bundle (trip_core.bundle format) with one stump on trip_distance:
    base + (minutes_per_mile if distance > 2 else 0). No scikit-learn needed."""
    return dump_bundle({"model_name": model_name}, tiny_arrays(minutes_per_mile, base))


def broken_bundle(**arrays: np.ndarray) -> bytes:
    """tiny_bundle with some of its arrays replaced: a bundle broken in one known way."""
    return dump_bundle({"model_name": "trip-duration"}, {**tiny_arrays(), **arrays})


def tiny_arrays(minutes_per_mile: float = 3.0, base: float = 5.0) -> dict[str, np.ndarray]:
    """tiny_bundle's arrays."""
    distance = FEATURE_NAMES.index("trip_distance")
    return {
        "te_columns": np.array([], dtype=np.int64),
        "te_offsets": np.array([0], dtype=np.int64),
        "te_categories": np.array([], dtype=np.float64),
        "te_values": np.array([], dtype=np.float64),
        "te_default": np.array([], dtype=np.float64),
        "passthrough_columns": np.arange(len(FEATURE_NAMES), dtype=np.int64),
        "feature": np.array([distance, 0, 0], dtype=np.int32),
        "threshold": np.array([2.0, 0.0, 0.0]),
        "missing_left": np.array([True, False, False]),
        "left": np.array([1, 1, 2], dtype=np.int32),
        "right": np.array([2, 1, 2], dtype=np.int32),
        "value": np.array([0.0, 0.0, minutes_per_mile]),
        "roots": np.array([0], dtype=np.int32),
        "baseline": np.array(base),
        "depth": np.array(1, dtype=np.int64),
    }


def synthetic_bundle(n_trees: int = 300, depth: int = 8, seed: int = 0) -> bytes:
    """A bundle of realistic size (full random trees over all features), for the benchmark."""
    rng = np.random.default_rng(seed)
    per_tree = 2 ** (depth + 1) - 1
    internal = 2**depth - 1
    feature, threshold, left, right, value, roots = [], [], [], [], [], []
    for t in range(n_trees):
        offset = t * per_tree
        own = np.arange(per_tree) + offset
        is_leaf = np.arange(per_tree) >= internal
        feature.append(np.where(is_leaf, 0, rng.integers(0, len(FEATURE_NAMES), per_tree)))
        threshold.append(np.where(is_leaf, 0.0, rng.uniform(0, 100, per_tree)))
        children = 2 * np.arange(per_tree) + 1 + offset
        left.append(np.where(is_leaf, own, children))
        right.append(np.where(is_leaf, own, children + 1))
        value.append(np.where(is_leaf, rng.normal(0, 0.1, per_tree), 0.0))
        roots.append(offset)
    arrays: dict[str, np.ndarray] = {
        "te_columns": np.array([], dtype=np.int64),
        "te_offsets": np.array([0], dtype=np.int64),
        "te_categories": np.array([], dtype=np.float64),
        "te_values": np.array([], dtype=np.float64),
        "te_default": np.array([], dtype=np.float64),
        "passthrough_columns": np.arange(len(FEATURE_NAMES), dtype=np.int64),
        "feature": np.concatenate(feature).astype(np.int32),
        "threshold": np.concatenate(threshold),
        "missing_left": np.zeros(n_trees * per_tree, dtype=bool),
        "left": np.concatenate(left).astype(np.int32),
        "right": np.concatenate(right).astype(np.int32),
        "value": np.concatenate(value),
        "roots": np.array(roots, dtype=np.int32),
        "baseline": np.array(15.0),
        "depth": np.array(depth, dtype=np.int64),
    }
    return dump_bundle({"model_name": "trip-duration"}, arrays)


def publish(
    bucket: InMemoryObjects | None,
    version: str,
    bundle: bytes,
    live: bool = True,
    model_name: str = "trip-duration",
) -> ModelPointer:
    """Put a bundle and its pointers in a models bucket, the way training publishes a version."""
    import hashlib

    pointer = ModelPointer(
        model_name=model_name,
        version=version,
        bundle_key=f"models/{model_name}/{version}/bundle.npz",
        bundle_sha256=hashlib.sha256(bundle).hexdigest(),
        profile_key=f"models/{model_name}/{version}/reference_profile.json",
        validation_rmse=5.0,
        validation_mae=3.0,
        run_id=f"run-{version}",
        published_at="2023-03-06T00:00:00Z",
    )
    if bucket is not None:
        bucket.objects[pointer.bundle_key] = bundle
        bucket.objects[f"serving/versions/{version}.json"] = pointer.to_json().encode()
        if live:
            bucket.objects["serving/live.json"] = pointer.to_json().encode()
    return pointer


TEST_ID_KEY = b"a test key of the prediction ids, 32 bytes or more"


def keyed_ids() -> PredictionIds:
    """The prediction ids of a service keyed as a stack's secret would key them."""
    return PredictionIds(TEST_ID_KEY)
