"""The reference side of drift calibration: seasonal mixtures, the statistics, their null distribution.

Shared by the monitor (lambda_monitor.drift judges a window) and training (which measures, once per
profile, how much the reference's own days differ from each other: `add_day_excesses`). See
lambda_monitor.drift for the method; docs/architecture.md for the measured figures.

Day excess. Real days differ from each other more than iid samples of one month do (weather,
events, a closed bridge), so a null of iid multinomial draws flags ordinary days. For each reference
day with at least MIN_DAY_ROWS values, training compares that day with the mixture of the REST of
the reference (leave-one-day-out, the day's own slice composition). Squared distances of
independent deviations add in expectation, so e_d = statistic_d^2 - mean(null_d^2) is the day's
between-day part (null_d: the iid null at the day's n against the rest). The excesses are shrunk
towards their mean until their spread is the between-day spread alone (`_without_sampling_spread`).
The monitor adds a seeded draw of them to each iid null draw, in squared space.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trip_core.profile import (
    ColumnReference,
    NumericReference,
    profiled_values,
    read_profile,
    slice_counts,
)

NULL_DRAWS = 999  # (NULL_DRAWS + 1) * ALPHA is whole: the order-statistic threshold has level ALPHA exactly
PRIOR_ROWS = 20.0
RARE_CODE_ROWS = 10
NULL_CACHE_SIZE = 256
MIN_DAY_ROWS = 200  # a reference day with fewer values says more about its noise than about its day


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
    # Imported here: every function's zip ships trip_core, and the prediction function's has no scipy.
    from scipy.spatial.distance import jensenshannon

    return np.asarray(jensenshannon(reference, current, axis=-1))


def _ks_binned(reference: np.ndarray, current: np.ndarray) -> np.ndarray:
    return np.asarray(np.abs(np.cumsum(reference - current, axis=-1)).max(axis=-1))


STATISTICS = {"jensenshannon": _jensenshannon, "ks_binned": _ks_binned}


def null_distribution(
    statistic: str,
    mixture: Mixture,
    n: int,
    seed_text: str,
    day_excess: np.ndarray | None = None,
    day_weight: float = 1.0,
) -> np.ndarray:
    """Sorted statistic of NULL_DRAWS (reference, window) multinomial pairs drawn from the mixture.

    With `day_excess`, each draw also gets a between-day deviation: a seeded pick of the excesses,
    times `day_weight` (sum of the window's squared day shares: independent days average out).
    """
    reference_rows = max(round(mixture.reference_rows), 1)
    excess = np.zeros(0) if day_excess is None else np.asarray(day_excess, dtype=np.float64)
    return _null(
        statistic, mixture.shares.tobytes(), n, reference_rows, seed_text, excess.tobytes(), day_weight
    )


@functools.lru_cache(maxsize=NULL_CACHE_SIZE)
def _null(
    statistic: str,
    shares_bytes: bytes,
    n: int,
    reference_rows: int,
    seed_text: str,
    excess_bytes: bytes,
    day_weight: float,
) -> np.ndarray:
    """A pure function of its arguments: a mixture met again (same slices, same n) is drawn once."""
    shares = np.frombuffer(shares_bytes, dtype=np.float64)
    rng = np.random.default_rng(zlib.crc32(f"{seed_text}:{n}".encode()))
    current = rng.multinomial(n, shares, size=NULL_DRAWS) / n
    reference = rng.multinomial(reference_rows, shares, size=NULL_DRAWS) / reference_rows
    null = STATISTICS[statistic](reference, current)
    excess = np.frombuffer(excess_bytes, dtype=np.float64)
    if excess.size:
        days = np.random.default_rng(zlib.crc32(f"{seed_text}:{n}:days".encode()))
        null = np.sqrt(np.maximum(null**2 + day_weight * days.choice(excess, NULL_DRAWS), 0.0))
    null = np.sort(null)
    null.setflags(write=False)
    return null


def statistic_of(reference: ColumnReference) -> str:
    return "ks_binned" if isinstance(reference, NumericReference) else "jensenshannon"


def compare(reference: ColumnReference, values: np.ndarray, slices: np.ndarray) -> tuple[Mixture, float]:
    """The mixture matching `slices` and the statistic of `values` (valid, non-empty) against it."""
    mixture = reference_mixture(reference, slices)
    window = np.bincount(compared_bins(reference)[reference.bins(values)], minlength=mixture.shares.size)
    return mixture, float(STATISTICS[statistic_of(reference)](mixture.shares, window / values.size))


def day_excesses(
    reference: ColumnReference, values: np.ndarray, slices: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """Between-day excesses of the reference's days with at least MIN_DAY_ROWS values (its own rows)."""
    bins = reference.bins(values)
    n_slices, n_bins = reference.slice_counts.shape
    excesses, noise_variances = [], []
    for day in np.unique(days):
        mine = days == day
        if np.count_nonzero(mine) < MIN_DAY_ROWS or mine.all():  # a lone day has no rest to differ from
            continue
        own = slice_counts(bins[mine], slices[mine], n_bins, n_slices)
        rest = dataclasses.replace(reference, slice_counts=reference.slice_counts - own)
        mixture, distance = compare(rest, values[mine], slices[mine])
        null = null_distribution(statistic_of(rest), mixture, int(mine.sum()), reference.name) ** 2
        excesses.append(distance**2 - float(null.mean()))
        noise_variances.append(float(null.var()))
    return _without_sampling_spread(np.array(excesses), np.array(noise_variances))


def _without_sampling_spread(excesses: np.ndarray, noise_variances: np.ndarray) -> np.ndarray:
    """The excesses shrunk towards their mean so that their spread is the between-day part only.

    Each raw excess still carries its day's sampling noise; the null adds that noise again (its iid
    draw), so unshrunk excesses would count it twice and make the verdict too lenient.
    """
    if excesses.size < 2:
        return excesses
    mean, spread = float(excesses.mean()), float(excesses.var())
    between = max(spread - float(noise_variances.mean()), 0.0)
    return mean + (excesses - mean) * (math.sqrt(between / spread) if spread > 0 else 0.0)


def add_day_excesses(
    profile: dict[str, Any], columns: Mapping[str, np.ndarray], predictions: np.ndarray, days: np.ndarray
) -> dict[str, Any]:
    """`profile` (built from these rows) with each column's "day_excess"; `days`: New York pickup dates."""
    reader = read_profile(profile)
    out = {**profile, "columns": dict(profile["columns"])}
    for name, values, slices, mask in profiled_values(columns, predictions, str(profile["slicing"])):
        excess = day_excesses(reader.columns[name], values[mask], slices[mask], np.asarray(days)[mask])
        out["columns"][name] = {**profile["columns"][name], "day_excess": excess.tolist()}
    return out
