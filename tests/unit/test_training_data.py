"""Loading TLC months: schema alignment, filters, and a clear error for each kind of bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from training.data import DataError, load_month, load_months, month_from_name
from trip_core.contracts import MAX_TRIP_DISTANCE_MILES

DATA = Path(__file__).resolve().parents[2] / "data"


def _table(n: int = 4, month: str = "2023-03", **overrides: pa.Array) -> pa.Table:
    pickup = pd.date_range(f"{month}-05 08:00", periods=n, freq="h").as_unit("us")
    columns: dict[str, pa.Array] = {
        "lpep_pickup_datetime": pa.array(pickup),
        "lpep_dropoff_datetime": pa.array(pickup + pd.Timedelta(minutes=12)),
        "PULocationID": pa.array([74] * n, pa.int32()),
        "DOLocationID": pa.array([75] * n, pa.int32()),
        "trip_distance": pa.array([2.5] * n, pa.float64()),
        "ehail_fee": pa.nulls(n),
    }
    columns.update(overrides)
    return pa.table(columns)


def _write(tmp_path: Path, table: pa.Table, name: str = "green_tripdata_2023-03.parquet") -> str:
    path = tmp_path / name
    pq.write_table(table, path)
    return str(path)


def test_months_with_different_schemas_align() -> None:
    old, new = load_months(
        [str(DATA / "green_tripdata_2023-01.parquet"), str(DATA / "green_tripdata_2023-02.parquet")]
    )
    assert old.frame.dtypes.equals(new.frame.dtypes)
    assert str(new.frame["PULocationID"].dtype) == "int64"
    assert new.frame["duration"].between(1, 60).all()
    assert (new.frame["lpep_pickup_datetime"].dt.strftime("%Y-%m") == "2023-02").all()
    assert len(old.sha256) == 64 and old.rows_read > old.rows > 0


def test_filters_duration_month_distance_and_unknown_zones(tmp_path: Path) -> None:
    pickup = pd.to_datetime(["2023-03-05 08:00"] * 3 + ["2009-01-01 00:00"] + ["2023-03-05 09:00"] * 2)
    dropoff = pickup + pd.to_timedelta([12, 0.5, 61, 10, 12, 12], unit="min")
    table = _table(
        6,
        lpep_pickup_datetime=pa.array(pickup.as_unit("us")),
        lpep_dropoff_datetime=pa.array(dropoff.as_unit("us")),
        trip_distance=pa.array([2.0, 2.0, 2.0, 2.0, MAX_TRIP_DISTANCE_MILES + 1, 2.0]),
        DOLocationID=pa.array([75, 75, 75, 75, 75, 999], pa.int64()),
    )
    month = load_month(_write(tmp_path, table))
    assert month.rows_read == 6 and month.rows == 1
    assert month.frame["duration"].tolist() == [12.0]


def test_dominant_month_when_the_name_has_none(tmp_path: Path) -> None:
    pickup = pd.to_datetime(["2023-03-05 08:00", "2023-03-06 09:00", "2023-04-01 10:00"]).as_unit("us")
    table = _table(
        3,
        lpep_pickup_datetime=pa.array(pickup),
        lpep_dropoff_datetime=pa.array(pickup + pd.Timedelta(minutes=10)),
    )
    assert month_from_name("s3://bucket/trips.parquet") is None
    assert load_month(_write(tmp_path, table, "trips.parquet")).rows == 2


def test_s3_uri_goes_through_the_reader_port(tmp_path: Path) -> None:
    body = Path(_write(tmp_path, _table())).read_bytes()
    seen: list[str] = []

    def reader(uri: str) -> bytes:
        seen.append(uri)
        return body

    month = load_month("s3://bucket/green_tripdata_2023-03.parquet", reader)
    assert seen == ["s3://bucket/green_tripdata_2023-03.parquet"] and month.rows == 4


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "green_tripdata_2023-03.parquet"
    path.write_text("VendorID,PULocationID\n1,2\n")
    with pytest.raises(DataError, match="not a parquet file") as err:
        load_month(str(path))
    assert err.value.file == str(path) and err.value.column is None


def test_missing_column(tmp_path: Path) -> None:
    path = _write(tmp_path, _table().drop_columns(["trip_distance"]))
    with pytest.raises(DataError, match="missing column") as err:
        load_month(path)
    assert (err.value.file, err.value.column) == (path, "trip_distance")
    assert path in str(err.value) and "trip_distance" in str(err.value)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("PULocationID", pa.array(["74"] * 4)),
        ("trip_distance", pa.array(["2.5"] * 4)),
        ("lpep_pickup_datetime", pa.array(["2023-03-05 08:00"] * 4)),
    ],
)
def test_wrong_type(tmp_path: Path, column: str, values: pa.Array) -> None:
    path = _write(tmp_path, _table(**{column: values}))
    with pytest.raises(DataError, match="wrong type") as err:
        load_month(path)
    assert (err.value.file, err.value.column) == (path, column)


def test_no_rows_left(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(), "green_tripdata_2023-04.parquet")  # all pickups in March
    with pytest.raises(DataError, match="no rows left") as err:
        load_month(path)
    assert err.value.file == path


def test_all_null_location_ids_leave_no_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, _table(PULocationID=pa.array([None] * 4, pa.float64())))
    with pytest.raises(DataError, match="no rows left"):
        load_month(path)


def test_float_location_ids_are_accepted(tmp_path: Path) -> None:
    month = load_month(_write(tmp_path, _table(PULocationID=pa.array([74.0] * 4))))
    assert month.frame["PULocationID"].tolist() == [74] * 4
    assert np.issubdtype(month.frame["PULocationID"].dtype, np.integer)


def test_the_serving_inputs_keep_every_duration_the_training_rows_drop(tmp_path: Path) -> None:
    """The reference profile describes what serving sees: a ride with a meter error still asks."""
    pickup = pd.to_datetime(["2023-03-05 08:00"] * 4)
    dropoff = pickup + pd.to_timedelta([12, 0, -3, 900], unit="min")
    table = _table(
        4,
        lpep_pickup_datetime=pa.array(pickup.as_unit("us")),
        lpep_dropoff_datetime=pa.array(dropoff.as_unit("us")),
        trip_distance=pa.array([2.0, 0.0, 1.0, MAX_TRIP_DISTANCE_MILES + 1]),
    )
    month = load_month(_write(tmp_path, table))
    assert month.frame["duration"].tolist() == [12.0]
    assert month.inputs["duration"].tolist() == [12.0, 0.0, -3.0]  # the 101-mile ride is refused
