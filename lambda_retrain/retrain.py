"""A retrain (drift-share ALARM, or a direct invoke), behind the guards (guards.py):

data    the RETRAIN_TARGET_ROWS most recent captured + labelled rides (labelled.gather_recent: read
        backwards from now, at most RETRAIN_MAX_LOOKBACK_DAYS), ordered by pickup time; the latest
        HOLDOUT_FRACTION is the fresh holdout the challenger does not train on;
mix     the champion's own training rows (models/<name>/<v>/training_rows.npz, when it left them) with
        the recent ones, each recent row weighing (champion rows / RETRAIN_TARGET_ROWS), at least 1: at
        the target the recent rows weigh as much as all the old ones. Measured (benchmarks/
        bench_retrain_volume.py, 2021 champion, 2023-03): on the week after, 10k recent rows alone were
        worse than the champion, mixed in this way better; the fitted rows are kept for the next retrain;
train   training.pipeline: fit, parity-checked bundle, reference profile of the holdout;
gate    training.gate.gate_and_publish: challenger vs the live pointer's bundle by training.decision's
        paired rule on that holdout, and on the trusted evaluation set (training.evaluation_set; missing,
        unreadable or not matching its sha256: refused); publishes the version (bundle, profile,
        serving/versions/<v>.json) and, on promotion, serving/live.json (+ the MLflow alias when
        MLflow is configured). A bundle failing its smoke test (trip_core.smoke) is refused and not
        published, whatever `force_promote` says. Under a rollout policy (PROMOTION_POLICY auto or
        approve) a passed or forced challenger goes into shadow (rollout.py), never straight live.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from lambda_retrain import rollout
from lambda_retrain.audit import Decision, DecisionKind, read_state, record_base, record_decision, write_state
from lambda_retrain.config import RetrainConfig
from lambda_retrain.guards import cooldown_left, holding_lock
from lambda_retrain.labelled import LabelledRides, gather_recent
from lambda_retrain.ports import Ports, Store
from lambda_retrain.registry import (
    LoopRegistry,
    RunLog,
    live_pointer,
    register,
    version_pointer,
)
from lambda_retrain.triggers import Trigger
from training import evaluation_set, metrics
from training.evaluation_set import EvaluationSetError
from training.gate import GateConfig, RegisteredVersion, Rides, Yardstick, gate_and_publish
from training.model import ModelParams
from training.pipeline import Rows, TrainedCandidate, decode_rows, encode_rows, mixed, train_candidate
from training.publish import publish_live
from trip_core.bundle import load_bundle
from trip_core.contracts import training_rows_key, utc_iso
from trip_core.pointer import ModelPointer

TRAINED_BY = "lambda_retrain"


@dataclass(frozen=True)
class Split:
    train: LabelledRides
    holdout: LabelledRides


@dataclass(frozen=True)
class GateOutcome:
    promoted: bool  # made live
    verdict: str
    forced: bool  # promoted by the invoker against the gate
    champion_rmse: float | None
    figures: dict[str, Any]  # the gate's holdout and evaluation-set comparisons
    staged: bool = False  # passed, and goes into a staged rollout (rollout.py) instead of live


@dataclass(frozen=True)
class Retrained:
    """A gated challenger: what the loop state and the audit record keep of it."""

    trained: TrainedCandidate
    registered: RegisteredVersion
    champion: ModelPointer | None  # the live version it was gated against
    champion_mae: float | None
    outcome: GateOutcome
    gate_tags: dict[str, str]

    def record(self, config: RetrainConfig) -> dict[str, Any]:
        return {
            "verdict": self.outcome.verdict,
            "promoted": self.outcome.promoted,
            "version": self.registered.version,
            "run_id": self.registered.run_id,
            "champion_version": None if self.champion is None else self.champion.version,
            "metrics": {
                "challenger_holdout_rmse": self.trained.rmse,
                "challenger_holdout_mae": self.trained.mae,
                "champion_holdout_rmse": self.outcome.champion_rmse,
                "champion_holdout_mae": self.champion_mae,
                "gate": self.outcome.figures,
                "fit_seconds": round(self.trained.fit_seconds, 2),
                "n_trees": self.trained.n_trees,
                "parity_max_abs_diff": self.trained.parity_max_abs_diff,
            },
            "gate_tags": self.gate_tags,
        }


def retrain(trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str) -> Decision:
    base = record_base(trigger, config, now, actor)
    state = read_state(ports.models)
    left = 0.0 if trigger.skip_cooldown else cooldown_left(state, now, config.cooldown_minutes)
    if left > 0:
        verdict = f"skipped: cooldown, {left:.0f} min left of {config.cooldown_minutes:g}"
        return record_decision(ports, now, DecisionKind.SKIPPED, {**base, "verdict": verdict, "state": state})
    with holding_lock(ports.models, now, config.lock_lease_seconds, actor) as lease:
        if lease is None:
            verdict = "skipped: another retrain holds the lock"
            return record_decision(ports, now, DecisionKind.SKIPPED, {**base, "verdict": verdict})
        return _retrain_locked(trigger, ports, config, now, base, state)


def split_holdout(rides: LabelledRides, fraction: float) -> Split:
    n_hold = max(1, math.ceil(len(rides) * fraction))
    index = np.arange(len(rides))
    return Split(rides.rows(index < len(rides) - n_hold), rides.rows(index >= len(rides) - n_hold))


def _retrain_locked(
    trigger: Trigger,
    ports: Ports,
    config: RetrainConfig,
    now: datetime,
    base: dict[str, Any],
    state: dict[str, Any],
) -> Decision:
    started = time.perf_counter()
    rides = gather_recent(ports.capture, now, config.target_rows, config.max_lookback)
    data = dict(rides.summary)
    if len(rides) < config.min_labelled_rows:
        verdict = (
            f"skipped: {len(rides)} labelled rows within RETRAIN_MAX_LOOKBACK_DAYS "
            f"{config.max_lookback_days:g} < MIN_LABELLED_ROWS {config.min_labelled_rows}"
        )
        return record_decision(ports, now, DecisionKind.SKIPPED, {**base, "verdict": verdict, "data": data})
    split = split_holdout(rides, config.holdout_fraction)
    data.update(_split_summary(split, config.holdout_fraction))
    state = {**state, "last_retrain_at": utc_iso(now)}  # the attempt counts, even if the fit fails
    write_state(ports.models, state)
    retrained = _train_and_gate(trigger, ports, config, now, split, data)
    _remember(ports.models, state, now, retrained)
    record = {
        **base,
        **retrained.record(config),
        "data": data,
        "mlflow": "registered"
        if ports.tracker is not None
        else "not configured (MLFLOW_TRACKING_URI unset): S3 only",
        "seconds": round(time.perf_counter() - started, 2),
    }
    if retrained.outcome.staged:
        return rollout.start(ports, config, now, record, retrained.registered.version)
    kind = DecisionKind.PROMOTED if retrained.outcome.promoted else DecisionKind.REFUSED
    return record_decision(ports, now, kind, record, retrained.registered.version)


def _train_and_gate(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, split: Split, data: dict[str, Any]
) -> Retrained:
    params = ModelParams(**{**ModelParams().as_dict(), **trigger.params})
    live = live_pointer(ports.models)
    training, mix = _training_set(ports.models, live, _rows(split.train), config)
    data.update(mix)
    yardstick = _yardstick(ports.models)
    meta = {
        "model_name": config.model_name,
        "trained_by": TRAINED_BY,
        "data": data,
        "params": params.as_dict(),
        "evaluation_set": None if yardstick.evaluation is None else yardstick.evaluation.lineage(),
    }
    trained = train_candidate(training, _rows(split.holdout), params, meta)
    champion_mae = _champion_mae(ports.models, live, split.holdout)
    run_log = _run_log(trigger, config, params, trained, split, champion_mae, yardstick)
    registered = register(ports, config, now, trained, run_log)
    rows_key = training_rows_key(config.model_name, registered.version)
    ports.models.put(rows_key, encode_rows(training), "application/octet-stream")
    registry = LoopRegistry(ports)
    staged = config.staged and live is not None  # a first model has nothing to serve beside
    outcome = _gate(trigger, ports, config, registry, (trained, registered), split.holdout, yardstick, staged)
    return Retrained(trained, registered, live, champion_mae, outcome, registry.tags)


def _yardstick(store: Store) -> Yardstick:
    """The trusted evaluation set, required: the gate refuses when it cannot be read."""
    try:
        return Yardstick(evaluation_set.load(store), required=True)
    except EvaluationSetError as exc:
        return Yardstick(None, str(exc), required=True)


def _rows(rides: LabelledRides) -> Rows:
    return Rows(rides.features, rides.target, rides.pickup.astype("datetime64[D]"))


def _training_set(
    models: Store, live: ModelPointer | None, recent: Rows, config: RetrainConfig
) -> tuple[Rows, dict[str, Any]]:
    """The recent rows mixed with the champion's training rows (module docstring), or alone when the
    champion left none."""
    body = None if live is None else models.get(training_rows_key(live.model_name, live.version))
    if body is None:
        return recent, {"champion_rows": 0, "recent_weight": 1.0}
    old = decode_rows(body)
    weight = max(1.0, len(old) / config.target_rows)
    return mixed(old, recent, weight), {"champion_rows": len(old), "recent_weight": round(weight, 4)}


def _split_summary(split: Split, fraction: float) -> dict[str, Any]:
    return {
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "holdout_pickup_from": str(split.holdout.pickup.min()),
        "train_pickup_to": str(split.train.pickup.max()) if len(split.train) else None,
        "holdout_fraction": fraction,
    }


def _champion_mae(store: Store, live: ModelPointer | None, holdout: LabelledRides) -> float | None:
    body = None if live is None else store.get(live.bundle_key)
    if body is None:
        return None
    try:
        return metrics.mae(load_bundle(body).predict(holdout.features), holdout.target)
    except Exception:  # the gate refuses such a champion and says why; this figure is only reported
        return None


def _run_log(
    trigger: Trigger,
    config: RetrainConfig,
    params: ModelParams,
    trained: TrainedCandidate,
    split: Split,
    champion_mae: float | None,
    yardstick: Yardstick,
) -> RunLog:
    run_metrics = {
        "holdout_rmse": trained.rmse,
        "holdout_mae": trained.mae,
        "served_holdout_mae": metrics.mae(split.holdout.served, split.holdout.target),
        "fit_seconds": trained.fit_seconds,
        "rows_train": float(len(split.train)),
        "rows_holdout": float(len(split.holdout)),
        "n_trees": float(trained.n_trees),
        "parity_max_abs_diff": trained.parity_max_abs_diff,
    }
    if champion_mae is not None:
        run_metrics["champion_holdout_mae"] = champion_mae
    return RunLog(
        params={
            **{k: str(v) for k, v in params.as_dict().items()},
            "target_rows": str(config.target_rows),
            "max_lookback_days": str(config.max_lookback_days),
        },
        tags={
            "trigger": trigger.reason[:250],
            "trained_by": TRAINED_BY,
            "bundle_sha256": trained.bundle_sha256,
            **_evaluation_tags(yardstick),
        },
        metrics=run_metrics,
    )


def _evaluation_tags(yardstick: Yardstick) -> dict[str, str]:
    if yardstick.evaluation is None:
        return {"evaluation_set": f"unusable: {yardstick.error}"[:250]}
    return {
        "evaluation_set_key": yardstick.evaluation.key,
        "evaluation_set_sha256": yardstick.evaluation.sha256,
    }


def _gate(
    trigger: Trigger,
    ports: Ports,
    config: RetrainConfig,
    registry: LoopRegistry,
    version: tuple[TrainedCandidate, RegisteredVersion],
    holdout: LabelledRides,
    yardstick: Yardstick,
    staged: bool,
) -> GateOutcome:
    trained, registered = version
    decision = gate_and_publish(
        trained.candidate(config.model_name, registered.version, registered.run_id),
        registry,
        ports.models,
        Rides(holdout.features, holdout.target, holdout.pickup),
        GateConfig(alias=config.alias, absolute_bound=config.gate_absolute_bound, promote_live=not staged),
        yardstick,
    )
    figures = decision.record()
    forced = trigger.force_promote and not decision.promote and not decision.bundle_refused
    if staged and (decision.promote or forced):
        # under a rollout policy even a forced version serves no rider before its shadow is judged
        verdict = f"forced past the gate, which said '{decision.verdict}'" if forced else decision.verdict
        return GateOutcome(False, verdict, forced, decision.champion_rmse, figures, staged=True)
    if decision.promote or not trigger.force_promote or decision.bundle_refused:
        return GateOutcome(decision.promote, decision.verdict, False, decision.champion_rmse, figures)
    pointer = version_pointer(ports.models, registered.version)
    assert pointer is not None  # gate_and_publish has just published it
    publish_live(ports.models, pointer)
    registry.set_alias(config.model_name, config.alias, registered.version)
    verdict = f"forced: promoted by the invoker although the gate said '{decision.verdict}'"
    return GateOutcome(True, verdict, True, decision.champion_rmse, figures)


def _remember(store: Store, state: dict[str, Any], now: datetime, retrained: Retrained) -> None:
    """The loop state: the cooldown's clock and, on promotion, what a rollback would go back to."""
    version, champion = retrained.registered.version, retrained.champion
    state = {**state, "last_retrain_at": utc_iso(now), "last_retrain_version": version}
    if retrained.outcome.promoted:
        state["last_promotion"] = {
            "version": version,
            "previous_version": None if champion is None else champion.version,
            "promoted_at": utc_iso(now),
            "forced": retrained.outcome.forced,
        }
    write_state(store, state)
