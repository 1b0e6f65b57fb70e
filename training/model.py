"""The model: target encodings of the zones and zone pair, then gradient-boosted trees.

Zone IDs are labels, not quantities, and HistGradientBoosting's native categoricals stop at 255
categories (there are 265 zones, ~10k pairs), so each zone column is replaced by the mean duration
of its category (`TargetEncoder`, cross-fitted on the training rows so trees don't learn from
leaked targets). The encoding tables travel in the serving bundle.

The pipeline selects its columns by index into FEATURE_NAMES, so fitting and predicting need only
numpy arrays: the retraining Lambda (lambda_retrain/, no pandas in its zip) imports this module too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import TargetEncoder

from trip_core.features import FEATURE_NAMES

if TYPE_CHECKING:
    import pandas as pd

TARGET_ENCODED = ("pu_do_pair", "PULocationID", "DOLocationID")
PASSTHROUGH = tuple(name for name in FEATURE_NAMES if name not in TARGET_ENCODED)
TARGET_ENCODED_INDEX = [FEATURE_NAMES.index(name) for name in TARGET_ENCODED]
PASSTHROUGH_INDEX = [FEATURE_NAMES.index(name) for name in PASSTHROUGH]


@dataclass(frozen=True)
class ModelParams:
    max_iter: int = 500
    learning_rate: float = 0.05
    max_leaf_nodes: int = 31
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    encoder_folds: int = 5
    random_state: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def as_frame(features: np.ndarray) -> pd.DataFrame:
    """The feature matrix as a named DataFrame (MLflow's signature and input example only)."""
    import pandas as pd

    return pd.DataFrame(features, columns=list(FEATURE_NAMES))


def build_model(params: ModelParams) -> Pipeline:
    folds = KFold(params.encoder_folds, shuffle=True, random_state=params.random_state)
    encoder = TargetEncoder(target_type="continuous", cv=folds)
    trees = HistGradientBoostingRegressor(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=True,  # on a random 10% of the training rows, never on the validation month
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=params.random_state,
    )
    encode = ColumnTransformer(
        [("te", encoder, TARGET_ENCODED_INDEX), ("num", "passthrough", PASSTHROUGH_INDEX)],
        remainder="drop",
    )
    return Pipeline([("encode", encode), ("trees", trees)])


def fit(
    features: np.ndarray, target: np.ndarray, params: ModelParams, weight: np.ndarray | None = None
) -> Pipeline:
    """`weight`: per row, for the trees (the target encoder's statistics are unweighted)."""
    model = build_model(params)
    model.fit(np.asarray(features, dtype=np.float64), target, trees__sample_weight=weight)
    return model


def predict(model: Pipeline, features: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(np.asarray(features, dtype=np.float64)), dtype=np.float64)
