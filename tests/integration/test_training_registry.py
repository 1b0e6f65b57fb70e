"""Real MLflow (SQLite store in a tmp dir, artifacts on moto's S3): train twice through the CLI.

The first run is registered and promoted (alias + live pointer in S3) and publishes the evaluation set; the
identical second run ties and is registered and published as a version but not promoted.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import BUCKET
from trip_core.bundle import load_bundle
from trip_core.contracts import LIVE_POINTER_KEY
from trip_core.pointer import ModelPointer

DATA = Path(__file__).resolve().parents[2] / "data"


def _subset(src: str, dst: Path, rows: int) -> str:
    pq.write_table(pq.read_table(DATA / src).slice(0, rows), dst / src)
    return str(dst / src)


def test_register_promote_and_publish(tmp_path: Path, mlflow_s3: object) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    from training.train import main

    client = mlflow_s3
    train = _subset("green_tripdata_2023-02.parquet", tmp_path, 5000)
    valid = _subset("green_tripdata_2023-03.parquet", tmp_path, 2000)
    args = ["--train", train, "--valid", valid, "--out", str(tmp_path / "out"), "--models-bucket", BUCKET]
    args += ["--model-name", "it-model", "--max-iter", "30"]

    first = main(args)
    second = main(args)

    assert (first["version"], first["promoted"]) == ("1", True)
    assert (second["version"], second["promoted"]) == ("2", False)
    registry = MlflowClient()
    assert str(registry.get_model_version_by_alias("it-model", "production").version) == "1"
    tags = registry.get_model_version("it-model", "2").tags
    assert tags["gate.verdict"].startswith("refused: holdout not better")
    assert tags["gate.eval_key"] == "evaluation/2023-03.npz"  # make train published its validation month
    assert float(tags["gate.champion_rmse"]) == pytest.approx(float(tags["gate.challenger_rmse"]))

    def get(key: str) -> bytes:
        return client.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]

    live = ModelPointer.from_json(get(LIVE_POINTER_KEY))
    assert (live.model_name, live.version, live.run_id) == ("it-model", "1", first["run_id"])
    assert load_bundle(get(live.bundle_key), expected_sha256=live.bundle_sha256).model_name == "it-model"
    assert get(live.profile_key).startswith(b"{")
    assert ModelPointer.from_json(get("serving/versions/2.json")).version == "2"
    assert json.loads(get("evaluation/current.json"))["key"] == tags["gate.eval_key"]

    run = mlflow.get_run(str(first["run_id"]))
    assert run.info.artifact_uri.startswith(f"s3://{BUCKET}/mlflow")
    assert {"rmse", "mae", "rmse_pu_Manhattan", "parity_max_abs_diff"} <= set(run.data.metrics)
    assert "git_commit" in run.data.tags
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET, Prefix="mlflow/")["Contents"]}  # type: ignore[attr-defined]
    assert any(k.endswith("bundle/bundle.npz") for k in keys)
    assert any(k.endswith("profile/reference_profile.json") for k in keys)
