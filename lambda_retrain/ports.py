"""What the loop needs from the outside: two object stores (models, capture) and, optionally, MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class Store(Protocol):
    """One bucket. `put` also satisfies training.publish.ObjectStore."""

    def get(self, key: str) -> bytes | None: ...  # None when the key does not exist
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def put_if_absent(self, key: str, body: bytes) -> bool: ...  # False when the key exists
    def delete(self, key: str) -> None: ...
    def list_keys(self, prefix: str) -> list[str]: ...


class Tracker(Protocol):
    """The MLflow side of a loop version (REST in Lambda, in-memory in tests)."""

    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str: ...
    def finish_run(self, run_id: str, metrics: dict[str, float]) -> None: ...
    def upload_artifact(self, run_id: str, path: str, body: bytes) -> None: ...
    def register_version(self, model_name: str, run_id: str, tags: dict[str, str]) -> str: ...
    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None: ...
    def set_alias(self, model_name: str, alias: str, version: str) -> None: ...


@dataclass
class Ports:
    models: Store
    capture: Store
    tracker: Tracker | None = None
