"""Drift of one window against a reference profile: a seasonal mixture and calibrated thresholds.

Mixture. Each column's window values are compared with the reference MIXTURE of the window's own
time-of-week composition: weights = the window's share of values per slice, each slice's
distribution shrunk towards the pooled one by PRIOR_ROWS pseudo-rows (a slice the reference barely
or never saw backs off smoothly to the pooled distribution; no cut-off, no jump).

Statistics (on counts, so a window of any size costs the same):
| column      | statistic                                                     |
|-------------|---------------------------------------------------------------|
| categorical | Jensen-Shannon distance (scipy, natural log) of the shares    |
| numeric     | K-S on the profile's quantile bins: max |CDF_ref - CDF_window| |

Calibration. The statistic's null distribution at the window's n is drawn from the mixture:
NULL_DRAWS pairs of multinomial samples, one of the window's size and one of the mixture's
effective reference size (1 / sum_s w_s^2 / (N_s + PRIOR_ROWS)), so the reference's own sampling
noise (large where the window sits in sparse slices) is in the null too. A column drifts when its
statistic exceeds both the null's (1 - ALPHA) quantile and the null median plus EFFECT_FLOOR: the
quantile holds the false-positive rate at ALPHA for every n; the floor keeps a huge window from
flagging a shift too small to matter. The draws are seeded by the column name and n, so the same
rows and profile always give the same verdict.

Day-to-day variation. When the profile holds the column's day excesses (trip_core.calibration),
each null draw also gets a between-day deviation, weighted by the window's squared day shares
(`day_weight`): real days differ more than iid samples do, and a window of one day carries its
day's deviation whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lambda_monitor.window import CurrentColumns
from trip_core.calibration import NULL_DRAWS, compare, null_distribution, statistic_of
from trip_core.profile import DAYS_PER_WEEK, PREDICTION_COLUMN, ColumnReference, ReferenceProfile

ALPHA = 0.05
DATASET_DRIFT_SHARE = 0.5
# Smallest excess of the statistic over its null median that counts as drift (see docs/architecture.md).
EFFECT_FLOOR = {"jensenshannon": 0.0025, "ks_binned": 0.003}


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    n: int  # valid current values compared
    statistic: str  # "jensenshannon" | "ks_binned"
    distance: float  # the statistic's value; what the *DriftScore metrics publish
    threshold: float  # drifted = distance > threshold
    p_value: float  # Monte Carlo, from the null draws
    null_median: float
    effect: float  # distance - null_median
    drifted: bool


def column_drift(
    reference: ColumnReference, values: np.ndarray, slices: np.ndarray, day_weight: float = 1.0
) -> ColumnDrift | None:
    """Drift of one column's valid window values (`slices`: their time-of-week slices).

    `day_weight`: sum of the window's squared day shares (1 for a window inside one day).
    None when either side is empty.
    """
    n = int(values.size)
    if n == 0 or reference.count == 0:
        return None
    statistic = statistic_of(reference)
    mixture, distance = compare(reference, values, slices)
    null = null_distribution(statistic, mixture, n, reference.name, reference.day_excess, day_weight)
    quantile = float(null[math.ceil((1 - ALPHA) * (NULL_DRAWS + 1)) - 1])
    median = float(np.median(null))
    threshold = max(quantile, median + EFFECT_FLOOR[statistic])
    p_value = float((1 + np.count_nonzero(null >= distance)) / (NULL_DRAWS + 1))
    return ColumnDrift(
        reference.name, reference.kind, n, statistic, distance, threshold, p_value, median,
        distance - median, distance > threshold,
    )  # fmt: skip


def day_weight(weekday: np.ndarray) -> float:
    """Sum of squared day shares of a window's rows; a window shorter than a week has one weekday per day."""
    if weekday.size == 0:
        return 1.0
    shares = np.bincount(weekday.astype(np.int64), minlength=DAYS_PER_WEEK) / weekday.size
    return float(np.sum(shares**2))


@dataclass(frozen=True)
class DatasetDrift:
    features: dict[str, ColumnDrift]  # monitored features that could be compared
    prediction: ColumnDrift | None
    drift_share: float  # drifted features / compared features
    dataset_drift: bool  # drift_share >= DATASET_DRIFT_SHARE


def dataset_drift(profile: ReferenceProfile, current: CurrentColumns) -> DatasetDrift:
    """Drift of every profiled column of the window (valid values only, see trip_core.profile)."""
    slices = profile.slices(current.weekday, current.hour)
    features: dict[str, ColumnDrift] = {}
    prediction: ColumnDrift | None = None
    for name, reference in profile.columns.items():
        if name not in current.valid:
            continue
        rows = current.row[name]
        result = column_drift(reference, current.valid[name], slices[rows], day_weight(current.weekday[rows]))
        if result is None:
            continue
        if name == PREDICTION_COLUMN:
            prediction = result
        else:
            features[name] = result
    drifted = sum(result.drifted for result in features.values())
    share = drifted / len(features) if features else 0.0
    return DatasetDrift(features, prediction, share, bool(features) and share >= DATASET_DRIFT_SHARE)
