"""Model versions of the loop: the live pointer (S3) is the champion; MLflow, when configured,
numbers the versions and mirrors tags and alias; without it versions are named `loop-<time>` (never a
number, so never one of the numbers `make train`'s MLflow gives)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from lambda_retrain.config import RetrainConfig
from lambda_retrain.ports import Ports, Store, Tracker
from training.gate import RegisteredVersion
from training.pipeline import TrainedCandidate
from trip_core.contracts import (
    BUNDLE_ARTIFACT,
    LIVE_POINTER_KEY,
    PROFILE_ARTIFACT,
    loop_version,
    utc_iso,
    version_pointer_key,
)
from trip_core.observability import logger
from trip_core.pointer import ModelPointer


@dataclass(frozen=True)
class RunLog:
    """What the MLflow run of a candidate records."""

    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float]


class LoopRegistry:
    """training.gate's registry port over the loop's ports."""

    def __init__(self, ports: Ports) -> None:
        self.ports = ports
        self.tags: dict[str, str] = {}

    def alias_holder(self, name: str, alias: str) -> RegisteredVersion | None:
        live = live_pointer(self.ports.models)
        return None if live is None else RegisteredVersion(live.version, live.run_id)

    def bundle_bytes(self, holder: RegisteredVersion) -> bytes:
        pointer = version_pointer(self.ports.models, holder.version) or live_pointer(self.ports.models)
        body = None if pointer is None else self.ports.models.get(pointer.bundle_key)
        return body or b""  # load_bundle raises BundleError: the gate refuses (fails closed)

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tags.update(tags)
        if self.ports.tracker is not None:
            self.ports.tracker.set_version_tags(name, version, tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if self.ports.tracker is not None:
            self.ports.tracker.set_alias(name, alias, version)


def live_pointer(store: Store) -> ModelPointer | None:
    body = store.get(LIVE_POINTER_KEY)
    return None if body is None else ModelPointer.from_json(body)


def version_pointer(store: Store, version: str) -> ModelPointer | None:
    body = store.get(version_pointer_key(version))
    return None if body is None else ModelPointer.from_json(body)


def register(
    ports: Ports,
    config: RetrainConfig,
    now: datetime,
    trained: TrainedCandidate,
    run: RunLog,
) -> RegisteredVersion:
    """A new version of the candidate: an MLflow run + registered version (MLflow numbers every version,
    `make train`'s too), or without MLflow a non-numeric `loop-<time>` that no MLflow number can equal."""
    name = loop_version(now)
    if ports.tracker is None:
        return RegisteredVersion(name, name)
    run_id = ports.tracker.start_run(name, run.params, run.tags)
    _upload_artifacts(ports.tracker, run_id, trained)
    ports.tracker.finish_run(run_id, run.metrics)
    return RegisteredVersion(
        ports.tracker.register_version(config.model_name, run_id, {"run_id": run_id}), run_id
    )


def _upload_artifacts(tracker: Tracker, run_id: str, trained: TrainedCandidate) -> None:
    try:
        tracker.upload_artifact(run_id, BUNDLE_ARTIFACT, trained.bundle)
        tracker.upload_artifact(run_id, PROFILE_ARTIFACT, trained.profile)
    except Exception as exc:  # the S3 copy is what serving reads; the run stays usable without it
        logger.warning(f"MLflow artifact upload failed: {exc}")


def move_alias(ports: Ports, config: RetrainConfig, version: str) -> str:
    """How MLflow's alias followed a pointer move; the pointer is what serving reads, so MLflow failing
    must not stop (or undo) the move."""
    if ports.tracker is None:
        return "not configured"
    try:
        ports.tracker.set_alias(config.model_name, config.alias, version)
    except Exception as exc:
        logger.warning(f"MLflow alias to {version} failed: {exc}")
        return f"alias not moved: {exc}"[:500]
    return f"alias {config.alias} -> {version}"


def make_live(store: Store, pointer: ModelPointer, etag: str, now: datetime) -> bool:
    """serving/live.json := `pointer` (published now, no traffic plan), only if it is still the one read
    at `etag`: a promotion or rollback in between wins. False: it had moved."""
    body = replace(pointer, published_at=utc_iso(now)).to_json().encode()
    return store.put_if_match(LIVE_POINTER_KEY, body, etag) is not None
