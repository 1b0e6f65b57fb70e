"""Export the fitted scikit-learn pipeline to the numpy serving bundle (trip_core.bundle).

skl2onnx cannot convert HistGradientBoostingRegressor under scikit-learn 1.9, so the trees are
read from the estimator's fitted `_predictors` node arrays directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import TargetEncoder

from training.model import PASSTHROUGH, TARGET_ENCODED
from trip_core.bundle import dump_bundle
from trip_core.features import FEATURE_NAMES


def export_bundle(model: Pipeline, meta: dict[str, Any]) -> bytes:
    encode = model.named_steps["encode"]
    encoder: TargetEncoder = encode.named_transformers_["te"]
    trees: HistGradientBoostingRegressor = model.named_steps["trees"]
    if [name for name, _, _ in encode.transformers_ if name != "remainder"] != ["te", "num"]:
        raise ValueError("unexpected column layout of the encoding step")
    return dump_bundle(meta, {**_encoding_arrays(encoder), **_tree_arrays(trees)})


def _encoding_arrays(encoder: TargetEncoder) -> dict[str, np.ndarray]:
    categories = [np.asarray(c, dtype=np.float64) for c in encoder.categories_]
    for column, values in zip(TARGET_ENCODED, categories, strict=True):
        if np.any(np.diff(values) <= 0):
            raise ValueError(f"categories of {column} are not strictly increasing")
    return {
        "te_columns": np.array([FEATURE_NAMES.index(c) for c in TARGET_ENCODED], dtype=np.int64),
        "te_offsets": np.cumsum([0, *(len(c) for c in categories)]).astype(np.int64),
        "te_categories": np.concatenate(categories),
        "te_values": np.concatenate([np.asarray(e, dtype=np.float64) for e in encoder.encodings_]),
        "te_default": np.full(len(categories), float(encoder.target_mean_)),
        "passthrough_columns": np.array([FEATURE_NAMES.index(c) for c in PASSTHROUGH], dtype=np.int64),
    }


def _tree_arrays(trees: HistGradientBoostingRegressor) -> dict[str, np.ndarray]:
    if trees.n_trees_per_iteration_ != 1:
        raise ValueError("only single-output regression is exported")
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "value")
    }
    roots, depth, offset = [], 0, 0
    for (predictor,) in trees._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("native categorical splits are not supported by the bundle")
        leaf = nodes["is_leaf"].astype(bool)
        own = np.arange(len(nodes), dtype=np.int64) + offset
        parts["feature"].append(np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64))
        parts["threshold"].append(np.where(leaf, 0.0, nodes["num_threshold"]))
        parts["missing_left"].append(nodes["missing_go_to_left"].astype(bool))
        parts["left"].append(np.where(leaf, own, nodes["left"].astype(np.int64) + offset))
        parts["right"].append(np.where(leaf, own, nodes["right"].astype(np.int64) + offset))
        parts["value"].append(np.where(leaf, nodes["value"], 0.0))
        roots.append(offset)
        depth = max(depth, int(nodes["depth"].max()))
        offset += len(nodes)
    arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    arrays["left"] = arrays["left"].astype(np.int32)
    arrays["right"] = arrays["right"].astype(np.int32)
    arrays["feature"] = arrays["feature"].astype(np.int32)
    arrays["roots"] = np.array(roots, dtype=np.int32)
    arrays["baseline"] = np.asarray(trees._baseline_prediction, dtype=np.float64).reshape(())
    arrays["depth"] = np.array(depth, dtype=np.int64)
    return arrays
