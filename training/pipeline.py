"""The one training pipeline, shared by `python -m training.train` and the retraining function:
fit -> parity check -> serving bundle -> reference profile -> holdout scores.

The holdout rows are the rows the candidate is validated (and gated) on, so the reference profile is
built from them too, with the bundle's predictions: the monitor compares live traffic with what the
model looked like out of sample, not with the rows it memorised. numpy only (no pandas, no mlflow):
the retraining function's zip imports this module.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from training import metrics, model
from training.export import export_bundle
from training.gate import Candidate
from trip_core.bundle import ServingBundle, load_bundle
from trip_core.calibration import add_day_excesses
from trip_core.contracts import PARITY_TOLERANCE_MINUTES
from trip_core.features import MONITORED_FEATURES, TIME_OF_WEEK_FEATURES, feature_column
from trip_core.profile import build_reference_profile


@dataclass(frozen=True)
class Rows:
    features: np.ndarray
    target: np.ndarray
    # New York local pickup date per row: the profile measures how much days differ (None: it does not)
    pickup_day: np.ndarray | None = None
    weight: np.ndarray | None = None  # per row, in the fit (None: every row weighs 1)

    def __len__(self) -> int:
        return len(self.target)


def encode_rows(rows: Rows) -> bytes:
    """A version's training rows (features, target, pickup day; not the weights), npz."""
    out = io.BytesIO()
    days = (
        np.zeros(0, "datetime64[D]") if rows.pickup_day is None else rows.pickup_day.astype("datetime64[D]")
    )
    np.savez_compressed(out, features=rows.features, target=rows.target, pickup_day=days.astype(np.int64))
    return out.getvalue()


def decode_rows(body: bytes) -> Rows:
    with np.load(io.BytesIO(body)) as data:
        days = data["pickup_day"].astype("datetime64[D]")
        return Rows(data["features"], data["target"], days if len(days) == len(data["target"]) else None)


def mixed(old: Rows, recent: Rows, recent_weight: float) -> Rows:
    """`old` rows (each weighing 1) and `recent` ones (each `recent_weight`) as one training set."""
    days = None
    if old.pickup_day is not None and recent.pickup_day is not None:
        days = np.concatenate(
            [old.pickup_day.astype("datetime64[D]"), recent.pickup_day.astype("datetime64[D]")]
        )
    return Rows(
        np.vstack([old.features, recent.features]),
        np.concatenate([old.target, recent.target]),
        days,
        np.r_[np.ones(len(old)), np.full(len(recent), recent_weight)],
    )


@dataclass(frozen=True)
class TrainedCandidate:
    """A fitted model with its serving bundle, profile and scores on the holdout rows."""

    model: Pipeline
    predictions: np.ndarray  # the fitted model's, on the holdout rows
    bundle: bytes
    bundle_sha256: str
    profile: bytes
    rmse: float
    mae: float
    parity_max_abs_diff: float
    fit_seconds: float
    n_trees: int

    def candidate(self, model_name: str, version: str, run_id: str) -> Candidate:
        """What the promotion gate judges, once the version is registered."""
        return Candidate(
            model_name, version, run_id, self.bundle, self.profile, self.rmse, self.mae, self.bundle_sha256
        )


def train_candidate(
    train: Rows,
    holdout: Rows,
    params: model.ModelParams,
    meta: dict[str, Any],
    profiled: Rows | None = None,
) -> TrainedCandidate:
    """`meta` goes into the bundle, with the holdout scores under "validation". The reference profile
    describes `profiled` (default: the holdout): the rides serving will see, which include rides whose
    duration is outside the target's domain, so their inputs are not filtered by it."""
    started = time.perf_counter()
    fitted = model.fit(train.features, train.target, params, train.weight)
    fit_seconds = time.perf_counter() - started
    predictions = model.predict(fitted, holdout.features)
    scores = {
        "rmse": metrics.rmse(predictions, holdout.target),
        "mae": metrics.mae(predictions, holdout.target),
    }
    bundle_bytes = export_bundle(fitted, {**meta, "validation": scores})
    bundle = load_bundle(bundle_bytes)
    served = bundle.predict(holdout.features)
    parity_max_abs_diff = parity(served, predictions)
    return TrainedCandidate(
        model=fitted,
        predictions=predictions,
        bundle=bundle_bytes,
        bundle_sha256=bundle.sha256,
        profile=_profile_of(bundle, holdout if profiled is None else profiled),
        rmse=scores["rmse"],
        mae=scores["mae"],
        parity_max_abs_diff=parity_max_abs_diff,
        fit_seconds=fit_seconds,
        n_trees=int(fitted[-1].n_iter_),
    )


def _profile_of(bundle: ServingBundle, rows: Rows) -> bytes:
    return reference_profile(rows.features, bundle.predict(rows.features), rows.pickup_day)


def parity(served: np.ndarray, predictions: np.ndarray) -> float:
    """Largest |bundle - model| prediction; a bundle beyond PARITY_TOLERANCE_MINUTES is never shipped."""
    diff = float(np.max(np.abs(served - predictions)))
    if diff > PARITY_TOLERANCE_MINUTES:
        raise RuntimeError(
            f"bundle predictions differ from the model by {diff} min (> {PARITY_TOLERANCE_MINUTES})"
        )
    return diff


def reference_profile(features: np.ndarray, predictions: np.ndarray, pickup_day: np.ndarray | None) -> bytes:
    columns = {name: feature_column(features, name) for name in (*MONITORED_FEATURES, *TIME_OF_WEEK_FEATURES)}
    profile = build_reference_profile(columns, predictions)
    if pickup_day is not None:
        profile = add_day_excesses(profile, columns, predictions, pickup_day)
    return json.dumps(profile, sort_keys=True).encode()
