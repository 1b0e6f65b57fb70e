"""The promotion gate: the challenger replaces the alias holder only if training.decision says it is
better on the same rides, and it is not worse than the champion on the trusted evaluation set.

First of all its bundle must load and pass trip_core.smoke's smoke test (the one serving runs before it
follows a pointer): one that does not is refused and never published, so no pointer ever names it, and
a forced promotion cannot override that.

Both models are scored through their serving bundles (the exact code serving runs), on
1. the fresh holdout (the latest rides), by the paired rule of training.decision, and
2. the evaluation set (training.evaluation_set: TLC records no client can write): the challenger's MAE
   there may not exceed the champion's by more than EVAL_MARGIN.
A champion that cannot be scored, or a required evaluation set that cannot be read, refuses (fails
closed). With no champion at all, the challenger's RMSE must stay under the absolute bound.
Registry and object store are ports, so this logic is plain and tested with in-memory fakes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import numpy as np

from training import decision, metrics
from training.evaluation_set import EvaluationSet
from training.publish import ObjectStore, publish_live, publish_version
from trip_core.bundle import ServingBundle, load_bundle
from trip_core.contracts import PRODUCTION_ALIAS, bundle_key, profile_key, utc_iso
from trip_core.pointer import ModelPointer
from trip_core.smoke import smoke_test

log = logging.getLogger(__name__)

# Minutes of evaluation-set MAE the challenger may lose to the champion. A model adapted to drift loses
# some on an older month (bench_decision's "eval_drift_penalty": a 2023 model on 2021-02 vs a 2021
# model), more when it is fitted on only the few thousand rides of a retrain's lookback; a model trained
# on forged labels loses several minutes (tests/integration/test_gate_evaluation.py). The margin lets
# the first through and not the second; an evaluation set refreshed to the latest month keeps the first
# small.
EVAL_MARGIN = 1.0


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
    absolute_bound: float = 10.0  # RMSE a first model must stay under (the course baseline is ~6-8)
    eval_margin: float = EVAL_MARGIN
    promote_live: bool = True  # False: a passing version is published, not made live (a staged rollout)


@dataclass(frozen=True)
class Rides:
    """Rides both models are scored on."""

    features: np.ndarray
    target: np.ndarray
    pickup: np.ndarray  # datetime64: the pickup-hour clusters of the paired rule


@dataclass(frozen=True)
class EvaluationScore:
    """Champion vs challenger on the evaluation set."""

    lineage: dict[str, str | int]
    challenger_mae: float
    champion_mae: float | None

    @property
    def loss(self) -> float:
        """Minutes of MAE the challenger loses to the champion there (negative: it gains)."""
        return float("nan") if self.champion_mae is None else self.challenger_mae - self.champion_mae

    def figures(self) -> dict[str, object]:
        return {**self.lineage, "challenger_mae": self.challenger_mae, "champion_mae": self.champion_mae}


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    verdict: str
    challenger_rmse: float
    champion_rmse: float | None
    champion_version: str | None
    holdout: decision.Comparison | None = None
    evaluation: EvaluationScore | None = None
    figures: dict[str, object] = field(default_factory=dict)
    bundle_refused: bool = False  # the challenger's bundle failed to load or its smoke test: not published

    def tags(self) -> dict[str, str]:
        tags = {
            "gate.verdict": self.verdict[:4000],
            "gate.promoted": str(self.promote).lower(),
            "gate.challenger_rmse": f"{self.challenger_rmse:.6f}",
            "gate.champion_rmse": "none" if self.champion_rmse is None else f"{self.champion_rmse:.6f}",
            "gate.champion_version": self.champion_version or "none",
        }
        if self.holdout is not None:
            tags.update(
                {
                    "gate.holdout_gain": f"{self.holdout.gain:.6f}",
                    "gate.holdout_se": f"{self.holdout.se:.6f}",
                    "gate.holdout_outcome": str(self.holdout.outcome),
                }
            )
        if self.evaluation is not None:
            tags.update(
                {
                    "gate.eval_key": str(self.evaluation.lineage["key"]),
                    "gate.eval_sha256": str(self.evaluation.lineage["sha256"]),
                    "gate.eval_challenger_mae": f"{self.evaluation.challenger_mae:.6f}",
                    "gate.eval_champion_mae": "none"
                    if self.evaluation.champion_mae is None
                    else f"{self.evaluation.champion_mae:.6f}",
                }
            )
        return tags

    def record(self) -> dict[str, object]:
        """The gate's figures for the audit record."""
        return {
            "holdout": None if self.holdout is None else self.holdout.figures(),
            "evaluation": None if self.evaluation is None else self.evaluation.figures(),
        }


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


@dataclass(frozen=True)
class Yardstick:
    """The evaluation set the gate scores on, or why it cannot (required: refuse)."""

    evaluation: EvaluationSet | None = None
    error: str | None = None
    required: bool = False


def first_model(candidate: Candidate, config: GateConfig, evaluation: EvaluationScore | None) -> GateDecision:
    """No champion: the holdout (which clients label) and the evaluation set (which they cannot) must both
    stay under the bound, the evaluation set by its MAE."""
    bound = config.absolute_bound
    if evaluation is not None and not evaluation.challenger_mae < bound:
        mae = evaluation.challenger_mae
        verdict = f"refused: no champion, evaluation-set MAE {mae:.3f} not under the bound {bound:g}"
        return GateDecision(False, verdict, candidate.rmse, None, None, evaluation=evaluation)
    ok = bool(candidate.rmse < bound)
    word = "promoted" if ok else "refused"
    verdict = f"{word}: no champion, RMSE {'' if ok else 'not '}under the bound {bound:g}"
    return GateDecision(ok, verdict, candidate.rmse, None, None, evaluation=evaluation)


def champion_bundle(registry: ModelRegistry, holder: RegisteredVersion) -> ServingBundle | str:
    """The champion's serving bundle, or why it cannot be scored."""
    try:
        bundle = load_bundle(registry.bundle_bytes(holder))
    except Exception as exc:  # any failure to read it: the gate fails closed, never on the bound
        return f"{type(exc).__name__}: {exc}"[:500]
    return bundle


def challenger_bundle(candidate: Candidate) -> ServingBundle | str:
    """The challenger's serving bundle, or why it is not fit to serve (it does not load, or fails the
    smoke test)."""
    try:
        bundle = load_bundle(candidate.bundle, candidate.bundle_sha256)
        smoke_test(bundle)
    except Exception as exc:  # whatever the bytes make loading or predicting raise: refused, never published
        return f"{type(exc).__name__}: {exc}"[:500]
    return bundle


def _predict(bundle: ServingBundle, features: np.ndarray) -> np.ndarray | str:
    try:
        return bundle.predict(features)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:500]


def judge(
    candidate: Candidate,
    champion: ServingBundle | str | None,
    champion_version: str | None,
    holdout: Rides,
    yardstick: Yardstick,
    config: GateConfig,
) -> GateDecision:
    """The gate's verdict (no side effects)."""
    challenger = challenger_bundle(candidate)
    if isinstance(challenger, str):
        verdict = f"refused: the challenger's bundle is not fit to serve ({challenger})"
        return GateDecision(False, verdict, candidate.rmse, None, champion_version, bundle_refused=True)

    def refused(verdict: str) -> GateDecision:
        return GateDecision(False, f"refused: {verdict}", candidate.rmse, None, champion_version)

    if not np.isfinite(candidate.rmse):
        return refused("challenger RMSE is not finite")
    if yardstick.evaluation is None and yardstick.required:
        return refused(f"evaluation set unusable ({yardstick.error})")
    if isinstance(champion, str):
        return refused(f"champion version {champion_version} cannot be scored ({champion})")
    evaluation = _evaluation_score(challenger, champion, yardstick.evaluation)
    if isinstance(evaluation, str):
        return refused(
            f"champion version {champion_version} cannot be scored on the evaluation set ({evaluation})"
        )
    if champion is None:
        return first_model(candidate, config, evaluation)
    return _compared(candidate, challenger, champion, champion_version, holdout, evaluation, config)


def _evaluation_score(
    challenger: ServingBundle, champion: ServingBundle | None, evaluation: EvaluationSet | None
) -> EvaluationScore | str | None:
    if evaluation is None:
        return None
    champion_pred = None if champion is None else _predict(champion, evaluation.features)
    if isinstance(champion_pred, str):
        return champion_pred
    challenger_mae = metrics.mae(challenger.predict(evaluation.features), evaluation.target)
    champion_mae = None if champion_pred is None else metrics.mae(champion_pred, evaluation.target)
    return EvaluationScore(evaluation.lineage(), challenger_mae, champion_mae)


def _compared(
    candidate: Candidate,
    challenger: ServingBundle,
    champion: ServingBundle,
    champion_version: str | None,
    holdout: Rides,
    evaluation: EvaluationScore | None,
    config: GateConfig,
) -> GateDecision:
    champion_pred = _predict(champion, holdout.features)
    if isinstance(champion_pred, str):
        verdict = f"refused: champion version {champion_version} cannot be scored ({champion_pred})"
        return GateDecision(False, verdict, candidate.rmse, None, champion_version, evaluation=evaluation)
    champion_rmse = metrics.rmse(champion_pred, holdout.target)
    compared = decision.compare(
        champion_pred, challenger.predict(holdout.features), holdout.target, holdout.pickup
    )

    def decided(promote: bool, verdict: str) -> GateDecision:
        return GateDecision(
            promote, verdict, candidate.rmse, champion_rmse, champion_version, compared, evaluation
        )

    if compared.outcome != decision.Outcome.BETTER:
        return decided(False, f"refused: holdout {compared.outcome}: {compared.summary()}")
    if evaluation is not None and not evaluation.loss <= config.eval_margin:
        return decided(
            False,
            f"refused: worse on the evaluation set {evaluation.lineage['month']} by {evaluation.loss:.3f} min"
            f" of MAE ({evaluation.challenger_mae:.3f} vs {evaluation.champion_mae:.3f}; margin"
            f" {config.eval_margin:g}), though better on the holdout: {compared.summary()}",
        )
    on_eval = "" if evaluation is None else f"; evaluation set MAE change {evaluation.loss:+.3f} min"
    return decided(True, f"promoted: holdout {compared.outcome}: {compared.summary()}{on_eval}")


def gate_and_publish(
    candidate: Candidate,
    registry: ModelRegistry,
    store: ObjectStore | None,
    holdout: Rides,
    config: GateConfig,
    yardstick: Yardstick | None = None,
) -> GateDecision:
    holder = registry.alias_holder(candidate.model_name, config.alias)
    if holder is not None and holder.version == candidate.version:
        holder = None
    champion = None if holder is None else champion_bundle(registry, holder)
    result = judge(
        candidate,
        champion,
        None if holder is None else holder.version,
        holdout,
        yardstick or Yardstick(),
        config,
    )
    registry.set_version_tags(candidate.model_name, candidate.version, result.tags())
    log.info("gate: %s", result.verdict)

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
    elif result.bundle_refused:
        log.warning("gate: version %s not published: its bundle is not fit to serve", candidate.version)
    else:
        publish_version(store, pointer, candidate.bundle, candidate.profile)
    if result.promote and config.promote_live:
        registry.set_alias(candidate.model_name, config.alias, candidate.version)
        if store is not None:
            publish_live(store, pointer)
    return result
