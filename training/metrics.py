"""Regression metrics in minutes, overall and per pickup borough."""

from __future__ import annotations

import re

import numpy as np

from trip_core.features import feature_column
from trip_core.zones import zone_table


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - target) ** 2)))


def mae(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - target)))


def per_borough(pred: np.ndarray, target: np.ndarray, features: np.ndarray) -> dict[str, float]:
    """`rmse_pu_<Borough>` / `mae_pu_<Borough>` by pickup borough (names made metric-key safe)."""
    codes = feature_column(features, "pu_borough").astype(np.int64)
    out: dict[str, float] = {}
    for code, name in enumerate(zone_table().borough_names):
        rows = codes == code
        if name and rows.any():
            key = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
            out[f"rmse_pu_{key}"] = rmse(pred[rows], target[rows])
            out[f"mae_pu_{key}"] = mae(pred[rows], target[rows])
    return out
