"""Drift of one window against a reference profile, statistics from scipy.

Test choice, as Evidently's defaults (`get_default_stattest`) but keyed on the *current* window's
size, since every reference profile holds a whole validation month (tens of thousands of rows):

| column      | current n <= 1000                        | current n > 1000                              |
|-------------|------------------------------------------|-----------------------------------------------|
| numeric     | two-sample K-S, drift if p < 0.05        | Wasserstein / reference std, drift if >= 0.1  |
| categorical | chi-square homogeneity, drift if p < 0.05| Jensen-Shannon distance, drift if >= 0.1      |

Small windows get tests whose p-values account for sample size; large ones get distances, which
do not turn every negligible difference into "drift" as p-values do at 10^5 rows. The distance
(normed Wasserstein / Jensen-Shannon) is computed for every window too and is what the
`*DriftScore` metrics carry, so a metric has one unit whatever the window size.

K-S: the statistic is scipy's `ks_2samp` against the profile's quantile sketch, the p-value
`kstwo.sf(D, round(m*n/(m+n)))` with m the real reference count (what `ks_2samp`'s asymptotic
method computes, with the real m instead of the sketch's size). Chi-square: `chi2_contingency` on the
2 x k table reference/current counts, categories whose expected current count is below 5 (and
categories unseen in the reference) pooled into one cell. Jensen-Shannon: scipy's `jensenshannon`
(natural log) of the category shares over the union of categories, empty shares set to 0.0001
(Evidently's `feel_zeroes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp, kstwo, wasserstein_distance

from trip_core.profile import (
    PREDICTION_COLUMN,
    CategoricalReference,
    ColumnReference,
    NumericReference,
    ReferenceProfile,
)

SMALL_SAMPLE_MAX = 1000
P_VALUE_THRESHOLD = 0.05
DEFAULT_DISTANCE_THRESHOLD = 0.1
DATASET_DRIFT_SHARE = 0.5
MIN_EXPECTED = 5.0
EMPTY_SHARE = 0.0001


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str
    n: int  # valid current values compared
    statistic: str  # the test that gave the verdict
    score: float  # its value (p-value or distance)
    threshold: float
    drifted: bool
    distance_statistic: str  # "wasserstein_normed" | "jensenshannon"
    distance: float  # always computed; what the *DriftScore metrics publish


@dataclass(frozen=True)
class CategoryCounts:
    codes: np.ndarray  # float64, sorted
    counts: np.ndarray  # int64


def category_counts(values: np.ndarray) -> CategoryCounts:
    """Counts per code; bincount for small non-negative integer codes (fast), unique otherwise."""
    if values.size and values.min() >= 0 and values.max() < 100_000 and np.all(values == np.floor(values)):
        counts = np.bincount(values.astype(np.int64))
        codes = np.flatnonzero(counts)
        return CategoryCounts(codes.astype(np.float64), counts[codes].astype(np.int64))
    codes_u, counts_u = np.unique(values, return_counts=True)
    return CategoryCounts(codes_u.astype(np.float64), counts_u.astype(np.int64))


def _aligned(reference: CategoricalReference, current: CategoryCounts) -> tuple[np.ndarray, np.ndarray]:
    codes = np.union1d(reference.codes, current.codes)
    ref = np.zeros(codes.size, dtype=np.float64)
    cur = np.zeros(codes.size, dtype=np.float64)
    ref[np.searchsorted(codes, reference.codes)] = reference.counts
    cur[np.searchsorted(codes, current.codes)] = current.counts
    return ref, cur


def jensenshannon_distance(reference: CategoricalReference, current: CategoryCounts) -> float:
    ref, cur = _aligned(reference, current)
    ref_share = ref / ref.sum()
    cur_share = cur / cur.sum()
    ref_share[ref_share == 0] = EMPTY_SHARE
    cur_share[cur_share == 0] = EMPTY_SHARE
    return float(jensenshannon(ref_share, cur_share))


def chi_square_p_value(reference: CategoricalReference, current: CategoryCounts) -> float:
    ref, cur = _aligned(reference, current)
    expected_current = ref / ref.sum() * cur.sum()
    keep = expected_current >= MIN_EXPECTED
    table = np.vstack([ref[keep], cur[keep]])
    pooled = np.array([[ref[~keep].sum()], [cur[~keep].sum()]])
    if pooled.sum() > 0:
        table = np.hstack([table, pooled])
    if table.shape[1] < 2:
        return 1.0
    return float(chi2_contingency(table, correction=False).pvalue)


def normed_wasserstein(reference: NumericReference, current: np.ndarray) -> float:
    return float(wasserstein_distance(reference.quantiles, current) / reference.scale)


def ks_p_value(reference: NumericReference, current: np.ndarray) -> float:
    statistic = float(ks_2samp(reference.quantiles, current).statistic)
    m, n = reference.count, current.size
    return float(kstwo.sf(statistic, round(m * n / (m + n))))


def column_drift(
    reference: ColumnReference,
    current: np.ndarray,
    threshold: float = DEFAULT_DISTANCE_THRESHOLD,
) -> ColumnDrift | None:
    """Drift of one column's valid current values; None when either side is empty."""
    n = int(current.size)
    if n == 0 or reference.count == 0:
        return None
    small = n <= SMALL_SAMPLE_MAX
    if isinstance(reference, NumericReference):
        distance = normed_wasserstein(reference, current)
        if small:
            p_value = ks_p_value(reference, current)
            return ColumnDrift(
                reference.name, "numeric", n, "ks", p_value, P_VALUE_THRESHOLD,
                p_value < P_VALUE_THRESHOLD, "wasserstein_normed", distance,
            )  # fmt: skip
        return ColumnDrift(
            reference.name, "numeric", n, "wasserstein_normed", distance, threshold,
            distance >= threshold, "wasserstein_normed", distance,
        )  # fmt: skip
    counts = category_counts(current)
    distance = jensenshannon_distance(reference, counts)
    if small:
        p_value = chi_square_p_value(reference, counts)
        return ColumnDrift(
            reference.name, "categorical", n, "chisquare", p_value, P_VALUE_THRESHOLD,
            p_value < P_VALUE_THRESHOLD, "jensenshannon", distance,
        )  # fmt: skip
    return ColumnDrift(
        reference.name, "categorical", n, "jensenshannon", distance, threshold,
        distance >= threshold, "jensenshannon", distance,
    )  # fmt: skip


@dataclass(frozen=True)
class DatasetDrift:
    features: dict[str, ColumnDrift]  # monitored features that could be compared
    prediction: ColumnDrift | None
    drift_share: float  # drifted features / compared features
    dataset_drift: bool  # drift_share >= DATASET_DRIFT_SHARE


def dataset_drift(
    profile: ReferenceProfile,
    current: Mapping[str, np.ndarray],
    threshold: float = DEFAULT_DISTANCE_THRESHOLD,
) -> DatasetDrift:
    """Drift of every profiled column present in `current` (valid values only, see trip_core.profile)."""
    features: dict[str, ColumnDrift] = {}
    prediction: ColumnDrift | None = None
    for name, reference in profile.columns.items():
        if name not in current:
            continue
        result = column_drift(reference, current[name], threshold)
        if result is None:
            continue
        if name == PREDICTION_COLUMN:
            prediction = result
        else:
            features[name] = result
    drifted = sum(result.drifted for result in features.values())
    share = drifted / len(features) if features else 0.0
    return DatasetDrift(features, prediction, share, bool(features) and share >= DATASET_DRIFT_SHARE)
