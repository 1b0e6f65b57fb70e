"""`python -m training.evaluation_set --month FILE [--models-bucket B]`: publish the trusted yardstick.

Every challenger is also scored on a month of TLC trip records (the data source training reads), which
neither the serving path nor any client can write: features, target and pickup of the month as an npz
at `evaluation/<YYYY-MM>.npz` in the models bucket, and `evaluation/current.json` naming it with its
sha256 (trip_core.contracts). numpy only to read (the retrain function has no pandas or pyarrow);
building it from a parquet month needs training.data.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from training.publish import ObjectStore
from trip_core.contracts import EVALUATION_POINTER_KEY, evaluation_key


class Readable(Protocol):
    def get(self, key: str) -> bytes | None: ...


class EvaluationSetError(RuntimeError):
    """The evaluation set cannot be used: missing, unreadable, or not what its pointer names."""


@dataclass(frozen=True)
class EvaluationSet:
    month: str
    key: str
    sha256: str
    features: np.ndarray
    target: np.ndarray
    pickup: np.ndarray  # datetime64[s], New York local

    def lineage(self) -> dict[str, str | int]:
        """What the bundle meta, the MLflow run and the audit record keep of it."""
        return {"month": self.month, "key": self.key, "sha256": self.sha256, "rows": len(self.target)}


def encode(features: np.ndarray, target: np.ndarray, pickup: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        features=np.asarray(features, np.float64),
        target=np.asarray(target, np.float64),
        pickup=np.asarray(pickup).astype("datetime64[s]").astype(np.int64),
    )
    return buffer.getvalue()


def decode(month: str, key: str, body: bytes) -> EvaluationSet:
    try:
        with np.load(io.BytesIO(body), allow_pickle=False) as arrays:
            features, target = arrays["features"], arrays["target"]
            pickup = arrays["pickup"].astype("datetime64[s]")
    except (OSError, ValueError, KeyError) as exc:
        raise EvaluationSetError(f"{key} is not a readable evaluation set ({exc})") from exc
    if features.ndim != 2 or not len(target) == len(features) == len(pickup) or not len(target):
        raise EvaluationSetError(f"{key}: arrays of inconsistent or empty shape")
    return EvaluationSet(month, key, hashlib.sha256(body).hexdigest(), features, target, pickup)


def from_month(uri: str) -> tuple[str, bytes]:
    """(YYYY-MM, npz bytes) of a TLC month file, filtered as training filters it."""
    from training import data

    month = data.load_month(uri)
    name = data.month_from_name(uri) or str(month.frame[data.PICKUP].min())[:7]
    frame = month.frame.sort_values(data.PICKUP, kind="stable")
    body = encode(data.frame_features(frame), frame["duration"].to_numpy(), frame[data.PICKUP].to_numpy())
    return name, body


def publish(store: ObjectStore, month: str, body: bytes) -> EvaluationSet:
    """The set, then the pointer naming it (a reader never sees a pointer to a set not yet written)."""
    published = decode(month, evaluation_key(month), body)
    store.put(published.key, body, "application/octet-stream")
    pointer = {
        "month": month,
        "key": published.key,
        "sha256": published.sha256,
        "rows": len(published.target),
    }
    store.put(EVALUATION_POINTER_KEY, json.dumps(pointer, sort_keys=True).encode(), "application/json")
    return published


def load(store: Readable) -> EvaluationSet:
    """The current evaluation set, checked against its pointer's sha256; EvaluationSetError otherwise."""
    raw = store.get(EVALUATION_POINTER_KEY)
    if raw is None:
        raise EvaluationSetError(f"no evaluation set published ({EVALUATION_POINTER_KEY} missing)")
    try:
        pointer: dict[str, Any] = json.loads(raw)
        month, key, sha256 = str(pointer["month"]), str(pointer["key"]), str(pointer["sha256"])
    except (ValueError, KeyError, TypeError) as exc:
        raise EvaluationSetError(f"{EVALUATION_POINTER_KEY} is not a valid pointer ({exc})") from exc
    body = store.get(key)
    if body is None:
        raise EvaluationSetError(f"{key}, named by {EVALUATION_POINTER_KEY}, is missing")
    actual = hashlib.sha256(body).hexdigest()
    if actual != sha256:
        raise EvaluationSetError(f"{key}: sha256 {actual} is not the pointer's {sha256}")
    return decode(month, key, body)


def main(argv: list[str] | None = None) -> dict[str, str | int]:
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluation_set", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--month", required=True, metavar="FILE", help="the latest TLC month (path or s3://)")
    parser.add_argument(
        "--models-bucket", default=os.environ.get("MODELS_BUCKET"), help="default: $MODELS_BUCKET"
    )
    args = parser.parse_args(argv)
    if not args.models_bucket:
        parser.error("no models bucket (--models-bucket or MODELS_BUCKET)")
    from training.publish import S3ObjectStore

    lineage = publish(S3ObjectStore(args.models_bucket), *from_month(args.month)).lineage()
    print(json.dumps(lineage))
    return lineage


if __name__ == "__main__":
    main()
