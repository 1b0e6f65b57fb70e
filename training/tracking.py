"""MLflow behind two small pieces: `log_training_run` (one run + its registered version) and
`MlflowRegistry` (the gate's registry port).

Tracking URI from MLFLOW_TRACKING_URI; unset, an embedded SQLite store `mlflow.db` with artifacts
under `mlruns/` in the project root, so training works with no server. MLFLOW_ARTIFACT_LOCATION
(e.g. s3://<models>/mlflow) sets where a newly created experiment stores artifacts when the store
itself does not decide it (SQLite without a server). A server off this host must be https://; its
credentials are the mlflow client's own env names (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME
and MLFLOW_TRACKING_PASSWORD), which nothing here overrides.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from training.gate import RegisteredVersion
from training.model import as_frame
from trip_core.config import ConfigError, tracking_uri_problem
from trip_core.contracts import BUNDLE_ARTIFACT, DEFAULT_EXPERIMENT

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Types of our own fitted pipeline that skops (MLflow's sklearn serialization) does not trust by default.
SKOPS_TRUSTED_TYPES = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.model_selection._split.KFold",
]


def configure() -> str:
    """Set the tracking URI (env or embedded default) and the experiment; returns the URI."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    if problem := tracking_uri_problem(uri):
        raise ConfigError(problem)
    mlflow.set_tracking_uri(uri)  # credentials: the client reads MLFLOW_TRACKING_TOKEN/USERNAME/PASSWORD
    artifacts = os.environ.get("MLFLOW_ARTIFACT_LOCATION")
    if artifacts is None and "MLFLOW_TRACKING_URI" not in os.environ:
        artifacts = (PROJECT_ROOT / "mlruns").as_uri()
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME", DEFAULT_EXPERIMENT)
    if mlflow.get_experiment_by_name(name) is None:
        MlflowClient().create_experiment(name, artifact_location=artifacts)
    mlflow.set_experiment(name)
    return uri


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return result.stdout.strip()


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    version: str


def log_training_run(
    *,
    model_name: str,
    model: Pipeline,
    valid_features: np.ndarray,
    params: dict[str, Any],
    metrics: dict[str, float],
    data: dict[str, Any],
    out_dir: Path,
    bundle_sha256: str,
) -> TrackedRun:
    """One MLflow run (params, metrics, data checksums, git commit, model, bundle, profile), registered."""
    example = as_frame(valid_features[:5])
    with mlflow.start_run() as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        mlflow.set_tags(
            {
                "git_commit": git_commit(),
                "bundle_sha256": bundle_sha256,
                **{
                    f"data.{item['role']}.{Path(item['source']).name}.sha256": item["sha256"]
                    for item in data["files"]
                },
            }
        )
        mlflow.log_dict(data, "data.json")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
        )
        mlflow.log_artifact(str(out_dir / "bundle.npz"), "bundle")
        mlflow.log_artifact(str(out_dir / "reference_profile.json"), "profile")
        version = mlflow.register_model(info.model_uri, model_name, tags={"run_id": run.info.run_id})
    return TrackedRun(run.info.run_id, str(version.version))


class MlflowRegistry:
    """The gate's registry port on MLflow's model registry."""

    def __init__(self, client: MlflowClient | None = None) -> None:
        self._client = client or MlflowClient()

    def alias_holder(self, name: str, alias: str) -> RegisteredVersion | None:
        try:
            version = self._client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        run_id = version.tags.get("run_id") or version.run_id
        return RegisteredVersion(str(version.version), str(run_id))

    def bundle_bytes(self, holder: RegisteredVersion) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            path = mlflow.artifacts.download_artifacts(
                run_id=holder.run_id, artifact_path=BUNDLE_ARTIFACT, dst_path=tmp
            )
            return Path(path).read_bytes()

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._client.set_model_version_tag(name, version, key, value)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self._client.set_registered_model_alias(name, alias, version)
