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
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon

from lambda_monitor.window import CurrentColumns
from trip_core.profile import PREDICTION_COLUMN, ColumnReference, NumericReference, ReferenceProfile

ALPHA = 0.05
NULL_DRAWS = 999  # (NULL_DRAWS + 1) * ALPHA is whole: the order-statistic threshold has level ALPHA exactly
PRIOR_ROWS = 20.0
RARE_CODE_ROWS = 10
NULL_CACHE_SIZE = 256
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


@dataclass(frozen=True)
class Mixture:
    shares: np.ndarray  # reference shares per bin, mixed by the window's slice weights
    reference_rows: float  # its effective sample size


def compared_bins(reference: ColumnReference) -> np.ndarray:
    """Map from the profile's bins (+ one for a code the profile lacks) to the compared bins.

    Categorical codes seen fewer than RARE_CODE_ROWS times in the reference share one "rare" bin
    with the codes it never saw: the null can only be drawn from what the reference saw, and a
    window's rides in unseen codes would otherwise add distance the null never has.
    """
    pooled = reference.slice_counts.sum(axis=0)
    if isinstance(reference, NumericReference):  # every value has a bin; order matters to K-S
        return np.arange(pooled.size + 1)
    common = pooled >= RARE_CODE_ROWS
    return np.append(np.where(common, np.cumsum(common) - 1, common.sum()), common.sum())


def _merged_counts(reference: ColumnReference, mapping: np.ndarray) -> np.ndarray:
    counts = np.zeros((reference.slice_counts.shape[0], int(mapping.max()) + 1), dtype=np.int64)
    np.add.at(counts.T, mapping[:-1], reference.slice_counts.T)
    return counts


def reference_mixture(reference: ColumnReference, slices: np.ndarray) -> Mixture:
    """The reference distribution (over `compared_bins`) matching the time-of-week mix of `slices`."""
    counts = _merged_counts(reference, compared_bins(reference))
    weights = np.bincount(slices, minlength=counts.shape[0]) / slices.size
    used = np.flatnonzero(weights)
    pooled = counts.sum(axis=0) / counts.sum()
    slice_rows = counts[used].sum(axis=1) + PRIOR_ROWS
    per_slice = (counts[used] + PRIOR_ROWS * pooled) / slice_rows[:, None]
    shares = weights[used] @ per_slice
    return Mixture(shares / shares.sum(), float(1.0 / np.sum(weights[used] ** 2 / slice_rows)))


def _jensenshannon(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.asarray(jensenshannon(reference, current, axis=-1))


def _ks_binned(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(np.cumsum(reference - current, axis=-1)).max(axis=-1))


STATISTICS = {"jensenshannon": _jensenshannon, "ks_binned": _ks_binned}


def null_distribution(statistic: str, mixture: Mixture, n: int, seed_text: str) -> np.ndarray:
    """Sorted statistic of NULL_DRAWS (reference, window) multinomial pairs drawn from the mixture."""
    reference_rows = max(round(mixture.reference_rows), 1)
    return _null(statistic, mixture.shares.tobytes(), n, reference_rows, seed_text)


@functools.lru_cache(maxsize=NULL_CACHE_SIZE)
def _null(statistic: str, shares_bytes: bytes, n: int, reference_rows: int, seed_text: str) -> np.ndarray:
    """A pure function of its arguments: a mixture met again (same slices, same n) is drawn once."""
    shares = np.frombuffer(shares_bytes, dtype=np.float64)
    rng = np.random.default_rng(zlib.crc32(f"{seed_text}:{n}".encode()))
    current = rng.multinomial(n, shares, size=NULL_DRAWS) / n
    reference = rng.multinomial(reference_rows, shares, size=NULL_DRAWS) / reference_rows
    null = np.sort(STATISTICS[statistic](reference, current))
    null.setflags(write=False)
    return null


def column_drift(reference: ColumnReference, values: np.ndarray, slices: np.ndarray) -> ColumnDrift | None:
    """Drift of one column's valid window values (`slices`: their time-of-week slices).

    None when either side is empty.
    """
    n = int(values.size)
    if n == 0 or reference.count == 0:
        return None
    statistic = "ks_binned" if isinstance(reference, NumericReference) else "jensenshannon"
    mixture = reference_mixture(reference, slices)
    window = np.bincount(compared_bins(reference)[reference.bins(values)], minlength=mixture.shares.size)
    distance = float(STATISTICS[statistic](mixture.shares, window / n))
    null = null_distribution(statistic, mixture, n, reference.name)
    quantile = float(null[math.ceil((1 - ALPHA) * (NULL_DRAWS + 1)) - 1])
    median = float(np.median(null))
    threshold = max(quantile, median + EFFECT_FLOOR[statistic])
    p_value = float((1 + np.count_nonzero(null >= distance)) / (NULL_DRAWS + 1))
    return ColumnDrift(
        reference.name, reference.kind, n, statistic, distance, threshold, p_value, median,
        distance - median, distance > threshold,
    )  # fmt: skip


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
        result = column_drift(reference, current.valid[name], slices[current.row[name]])
        if result is None:
            continue
        if name == PREDICTION_COLUMN:
            prediction = result
        else:
            features[name] = result
    drifted = sum(result.drifted for result in features.values())
    share = drifted / len(features) if features else 0.0
    return DatasetDrift(features, prediction, share, bool(features) and share >= DATASET_DRIFT_SHARE)
