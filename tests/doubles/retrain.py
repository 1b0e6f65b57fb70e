"""In-memory doubles of the loop's ports, for tests and in-process runs."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from lambda_retrain.guards import Lease, acquire_lock
from lambda_retrain.ports import Store, Tagged


class MemoryStore:
    """A bucket in a dict; ETags as S3 computes them for a single-part upload (MD5 of the body)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def get_tagged(self, key: str) -> Tagged | None:
        body = self.objects.get(key)
        return None if body is None else Tagged(body, self.etag(key))

    def etag(self, key: str) -> str:
        return f'"{hashlib.md5(self.objects[key]).hexdigest()}"'  # S3's ETag, not security

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = body

    def put_if_absent(self, key: str, body: bytes, content_type: str = "application/json") -> str | None:
        if key in self.objects:
            return None
        self.objects[key] = body
        return self.etag(key)

    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None:
        if key not in self.objects or self.etag(key) != etag:
            return None
        self.objects[key] = body
        return self.etag(key)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))


class StaticAlarms:
    """The alarms' states as CloudWatch would describe them; unknown names are absent, as there."""

    def __init__(self, states: dict[str, str] | None = None) -> None:
        self.current = dict(states or {})

    def states(self, names: tuple[str, ...]) -> dict[str, str]:
        return {name: self.current[name] for name in names if name in self.current}


class ReadThenRace:
    """A Store whose first read of the lock lets a rival take the lock over before the reader acts on
    what it read: the interleaving of two takers of one expired lease, made deterministic."""

    def __init__(self, store: Store, rival: Any) -> None:
        self.store, self.rival, self.raced = store, rival, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_tagged(self, key: str) -> Tagged | None:
        seen = self.store.get_tagged(key)
        if not self.raced:
            self.raced = True
            self.rival()
        return seen


def race_for_an_expired_lease(store: Store, now: datetime) -> tuple[Lease | None, Lease | None]:
    """Two takers of one expired lease: (the first reader's lease, its rival's lease)."""
    assert acquire_lock(store, now, 60, "crashed run") is not None
    later = now + timedelta(seconds=61)
    won: dict[str, Any] = {}
    racing = ReadThenRace(store, lambda: won.update(rival=acquire_lock(store, later, 60, "rival")))
    first = acquire_lock(racing, later, 60, "first")
    return first, won["rival"]


class MlflowClientTracker:
    """The Tracker port over the mlflow client: the same registry (and numbering) `make train` uses, for
    tests that need both paths on one MLflow without a REST server."""

    def __init__(self, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)

    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        for key, value in params.items():
            self.client.log_param(run.info.run_id, key, value)
        return str(run.info.run_id)

    def finish_run(self, run_id: str, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.client.log_metric(run_id, key, value)
        self.client.set_terminated(run_id)

    def upload_artifact(self, run_id: str, path: str, body: bytes) -> None:
        import tempfile
        from pathlib import Path

        folder, name = path.rsplit("/", 1)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / name).write_bytes(body)
            self.client.log_artifact(run_id, str(Path(tmp) / name), folder)

    def register_version(self, model_name: str, run_id: str, tags: dict[str, str]) -> str:
        from contextlib import suppress

        from mlflow.exceptions import MlflowException

        with suppress(MlflowException):  # already registered (by `make train` or an earlier loop run)
            self.client.create_registered_model(model_name)
        source = self.client.get_run(run_id).info.artifact_uri
        return str(self.client.create_model_version(model_name, source, run_id, tags=tags).version)

    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(model_name, version, key, value)

    def set_alias(self, model_name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(model_name, alias, version)
