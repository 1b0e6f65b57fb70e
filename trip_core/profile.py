"""Reference profile of a model version, for drift monitoring (numpy only: training and monitor import it).

Training builds it from the MONITORED_FEATURES of the validation month and the model's predictions on
that month (`build_reference_profile`), stores the dict as JSON at `profile_key` of the version's
pointer; the monitor reads it back (`read_profile`) and compares live windows with it.

Format (schema 1), a JSON object:

    {"schema": 1, "n_rows": 65000, "sketch_size": 1000,
     "columns": {<feature>: <column>, ..., "prediction": <numeric column>}}

numeric column:
    {"kind": "numeric", "count": n_valid, "missing": n, "invalid": n, "valid_min": 0.0, "valid_max": 100.0,
     "mean": .., "std": .. (population std of the valid values, the Evidently normaliser),
     "iqr": .. (robust scale, kept for reference), "min": .., "max": .., "discrete": bool,
     "quantiles": [K values at probabilities (i + 0.5) / K, taken with numpy's "inverted_cdf" method,
                   so every point is a real data value and integer columns stay integer],
     "hist": {"edges": [...], "counts": [...]}}   (for the report's pictures)
categorical column:
    {"kind": "categorical", "count": n_valid, "missing": n, "invalid": n, "counts": {"<code>": n, ...}}

Outliers. A value outside its column's valid range (`VALID_RANGES`; trip_distance outside
0..MAX_TRIP_DISTANCE_MILES, the bound the ride validator enforces at ingestion and training applies)
is counted as `invalid` and left out of every statistic. Live rides with such distances never reach a
capture (they are rejected), so reference and live data are compared over the same range; without
this the raw 2021-01 distances (max 244,152 miles, std 1,958) would make the std-normalised
Wasserstein score blind to any real shift.

The K-point quantile sketch stands for the reference sample: the K-S statistic computed against it
is within 1/K of the exact one, and the Wasserstein distance within the quantisation of one sketch
step; the monitor uses `count` (the real reference size) for p-values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from trip_core.contracts import MAX_TRIP_DISTANCE_MILES
from trip_core.features import MONITORED_FEATURES, ColumnKind
from trip_core.zones import zone_table

PROFILE_SCHEMA = 1
DEFAULT_SKETCH_SIZE = 1000
HIST_BINS = 30
PREDICTION_COLUMN = "prediction"

# Inclusive valid range per numeric column; values outside are "invalid" (counted, not compared).
VALID_RANGES: dict[str, tuple[float, float]] = {
    "trip_distance": (0.0, MAX_TRIP_DISTANCE_MILES),
    "pickup_hour": (0.0, 23.0),
    PREDICTION_COLUMN: (0.0, float("inf")),
}


def column_kinds() -> dict[str, ColumnKind]:
    """Every profiled column (monitored features + the prediction) with its kind."""
    return {**MONITORED_FEATURES, PREDICTION_COLUMN: "numeric"}


def _valid_categories(name: str) -> np.ndarray | None:
    """Allowed codes of a categorical column, or None when any code is allowed."""
    if name in ("PULocationID", "DOLocationID"):
        return np.array(sorted(zone_table().location_ids), dtype=np.float64)
    if name == "pickup_weekday":
        return np.arange(7, dtype=np.float64)
    if name in ("pu_borough", "do_borough"):
        return np.arange(len(zone_table().borough_names), dtype=np.float64)
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


def split_column(name: str, kind: ColumnKind, values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(valid values as float64, missing count, invalid count) of one column.

    Missing: NaN (None decodes to NaN). Invalid: outside the column's valid range / category set.
    """
    array = np.asarray(values, dtype=np.float64)
    mask = valid_mask(name, kind, array)
    missing = int(np.isnan(array).sum())
    invalid = int(array.size - missing - int(mask.sum()))
    return array[mask], missing, invalid


def _histogram_edges(valid: np.ndarray, discrete: bool) -> np.ndarray:
    if valid.size == 0:
        return np.array([0.0, 1.0])
    low = float(valid.min())
    if discrete and float(valid.max()) - low <= 60:
        return np.arange(low - 0.5, float(valid.max()) + 1.0, 1.0)
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


def _numeric_profile(name: str, values: np.ndarray, sketch_size: int) -> dict[str, Any]:
    valid, missing, invalid = split_column(name, "numeric", values)
    low, high = VALID_RANGES.get(name, (-np.inf, np.inf))
    discrete = bool(valid.size) and bool(np.all(valid == np.round(valid)))
    edges = _histogram_edges(valid, discrete)
    if valid.size:
        probabilities = (np.arange(sketch_size) + 0.5) / sketch_size
        quantiles = np.quantile(valid, probabilities, method="inverted_cdf")
        q25, q75 = np.quantile(valid, [0.25, 0.75])
        stats = {
            "mean": float(valid.mean()),
            "std": float(valid.std()),
            "iqr": float(q75 - q25),
            "min": float(valid.min()),
            "max": float(valid.max()),
        }
    else:
        quantiles = np.empty(0)
        stats = {"mean": 0.0, "std": 0.0, "iqr": 0.0, "min": 0.0, "max": 0.0}
    return {
        "kind": "numeric",
        "count": int(valid.size),
        "missing": missing,
        "invalid": invalid,
        "valid_min": None if not np.isfinite(low) else float(low),
        "valid_max": None if not np.isfinite(high) else float(high),
        **stats,
        "discrete": discrete,
        "quantiles": [float(q) for q in quantiles],
        "hist": {"edges": [float(e) for e in edges], "counts": [int(c) for c in histogram(edges, valid)]},
    }


def _categorical_profile(name: str, values: np.ndarray) -> dict[str, Any]:
    valid, missing, invalid = split_column(name, "categorical", values)
    codes, counts = np.unique(valid, return_counts=True)
    return {
        "kind": "categorical",
        "count": int(valid.size),
        "missing": missing,
        "invalid": invalid,
        "counts": {_code_key(code): int(count) for code, count in zip(codes, counts, strict=True)},
    }


def _code_key(code: float) -> str:
    return str(int(code)) if float(code).is_integer() else repr(float(code))


def build_reference_profile(
    columns: Mapping[str, np.ndarray],
    predictions: np.ndarray,
    sketch_size: int = DEFAULT_SKETCH_SIZE,
) -> dict[str, Any]:
    """JSON-serialisable reference profile of MONITORED_FEATURES columns plus the predictions."""
    missing = [name for name in MONITORED_FEATURES if name not in columns]
    if missing:
        raise ValueError(f"reference columns lack {', '.join(missing)}")
    n_rows = len(predictions)
    profiled: dict[str, dict[str, Any]] = {}
    for name, kind in MONITORED_FEATURES.items():
        values = np.asarray(columns[name])
        if len(values) != n_rows:
            raise ValueError(f"column {name} has {len(values)} rows, predictions {n_rows}")
        profiled[name] = (
            _numeric_profile(name, values, sketch_size)
            if kind == "numeric"
            else _categorical_profile(name, values)
        )
    profiled[PREDICTION_COLUMN] = _numeric_profile(PREDICTION_COLUMN, np.asarray(predictions), sketch_size)
    return {"schema": PROFILE_SCHEMA, "n_rows": n_rows, "sketch_size": sketch_size, "columns": profiled}


# ---------------------------------------------------------------------------------------------
# Reader (the monitor's side)


@dataclass(frozen=True)
class NumericReference:
    name: str
    count: int
    missing: int
    invalid: int
    mean: float
    std: float
    iqr: float
    discrete: bool
    quantiles: np.ndarray
    hist_edges: np.ndarray
    hist_counts: np.ndarray

    kind: ColumnKind = "numeric"

    @property
    def scale(self) -> float:
        """The normaliser of the Wasserstein distance: std, or IQR / 1.349, or 1 for a constant column."""
        if self.std > 0:
            return self.std
        if self.iqr > 0:
            return self.iqr / 1.349
        return 1.0


@dataclass(frozen=True)
class CategoricalReference:
    name: str
    count: int
    missing: int
    invalid: int
    codes: np.ndarray  # float64 category codes, sorted
    counts: np.ndarray  # int64, aligned with codes

    kind: ColumnKind = "categorical"


ColumnReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class ReferenceProfile:
    n_rows: int
    sketch_size: int
    columns: dict[str, ColumnReference]


def read_profile(source: str | bytes | Mapping[str, Any]) -> ReferenceProfile:
    """Parse a stored profile (JSON text/bytes or the dict itself); raises ValueError when malformed."""
    data: Mapping[str, Any] = json.loads(source) if isinstance(source, str | bytes) else source
    if data.get("schema") != PROFILE_SCHEMA:
        raise ValueError(f"unsupported reference profile schema {data.get('schema')!r}")
    columns: dict[str, ColumnReference] = {}
    try:
        for name, column in data["columns"].items():
            if column["kind"] == "numeric":
                columns[name] = NumericReference(
                    name=name,
                    count=int(column["count"]),
                    missing=int(column["missing"]),
                    invalid=int(column["invalid"]),
                    mean=float(column["mean"]),
                    std=float(column["std"]),
                    iqr=float(column["iqr"]),
                    discrete=bool(column["discrete"]),
                    quantiles=np.asarray(column["quantiles"], dtype=np.float64),
                    hist_edges=np.asarray(column["hist"]["edges"], dtype=np.float64),
                    hist_counts=np.asarray(column["hist"]["counts"], dtype=np.int64),
                )
            elif column["kind"] == "categorical":
                items = sorted((float(code), int(count)) for code, count in column["counts"].items())
                columns[name] = CategoricalReference(
                    name=name,
                    count=int(column["count"]),
                    missing=int(column["missing"]),
                    invalid=int(column["invalid"]),
                    codes=np.array([code for code, _ in items], dtype=np.float64),
                    counts=np.array([count for _, count in items], dtype=np.int64),
                )
            else:
                raise ValueError(f"column {name}: unknown kind {column['kind']!r}")
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed reference profile: {error!r}") from error
    return ReferenceProfile(n_rows=int(data["n_rows"]), sketch_size=int(data["sketch_size"]), columns=columns)
