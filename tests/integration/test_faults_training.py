"""Training faults (issue 8): corrupt or mismatched data files fail early -- before any fitting, tracking
or publishing -- with the file, the column and the reason; the MLflow server down fails with a clear
error after fitting and publishes nothing. In every case the models bucket (moto) stays empty and no
model is registered.

Tally (printed with -s): faults injected = 5 data files + 1 MLflow down; objects published = 0;
registered versions = 0.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import BUCKET
from tests.integration.test_training_registry import _subset
from training.data import DataError

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _print_tally() -> Iterator[None]:
    yield
    print(f"\n[faults/training] {dict(sorted(TALLY.items()))}")


def _args(tmp_path: Path, train: str, valid: str) -> list[str]:
    return ["--train", train, "--valid", valid, "--out", str(tmp_path / "out"), "--models-bucket", BUCKET,
            "--model-name", "faults-model", "--max-iter", "5"]  # fmt: skip


def _nothing_published(s3: Any, tmp_path: Path) -> None:
    assert s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    db = tmp_path / "mlflow.db"
    if db.exists():
        from mlflow.tracking import MlflowClient

        assert MlflowClient(f"sqlite:///{db}").search_registered_models() == []
    TALLY["objects_published"] += s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0)


def _broken(tmp_path: Path, kind: str) -> tuple[str, str | None, str]:
    """(path, column, reason) of a bad month file."""
    march = pq.read_table(_subset("green_tripdata_2023-03.parquet", tmp_path, 500))
    path = tmp_path / f"bad-{kind}" / "green_tripdata_2023-03.parquet"
    path.parent.mkdir()
    if kind == "truncated":
        good = (tmp_path / "green_tripdata_2023-03.parquet").read_bytes()
        path.write_bytes(good[: len(good) // 2])
        return str(path), None, "not a parquet file"
    if kind == "csv":
        path.write_text("VendorID,PULocationID\n2,74\n")
        return str(path), None, "not a parquet file"
    if kind == "missing column":
        pq.write_table(march.drop_columns(["trip_distance"]), path)
        return str(path), "trip_distance", "missing column"
    if kind == "wrong type":
        ids = pa.array([str(v) for v in march["PULocationID"].to_pylist()])
        pq.write_table(
            march.set_column(march.schema.get_field_index("PULocationID"), "PULocationID", ids), path
        )
        return str(path), "PULocationID", "wrong type: expected integer, got string"
    if kind == "wrong month":  # named March, holds January rides
        pickup = pd.to_datetime(march["lpep_pickup_datetime"].to_pandas()) - pd.DateOffset(months=2)
        dropoff = pd.to_datetime(march["lpep_dropoff_datetime"].to_pandas()) - pd.DateOffset(months=2)
        table = march.set_column(
            march.schema.get_field_index("lpep_pickup_datetime"), "lpep_pickup_datetime", pa.array(pickup)
        )
        table = table.set_column(
            table.schema.get_field_index("lpep_dropoff_datetime"), "lpep_dropoff_datetime", pa.array(dropoff)
        )
        pq.write_table(table, path)
        return str(path), None, "no rows left after filtering"
    raise AssertionError(kind)


@pytest.mark.parametrize("role", ["train", "valid"])
@pytest.mark.parametrize("kind", ["truncated", "csv", "missing column", "wrong type", "wrong month"])
def test_bad_data_file_fails_early_and_registers_nothing(
    mlflow_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, role: str
) -> None:
    from training import model, tracking
    from training.train import main

    def must_not_run(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("reached fitting/tracking with a bad data file")

    monkeypatch.setattr(model, "fit", must_not_run)
    monkeypatch.setattr(tracking, "configure", must_not_run)
    good = _subset("green_tripdata_2023-02.parquet", tmp_path, 500)
    bad, column, reason = _broken(tmp_path, kind)
    train, valid = (bad, good) if role == "train" else (good, bad)
    with pytest.raises(DataError) as error:
        main(_args(tmp_path, train, valid))
    assert (error.value.file, error.value.column) == (bad, column)
    assert reason in str(error.value) and bad in str(error.value)
    assert not (tmp_path / "out").exists()
    _nothing_published(mlflow_s3, tmp_path)
    TALLY["faults_injected"] += 1
    TALLY["data_files_refused"] += 1


def test_mlflow_server_down_fails_clearly_and_publishes_nothing(
    mlflow_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.exceptions import MlflowException

    from training.train import main

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    train = _subset("green_tripdata_2023-02.parquet", tmp_path, 3000)
    valid = _subset("green_tripdata_2023-03.parquet", tmp_path, 1000)
    with pytest.raises(MlflowException) as error:
        main(_args(tmp_path, train, valid))
    message = str(error.value)
    print(f"\n[faults/training] MLflow down -> {type(error.value).__name__}: {message[:160]}")
    assert f"127.0.0.1:{port}" in message and ("Connection refused" in message or "Max retries" in message)
    assert mlflow_s3.list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0
    TALLY["faults_injected"] += 1
    TALLY["mlflow_down_refused"] += 1
