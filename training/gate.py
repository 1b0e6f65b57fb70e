"""The promotion gate: the challenger replaces the alias holder only if better by a margin.

Both models are scored on the same validation rows; the champion through its serving bundle (the
exact code serving runs). Registry and object store are ports, so this logic is plain and tested
with in-memory fakes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from training.publish import ObjectStore, publish_live, publish_version
from trip_core.bundle import BundleError, load_bundle
from trip_core.contracts import PRODUCTION_ALIAS, bundle_key, profile_key, utc_iso
from trip_core.pointer import ModelPointer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegisteredVersion:
    version: str
    run_id: str


class ModelRegistry(Protocol):
    def alias_holder(self, name: str, alias: str) -> RegisteredVersion | None: ...
    def bundle_bytes(self, holder: RegisteredVersion) -> bytes: ...
    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None: ...
    def set_alias(self, name: str, alias: str, version: str) -> None: ...


@dataclass(frozen=True)
class GateConfig:
    alias: str = PRODUCTION_ALIAS
    margin: float = 0.05  # minutes of validation RMSE the challenger must gain over the champion
    absolute_bound: float = 10.0  # RMSE a first model must stay under (the course baseline is ~6-8)


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    verdict: str
    challenger_rmse: float
    champion_rmse: float | None
    champion_version: str | None
    margin: float

    def tags(self) -> dict[str, str]:
        return {
            "gate.verdict": self.verdict,
            "gate.promoted": str(self.promote).lower(),
            "gate.challenger_rmse": f"{self.challenger_rmse:.6f}",
            "gate.champion_rmse": "none" if self.champion_rmse is None else f"{self.champion_rmse:.6f}",
            "gate.champion_version": self.champion_version or "none",
            "gate.margin": f"{self.margin:g}",
        }


def decide(
    challenger_rmse: float,
    champion_rmse: float | None,
    config: GateConfig,
    champion_version: str | None = None,
) -> GateDecision:
    def decision(promote: bool, verdict: str) -> GateDecision:
        return GateDecision(promote, verdict, challenger_rmse, champion_rmse, champion_version, config.margin)

    if not np.isfinite(challenger_rmse):
        return decision(False, "rejected: challenger RMSE is not finite")
    if champion_rmse is None:
        if challenger_rmse < config.absolute_bound:
            return decision(True, f"promoted: no champion, RMSE under the bound {config.absolute_bound:g}")
        return decision(False, f"rejected: no champion, RMSE not under the bound {config.absolute_bound:g}")
    if challenger_rmse < champion_rmse - config.margin:
        return decision(True, f"promoted: better than the champion by more than {config.margin:g}")
    return decision(False, f"rejected: not better than the champion by more than {config.margin:g}")


@dataclass(frozen=True)
class Candidate:
    model_name: str
    version: str
    run_id: str
    bundle: bytes
    profile: bytes
    rmse: float
    mae: float
    bundle_sha256: str


def champion_rmse(
    registry: ModelRegistry, holder: RegisteredVersion, features: np.ndarray, target: np.ndarray
) -> float | None:
    """The champion's RMSE on the challenger's validation rows; None if its bundle is unusable."""
    try:
        bundle = load_bundle(registry.bundle_bytes(holder))
    except BundleError as exc:
        log.warning(
            "champion version %s has an unusable bundle (%s); gating on the bound", holder.version, exc
        )
        return None
    return float(np.sqrt(np.mean((bundle.predict(features) - target) ** 2)))


def gate_and_publish(
    candidate: Candidate,
    registry: ModelRegistry,
    store: ObjectStore | None,
    features: np.ndarray,
    target: np.ndarray,
    config: GateConfig,
) -> GateDecision:
    holder = registry.alias_holder(candidate.model_name, config.alias)
    if holder is not None and holder.version == candidate.version:
        holder = None
    champion = None if holder is None else champion_rmse(registry, holder, features, target)
    decision = decide(candidate.rmse, champion, config, None if holder is None else holder.version)
    registry.set_version_tags(candidate.model_name, candidate.version, decision.tags())
    log.info("gate: %s (challenger %.4f, champion %s)", decision.verdict, candidate.rmse, champion)

    pointer = ModelPointer(
        model_name=candidate.model_name,
        version=candidate.version,
        bundle_key=bundle_key(candidate.model_name, candidate.version),
        bundle_sha256=candidate.bundle_sha256,
        profile_key=profile_key(candidate.model_name, candidate.version),
        validation_rmse=candidate.rmse,
        validation_mae=candidate.mae,
        run_id=candidate.run_id,
        published_at=utc_iso(datetime.now(UTC).replace(microsecond=0)),
    )
    if store is None:
        log.info("no models bucket configured (MODELS_BUCKET or --models-bucket): S3 publishing skipped")
    else:
        publish_version(store, pointer, candidate.bundle, candidate.profile)
    if decision.promote:
        registry.set_alias(candidate.model_name, config.alias, candidate.version)
        if store is not None:
            publish_live(store, pointer)
    return decision
