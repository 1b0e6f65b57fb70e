"""The one training pipeline (training/pipeline.py) that `python -m training.train` and the retrain share."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import pipeline
from training.model import ModelParams
from trip_core.bundle import load_bundle
from trip_core.contracts import PARITY_TOLERANCE_MINUTES
from trip_core.features import compute_features
from trip_core.zones import zone_table


def rows(n: int, seed: int) -> pipeline.Rows:
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(zone_table().location_ids))[:40]
    pu, do = rng.choice(ids, n), rng.choice(ids, n)
    distance = rng.uniform(0.3, 12, n).round(2)
    pickup = np.datetime64("2023-03-01T00:00:00") + rng.integers(0, 30 * 86400, n).astype("timedelta64[s]")
    duration = np.clip(4 + 3 * distance + rng.normal(0, 2, n), 1, 60)
    return pipeline.Rows(compute_features(pu, do, distance, pickup), duration)


def test_the_candidate_is_profiled_and_scored_on_the_holdout_rows() -> None:
    train, holdout = rows(1200, 0), rows(300, 1)
    trained = pipeline.train_candidate(train, holdout, ModelParams(max_iter=30), {"model_name": "m"})
    bundle = load_bundle(trained.bundle)
    assert json.loads(trained.profile)["n_rows"] == len(holdout)  # out of sample, not the training rows
    assert trained.parity_max_abs_diff <= PARITY_TOLERANCE_MINUTES
    assert bundle.sha256 == trained.bundle_sha256
    assert bundle.meta["validation"] == {"rmse": trained.rmse, "mae": trained.mae}
    assert trained.rmse == pytest.approx(float(np.sqrt(np.mean((trained.predictions - holdout.target) ** 2))))
    candidate = trained.candidate("m", "3", "run-3")
    assert (candidate.version, candidate.run_id, candidate.bundle) == ("3", "run-3", trained.bundle)


def test_a_bundle_that_disagrees_with_the_model_is_refused() -> None:
    model = np.zeros(4)
    with pytest.raises(RuntimeError, match="differ from the model"):
        pipeline.parity(model + 2 * PARITY_TOLERANCE_MINUTES, model)
