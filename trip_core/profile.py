"""Reference profile of a model version, for drift monitoring (numpy only: training and monitor import it).

Training builds it from the validation month (`build_reference_profile`: the MONITORED_FEATURES, the
TIME_OF_WEEK_FEATURES that slice it, and the model's predictions), stores the dict as JSON at
`profile_key` of the version's pointer; the monitor reads it back (`read_profile`) and compares each
window with the reference mixture of its own time-of-week composition (lambda_monitor.drift).

Format (schema 2), a JSON object:

    {"schema": 2, "n_rows": 65000, "slicing": "hour_of_week", "n_slices": 168,
     "columns": {<feature>: <column>, ..., "prediction": <numeric column>}}

categorical column:
    {"kind": "categorical", "missing": n, "invalid": n,
     "codes": [every valid code of the column, sorted],
     "slice_counts": [[count of codes[j] in slice s, for j] for s]}
numeric column:
    {"kind": "numeric", "missing": n, "invalid": n, "mean": .., "std": .. (pooled, valid values),
     "edges": [interior bin edges: distinct pooled quantiles at i / NUMERIC_BINS],
     "slice_counts": [[count in bin b, for b in 0..len(edges)] for s],
     "hist": {"edges": [...], "counts": [...]}}   (pooled, linear bins: the report's pictures only)
every column, optional: "day_excess": [e_d for each reference day] (trip_core.calibration; a
profile without it is judged against iid sampling noise only)

A value goes to bin `searchsorted(edges, value, side="right")`: bin 0 holds values below edges[0],
the last bin values at or above edges[-1]. Bins at pooled quantiles put about 1/NUMERIC_BINS of the
reference in each, so the binned K-S statistic is within that of the exact one (a 20 % change of
distance moves the CDF by several bins' worth).

Slicing. A ride's slice comes from its pickup weekday and hour (New York local, as the features
compute them); SLICINGS lists the candidates, DEFAULT_SLICING is the one measured best
(benchmarks/bench_drift_calibration.py).

Outliers. A value outside its column's valid range (`VALID_RANGES`; trip_distance outside
0..MAX_TRIP_DISTANCE_MILES, the bound the ride validator enforces at ingestion and training applies)
is counted as `invalid` and left out of every statistic, so reference and live rides are compared
over the same range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trip_core import jsontext
from trip_core.contracts import MAX_TRIP_DISTANCE_MILES
from trip_core.features import MONITORED_FEATURES, TIME_OF_WEEK_FEATURES, ColumnKind
from trip_core.zones import zone_table

PROFILE_SCHEMA = 2
NUMERIC_BINS = 100
HIST_BINS = 30
PREDICTION_COLUMN = "prediction"

# Inclusive valid range per numeric column; values outside are "invalid" (counted, not compared).
VALID_RANGES: dict[str, tuple[float, float]] = {
    "trip_distance": (0.0, MAX_TRIP_DISTANCE_MILES),
    "pickup_hour": (0.0, 23.0),
    PREDICTION_COLUMN: (0.0, float("inf")),
}

HOURS_PER_DAY = 24
DAYS_PER_WEEK = 7
SATURDAY = 5


def _day_type(weekday: np.ndarray) -> np.ndarray:
    """0 = Monday..Friday, 1 = Saturday, 2 = Sunday."""
    return np.maximum(weekday - (SATURDAY - 1), 0)


# slicing name -> (number of slices, slice of each ride from its weekday (Monday = 0) and hour)
SLICINGS: dict[str, tuple[int, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "none": (1, lambda weekday, hour: np.zeros_like(hour)),
    "hour_of_day": (HOURS_PER_DAY, lambda weekday, hour: hour),
    "day_type_x_3h": (3 * 8, lambda weekday, hour: _day_type(weekday) * 8 + hour // 3),
    "day_type_x_hour": (3 * HOURS_PER_DAY, lambda weekday, hour: _day_type(weekday) * HOURS_PER_DAY + hour),
    "hour_of_week": (DAYS_PER_WEEK * HOURS_PER_DAY, lambda weekday, hour: weekday * HOURS_PER_DAY + hour),
}
DEFAULT_SLICING = "hour_of_week"


def column_kinds() -> dict[str, ColumnKind]:
    """Every profiled column (monitored features + the prediction) with its kind."""
    return {**MONITORED_FEATURES, PREDICTION_COLUMN: "numeric"}


def time_of_week_slice(slicing: str, weekday: np.ndarray, hour: np.ndarray) -> np.ndarray:
    """Slice index (int64) of each ride; weekday/hour as the features compute them."""
    _, rule = SLICINGS[slicing]
    return np.asarray(rule(np.asarray(weekday).astype(np.int64), np.asarray(hour).astype(np.int64)))


def _valid_categories(name: str) -> np.ndarray | None:
    """Allowed codes of a categorical column, or None when any code is allowed."""
    if name in ("PULocationID", "DOLocationID"):
        return np.array(sorted(zone_table().location_ids), dtype=np.float64)
    if name == "pickup_weekday":
        return np.arange(DAYS_PER_WEEK, dtype=np.float64)
    return None


def valid_mask(name: str, kind: ColumnKind, values: np.ndarray) -> np.ndarray:
    """True where a value is present and inside the column's valid range / category set."""
    array = np.asarray(values, dtype=np.float64)
    if kind == "numeric":
        low, high = VALID_RANGES.get(name, (-np.inf, np.inf))
        return np.isfinite(array) & (array >= low) & (array <= high)
    allowed = _valid_categories(name)
    if allowed is None:
        return ~np.isnan(array)
    # allowed codes are small non-negative integers: a lookup table beats np.isin on 10^6 rows
    table = np.zeros(int(allowed.max()) + 1, dtype=bool)
    table[allowed.astype(np.int64)] = True
    mask = (array >= 0) & (array < table.size) & (array == np.floor(array))
    mask[mask] = table[array[mask].astype(np.int64)]
    return mask


def _histogram_edges(valid: np.ndarray) -> np.ndarray:
    if valid.size == 0:
        return np.array([0.0, 1.0])
    low = float(valid.min())
    # Up to the 99.5th percentile; the rest goes into the last bin (see `histogram`).
    high = float(np.quantile(valid, 0.995))
    if high <= low:
        high = low + 1.0
    return np.linspace(low, high, HIST_BINS + 1)


def histogram(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counts of `values` over `edges`, values beyond either end counted in the end bins."""
    if values.size == 0:
        return np.zeros(len(edges) - 1, dtype=np.int64)
    clipped = np.clip(values, edges[0], edges[-1])
    counts, _ = np.histogram(clipped, bins=edges)
    return counts.astype(np.int64)


def slice_counts(bins: np.ndarray, slices: np.ndarray, n_bins: int, n_slices: int) -> np.ndarray:
    """(n_slices x n_bins) int64 counts of (slice, bin) pairs."""
    flat = np.bincount(slices * n_bins + bins, minlength=n_slices * n_bins)
    return flat.reshape(n_slices, n_bins).astype(np.int64)


def _numeric_profile(valid: np.ndarray, slices: np.ndarray, n_slices: int) -> dict[str, Any]:
    if valid.size:
        probabilities = np.arange(1, NUMERIC_BINS) / NUMERIC_BINS
        edges = np.unique(np.quantile(valid, probabilities, method="inverted_cdf"))
    else:
        edges = np.array([0.0])
    bins = np.searchsorted(edges, valid, side="right")
    hist_edges = _histogram_edges(valid)
    return {
        "kind": "numeric",
        "mean": float(valid.mean()) if valid.size else 0.0,
        "std": float(valid.std()) if valid.size else 0.0,
        "edges": edges.tolist(),
        "slice_counts": slice_counts(bins, slices, edges.size + 1, n_slices).tolist(),
        "hist": {"edges": hist_edges.tolist(), "counts": histogram(hist_edges, valid).tolist()},
    }


def _categorical_profile(name: str, valid: np.ndarray, slices: np.ndarray, n_slices: int) -> dict[str, Any]:
    allowed = _valid_categories(name)
    codes = np.unique(valid) if allowed is None else allowed
    bins = np.searchsorted(codes, valid)
    return {
        "kind": "categorical",
        "codes": [_code_key(code) for code in codes],
        "slice_counts": slice_counts(bins, slices, codes.size, n_slices).tolist(),
    }


def _code_key(code: float) -> str:
    return str(int(code)) if float(code).is_integer() else repr(float(code))


def _column_slices(columns: Mapping[str, np.ndarray], slicing: str) -> tuple[np.ndarray, np.ndarray]:
    """(slice of each row, rows whose pickup weekday and hour are valid)."""
    weekday, hour = (np.asarray(columns[name], dtype=np.float64) for name in TIME_OF_WEEK_FEATURES)
    known = valid_mask("pickup_weekday", "categorical", weekday) & valid_mask("pickup_hour", "numeric", hour)
    return time_of_week_slice(slicing, np.where(known, weekday, 0), np.where(known, hour, 0)), known


def profiled_values(
    columns: Mapping[str, np.ndarray], predictions: np.ndarray, slicing: str
) -> Iterator[tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, every row's value, every row's slice, rows profiled) of each profiled column."""
    slices, time_known = _column_slices(columns, slicing)
    for name, kind in column_kinds().items():
        values = np.asarray(predictions if name == PREDICTION_COLUMN else columns[name], dtype=np.float64)
        if len(values) != len(predictions):
            raise ValueError(f"column {name} has {len(values)} rows, predictions {len(predictions)}")
        yield name, values, slices, valid_mask(name, kind, values) & time_known


def build_reference_profile(
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    slicing: str = DEFAULT_SLICING,
) -> dict[str, Any]:
    """JSON-serialisable profile: MONITORED_FEATURES + predictions, per time-of-week slice.

    `columns` holds the MONITORED_FEATURES and TIME_OF_WEEK_FEATURES as the features compute them.
    """
    required = (*MONITORED_FEATURES, *TIME_OF_WEEK_FEATURES)
    lacking = [name for name in required if name not in columns]
    if lacking:
        raise ValueError(f"reference columns lack {', '.join(lacking)}")
    n_rows = len(predictions)
    if slicing not in SLICINGS:
        raise ValueError(f"unknown slicing {slicing!r}; one of {', '.join(SLICINGS)}")
    n_slices = SLICINGS[slicing][0]
    profiled: dict[str, dict[str, Any]] = {}
    for name, values, slices, mask in profiled_values(columns, predictions, slicing):
        missing = int(np.isnan(values).sum())
        body = (
            _numeric_profile(values[mask], slices[mask], n_slices)
            if column_kinds()[name] == "numeric"
            else _categorical_profile(name, values[mask], slices[mask], n_slices)
        )
        profiled[name] = {**body, "missing": missing, "invalid": n_rows - missing - int(mask.sum())}
    return {
        "schema": PROFILE_SCHEMA,
        "n_rows": n_rows,
        "slicing": slicing,
        "n_slices": n_slices,
        "columns": profiled,
    }


# ---------------------------------------------------------------------------------------------
# Reader (the monitor's side)


@dataclass(frozen=True)
class NumericReference:
    name: str
    missing: int
    invalid: int
    mean: float
    std: float
    edges: np.ndarray  # interior bin edges, increasing
    slice_counts: np.ndarray  # (n_slices x len(edges) + 1) int64
    hist_edges: np.ndarray  # the report's pictures
    hist_counts: np.ndarray
    day_excess: np.ndarray = field(default_factory=lambda: np.zeros(0))  # see trip_core.calibration

    kind: ColumnKind = "numeric"

    @property
    def count(self) -> int:
        return int(self.slice_counts.sum())

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Bin index (int64) of each valid value."""
        return np.searchsorted(self.edges, values, side="right").astype(np.int64)


@dataclass(frozen=True)
class CategoricalReference:
    name: str
    missing: int
    invalid: int
    codes: np.ndarray  # float64 category codes, sorted
    slice_counts: np.ndarray  # (n_slices x len(codes)) int64
    day_excess: np.ndarray = field(default_factory=lambda: np.zeros(0))

    kind: ColumnKind = "categorical"

    @property
    def count(self) -> int:
        return int(self.slice_counts.sum())

    @property
    def counts(self) -> np.ndarray:
        """Pooled counts, aligned with codes."""
        return self.slice_counts.sum(axis=0)

    def bins(self, values: np.ndarray) -> np.ndarray:
        """Index into codes of each valid value; a code the profile lacks gets len(codes)."""
        index = np.searchsorted(self.codes, values)
        found = index < self.codes.size
        found[found] = self.codes[index[found]] == values[found]
        return np.where(found, index, self.codes.size).astype(np.int64)


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    n_rows: int
    slicing: str
    n_slices: int
    columns: dict[str, ColumnReference]

    def slices(self, weekday: np.ndarray, hour: np.ndarray) -> np.ndarray:
        return time_of_week_slice(self.slicing, weekday, hour)


def _day_excess(column: Mapping[str, Any]) -> np.ndarray:
    excess = np.asarray(column.get("day_excess", []), dtype=np.float64)
    if excess.ndim != 1 or not np.all(np.isfinite(excess)):
        raise ValueError("day_excess is not a list of finite numbers")
    return excess


def _read_column(name: str, column: Mapping[str, Any], n_slices: int) -> ColumnReference:
    counts = np.asarray(column["slice_counts"], dtype=np.int64)
    if counts.ndim != 2 or counts.shape[0] != n_slices:
        raise ValueError(f"column {name}: slice_counts is not {n_slices} rows")
    if column["kind"] == "numeric":
        edges = np.asarray(column["edges"], dtype=np.float64)
        if counts.shape[1] != edges.size + 1:
            raise ValueError(f"column {name}: {counts.shape[1]} bins for {edges.size} edges")
        return NumericReference(
            name=name,
            missing=int(column["missing"]),
            invalid=int(column["invalid"]),
            mean=float(column["mean"]),
            std=float(column["std"]),
            edges=edges,
            slice_counts=counts,
            hist_edges=np.asarray(column["hist"]["edges"], dtype=np.float64),
            hist_counts=np.asarray(column["hist"]["counts"], dtype=np.int64),
            day_excess=_day_excess(column),
        )
    if column["kind"] == "categorical":
        codes = np.array([float(code) for code in column["codes"]], dtype=np.float64)
        if counts.shape[1] != codes.size or np.any(np.diff(codes) <= 0):
            raise ValueError(f"column {name}: codes are not sorted or do not match slice_counts")
        return CategoricalReference(
            name=name, missing=int(column["missing"]), invalid=int(column["invalid"]), codes=codes,
            slice_counts=counts, day_excess=_day_excess(column),
        )  # fmt: skip
    raise ValueError(f"column {name}: unknown kind {column['kind']!r}")


def read_profile(source: str | bytes | Mapping[str, Any]) -> ReferenceProfile:
    """Parse a stored profile (JSON text/bytes or the dict itself); raises ValueError when malformed."""
    data = jsontext.loads(source) if isinstance(source, str | bytes) else source
    if not isinstance(data, Mapping):
        raise ValueError(f"a reference profile is a JSON object, not {type(data).__name__}")
    if data.get("schema") != PROFILE_SCHEMA:
        raise ValueError(
            f"unsupported reference profile schema {data.get('schema')!r} (this monitor reads schema "
            f"{PROFILE_SCHEMA}); rebuild the profile with this version's training"
        )
    try:
        slicing, n_slices = str(data["slicing"]), int(data["n_slices"])
        if SLICINGS.get(slicing, (None,))[0] != n_slices:
            raise ValueError(f"slicing {slicing!r} with {n_slices} slices is unknown")
        columns = {name: _read_column(name, column, n_slices) for name, column in data["columns"].items()}
        n_rows = int(data["n_rows"])
    except (KeyError, TypeError, OverflowError) as error:  # OverflowError: int(Infinity)
        raise ValueError(f"malformed reference profile: {error!r}") from error
    return ReferenceProfile(n_rows=n_rows, slicing=slicing, n_slices=n_slices, columns=columns)
