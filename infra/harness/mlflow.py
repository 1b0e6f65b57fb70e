"""The scenarios' view of the MLflow registry: the loop's own REST client (lambda_retrain.mlflow_rest)
plus the two reads a scenario checks (an alias's version, a version's tags)."""

from __future__ import annotations

import os

from lambda_retrain.mlflow_rest import MlflowError, MlflowRest
from trip_core.contracts import DEFAULT_EXPERIMENT

MLFLOW_URL = f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}"


class Registry(MlflowRest):
    def __init__(self, tracking_uri: str = MLFLOW_URL) -> None:
        super().__init__(tracking_uri, DEFAULT_EXPERIMENT, timeout=10)

    def alias_version(self, model: str, alias: str) -> str | None:
        """The version `alias` points at; None if there is none (or the server does not answer)."""
        try:
            found = self._call("GET", "/registered-models/alias", {"name": model, "alias": alias})
        except (MlflowError, OSError):
            return None
        return str(found["model_version"]["version"])

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        found = self._call("GET", "/model-versions/get", {"name": model, "version": version})
        return {t["key"]: t["value"] for t in found["model_version"].get("tags", [])}
