"""What the loop needs from the outside: two object stores (models, capture), the alarms' current state
and, optionally, MLflow and a topic for the rollout's news."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Tagged:
    """An object's body with the ETag it was read at (the condition of a later conditional write)."""

    body: bytes
    etag: str


class Store(Protocol):
    """One bucket. `put` and `put_if_absent` also satisfy training.publish.ObjectStore."""

    def get(self, key: str) -> bytes | None: ...  # None when the key does not exist
    def get_tagged(self, key: str) -> Tagged | None: ...
    def put(self, key: str, body: bytes, content_type: str) -> None: ...
    def put_if_absent(self, key: str, body: bytes, content_type: str) -> str | None: ...  # ETag; None: exists
    def put_if_match(self, key: str, body: bytes, etag: str) -> str | None: ...  # None: changed or gone
    def list_keys(self, prefix: str) -> list[str]: ...


class Alarms(Protocol):
    """CloudWatch's own view of the alarms (DescribeAlarms), not what a notification claims."""

    def states(self, names: tuple[str, ...]) -> dict[str, str]: ...  # name -> ALARM | OK | INSUFFICIENT_DATA


class Tracker(Protocol):
    """The MLflow side of a loop version (REST in Lambda, in-memory in tests)."""

    def start_run(self, name: str, params: dict[str, str], tags: dict[str, str]) -> str: ...
    def finish_run(self, run_id: str, metrics: dict[str, float]) -> None: ...
    def upload_artifact(self, run_id: str, path: str, body: bytes) -> None: ...
    def register_version(self, model_name: str, run_id: str, tags: dict[str, str]) -> str: ...
    def set_version_tags(self, model_name: str, version: str, tags: dict[str, str]) -> None: ...
    def set_alias(self, model_name: str, alias: str, version: str) -> None: ...


class Notifier(Protocol):
    """Where the loop tells people of a rollout's stages (SNS in Lambda)."""

    def publish(self, subject: str, message: str) -> None: ...


@dataclass
class Ports:
    models: Store
    capture: Store
    alarms: Alarms
    tracker: Tracker | None = None
    notifier: Notifier | None = None
