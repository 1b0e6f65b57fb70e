"""Loading NYC TLC green-taxi months from a local path or s3:// into one aligned DataFrame.

Months differ in schema (location IDs int64 before 2023-02, int32 after; `ehail_fee` all-null in
some); only the columns the model needs are read and cast to one dtype each, so they concatenate.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from trip_core.contracts import (
    MAX_DURATION_MINUTES,
    MAX_TRIP_DISTANCE_MILES,
    MIN_DURATION_MINUTES,
    MIN_TRIP_DISTANCE_MILES,
    TLC_PICKUP_COLUMN,
)
from trip_core.features import compute_features
from trip_core.validity import distance_in_bounds, known_zones, pickup_known

PICKUP = TLC_PICKUP_COLUMN
DROPOFF = "lpep_dropoff_datetime"

# Needed column -> (accepted arrow type test, human name of the expected type, pandas dtype after alignment)
_COLUMNS: dict[str, tuple[Callable[[pa.DataType], bool], str, str]] = {
    PICKUP: (pa.types.is_timestamp, "timestamp", "datetime64[us]"),
    DROPOFF: (pa.types.is_timestamp, "timestamp", "datetime64[us]"),
    "PULocationID": (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "integer", "float64"),
    "DOLocationID": (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "integer", "float64"),
    "trip_distance": (lambda t: pa.types.is_integer(t) or pa.types.is_floating(t), "number", "float64"),
}

# A ride as the TLC files hold it: the inputs the model is computed from (training.score scores these).
RIDE_COLUMNS: tuple[str, ...] = ("PULocationID", "DOLocationID", "trip_distance", PICKUP)

ByteReader = Callable[[str], bytes]


class DataError(ValueError):
    """A training file that cannot be used; names the file, the column (if any) and the reason."""

    def __init__(self, file: str, reason: str, column: str | None = None) -> None:
        self.file, self.column, self.reason = file, column, reason
        where = f"{file}, column {column!r}" if column else file
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class MonthData:
    source: str
    sha256: str
    rows_read: int
    frame: pd.DataFrame  # aligned columns + `duration` (minutes), filtered
    # The rows the serving validator accepts, whatever their duration: the traffic the monitor's reference
    # profile must describe (rides with a meter error still ask for a prediction).
    inputs: pd.DataFrame

    @property
    def rows(self) -> int:
        return len(self.frame)


def read_bytes(uri: str) -> bytes:
    """The storage port: local path or s3://bucket/key (boto3 imported only when needed)."""
    if uri.startswith("s3://"):
        import boto3

        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body
    return Path(uri).read_bytes()


def month_from_name(uri: str) -> str | None:
    """`YYYY-MM` from the file name (`green_tripdata_2023-03.parquet` -> `2023-03`), else None."""
    match = re.search(r"(\d{4})-(\d{2})", uri.rsplit("/", 1)[-1])
    if match and 1 <= int(match.group(2)) <= 12:
        return f"{match.group(1)}-{match.group(2)}"
    return None


def load_month(uri: str, reader: ByteReader = read_bytes) -> MonthData:
    raw = reader(uri)
    try:
        table = pq.read_table(io.BytesIO(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(uri, f"not a parquet file ({exc})") from exc
    check_columns(uri, table.schema, _COLUMNS)
    frame = aligned(table, _COLUMNS)
    rows_read = len(frame)
    inputs = _serving_inputs(frame, month_from_name(uri))
    frame = inputs.loc[inputs["duration"].between(MIN_DURATION_MINUTES, MAX_DURATION_MINUTES)]
    frame = frame.reset_index(drop=True)
    if frame.empty:
        raise DataError(
            uri,
            f"no rows left after filtering ({rows_read} read; kept trips of {MIN_DURATION_MINUTES:g}-"
            f"{MAX_DURATION_MINUTES:g} min, pickup in the file's month, known zones, "
            f"distance {MIN_TRIP_DISTANCE_MILES:g}-{MAX_TRIP_DISTANCE_MILES:g} mi)",
        )
    return MonthData(uri, hashlib.sha256(raw).hexdigest(), rows_read, frame, inputs)


def check_columns(uri: str, schema: pa.Schema, columns: Iterable[str]) -> None:
    """Raise DataError naming the column unless each of `columns` is in `schema` with a type it accepts."""
    for column in columns:
        accepts, expected, _ = _COLUMNS[column]
        if column not in schema.names:
            raise DataError(uri, "missing column", column)
        actual = schema.field(column).type
        if not accepts(actual):
            raise DataError(uri, f"wrong type: expected {expected}, got {actual}", column)


def aligned(table: pa.Table | pa.RecordBatch, columns: Iterable[str]) -> pd.DataFrame:
    """`columns` (checked by check_columns) as one dtype each whatever the month: ids float64, so a null
    stays NaN (not a valid zone) instead of failing the cast."""
    names = list(columns)
    return table.select(names).to_pandas().astype({column: _COLUMNS[column][2] for column in names})


def valid_rides(frame: pd.DataFrame) -> np.ndarray:
    """True where an aligned row is a ride the serving validator accepts (trip_core.validity's rules)."""
    return np.asarray(
        known_zones(frame["PULocationID"].to_numpy())
        & known_zones(frame["DOLocationID"].to_numpy())
        & distance_in_bounds(frame["trip_distance"].to_numpy())
        & pickup_known(frame[PICKUP].to_numpy())
    )


def _serving_inputs(frame: pd.DataFrame, month: str | None) -> pd.DataFrame:
    """Rows of the file's month the serving validator would accept, with their `duration` (any value)."""
    frame = frame.dropna()
    duration = (frame[DROPOFF] - frame[PICKUP]).dt.total_seconds() / 60.0
    pickup_month = frame[PICKUP].dt.strftime("%Y-%m")
    if month is None and len(frame):
        month = str(pickup_month.mode().iloc[0])
    keep = (pickup_month == month).to_numpy() & valid_rides(frame)
    out = frame.loc[keep].astype({"PULocationID": "int64", "DOLocationID": "int64"})
    out["duration"] = duration[keep]
    return out.reset_index(drop=True)


def load_months(uris: Sequence[str], reader: ByteReader = read_bytes) -> list[MonthData]:
    return [load_month(uri, reader) for uri in uris]


def concat(months: Sequence[MonthData]) -> pd.DataFrame:
    return pd.concat([month.frame for month in months], ignore_index=True)


def frame_features(frame: pd.DataFrame) -> np.ndarray:
    """The training path to the shared feature definition: whole columns at once."""
    return compute_features(
        frame["PULocationID"].to_numpy(),
        frame["DOLocationID"].to_numpy(),
        frame["trip_distance"].to_numpy(),
        frame[PICKUP].to_numpy(),
    )
