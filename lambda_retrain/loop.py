"""The closed loop's decisions: guards, retrain + gate + promote, rollback. Plain code over ports.

Retrain (drift-share ALARM, or a direct invoke):
  guards  cooldown since the last retrain (state), one at a time (lock object, S3 conditional write
          with a lease), at least MIN_LABELLED_ROWS labelled rides in the lookback;
  data    recent captured + labelled rides (labelled.py), ordered by pickup time; the latest
          HOLDOUT_FRACTION is the fresh holdout the challenger does not train on;
  gate    training.gate.gate_and_publish: challenger vs the live pointer's bundle on that holdout, RMSE
          with the training margin; publishes the version (bundle, profile, serving/versions/<v>.json)
          and, on promotion, serving/live.json (+ the MLflow alias when MLflow is configured).
Rollback (MAE-ratio ALARM within ROLLBACK_WINDOW_HOURS of a loop promotion, or a direct invoke):
  rule    on the labelled rides the promoted version served since its promotion (>= MIN_ROLLBACK_ROWS),
          its MAE (what it served) vs the previous version's bundle MAE on the same rides; worse -> the
          live pointer goes back to serving/versions/<previous>.json.
Every decision (also a skip) is an audit record (audit.py) and, when there is an MLflow version, tags.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from lambda_retrain.audit import read_state, write_audit, write_state
from lambda_retrain.config import RetrainConfig
from lambda_retrain.labelled import LabelledRides, load_labelled
from lambda_retrain.ports import Store, Tracker
from training import metrics
from training.export import export_bundle
from training.gate import Candidate, GateConfig, RegisteredVersion, gate_and_publish
from training.model import ModelParams, fit, predict
from training.publish import publish_live
from trip_core.bundle import load_bundle
from trip_core.contracts import (
    BUNDLE_ARTIFACT,
    DEFAULT_MODEL_NAME,
    LIVE_POINTER_KEY,
    LOOP_LOCK_KEY,
    PARITY_TOLERANCE_MINUTES,
    PROFILE_ARTIFACT,
    VERSION_POINTERS_PREFIX,
    parse_utc,
    utc_iso,
    version_pointer_key,
)
from trip_core.features import MONITORED_FEATURES, feature_column
from trip_core.pointer import ModelPointer
from trip_core.profile import build_reference_profile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trigger:
    action: str  # "retrain" | "rollback_check"
    source: str  # "alarm" | "direct" | "schedule" (the periodic rollback check)
    reason: str
    alarm_name: str | None = None
    alarm_state: str | None = None
    skip_cooldown: bool = False
    force_promote: bool = False  # demo only: promote whatever the gate says (audited as forced)
    params: dict[str, Any] = field(default_factory=dict)  # ModelParams overrides

    def record(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "action": self.action,
            "reason": self.reason,
            "alarm_name": self.alarm_name,
            "alarm_state": self.alarm_state,
            "skip_cooldown": self.skip_cooldown,
            "force_promote": self.force_promote,
            "params": self.params,
        }


@dataclass
class Ports:
    models: Store
    capture: Store
    tracker: Tracker | None = None


def triggers_from_event(event: dict[str, Any], config: RetrainConfig) -> list[Trigger]:
    """SNS alarm notifications -> the triggers they mean (ALARM of a configured alarm); direct -> one."""
    records = event.get("Records")
    if not isinstance(records, list):
        action = str(event.get("action", "retrain"))
        if action not in ("retrain", "rollback_check"):
            raise ValueError(f"unknown action {action!r}")
        source = str(event.get("source", "direct"))
        if source not in ("direct", "schedule"):
            raise ValueError(f"unknown source {source!r}")
        return [
            Trigger(
                action=action,
                source=source,
                reason=str(event.get("reason", "direct invoke")),
                skip_cooldown=bool(event.get("skip_cooldown", False)),
                force_promote=bool(event.get("force_promote", False)),
                params=dict(event.get("params") or {}),
            )
        ]
    out = []
    for record in records:
        try:
            message = json.loads(record["Sns"]["Message"])
            name, state = str(message["AlarmName"]), str(message["NewStateValue"])
        except (KeyError, TypeError, ValueError):
            log.warning("ignoring a record that is not a CloudWatch alarm notification")
            continue
        reason = f"{name} -> {state}: {message.get('NewStateReason', '')}"[:500]
        if state != "ALARM":
            continue
        if name in config.rollback_alarms:
            out.append(Trigger("rollback_check", "alarm", reason, name, state))
        elif name in config.retrain_alarms:
            out.append(Trigger("retrain", "alarm", reason, name, state))
    return out


class LoopRegistry:
    """training.gate's registry port: the champion is the live pointer (S3); MLflow mirrors tags/alias."""

    def __init__(self, ports: Ports, mlflow_version: bool) -> None:
        self.ports, self.mlflow_version = ports, mlflow_version
        self.tags: dict[str, str] = {}

    def alias_holder(self, name: str, alias: str) -> RegisteredVersion | None:
        live = live_pointer(self.ports.models)
        return None if live is None else RegisteredVersion(live.version, live.run_id)

    def bundle_bytes(self, holder: RegisteredVersion) -> bytes:
        pointer = version_pointer(self.ports.models, holder.version) or live_pointer(self.ports.models)
        body = None if pointer is None else self.ports.models.get(pointer.bundle_key)
        return body or b""  # load_bundle raises BundleError: the gate falls back to the bound

    def set_version_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        self.tags.update(tags)
        if self.ports.tracker is not None and self.mlflow_version:
            self.ports.tracker.set_version_tags(name, version, tags)

    def set_alias(self, name: str, alias: str, version: str) -> None:
        if self.ports.tracker is not None and self.mlflow_version:
            self.ports.tracker.set_alias(name, alias, version)


def live_pointer(store: Store) -> ModelPointer | None:
    body = store.get(LIVE_POINTER_KEY)
    return None if body is None else ModelPointer.from_json(body)


def version_pointer(store: Store, version: str) -> ModelPointer | None:
    body = store.get(version_pointer_key(version))
    return None if body is None else ModelPointer.from_json(body)


def next_s3_version(store: Store) -> str:
    numbers = [
        int(name)
        for key in store.list_keys(VERSION_POINTERS_PREFIX)
        if (name := key.rsplit("/", 1)[-1].removesuffix(".json")).isdigit()
    ]
    return str(max(numbers, default=0) + 1)


# ------------------------------------------------------------------------------------ guards


def acquire_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> bool:
    body = json.dumps(
        {
            "owner": owner,
            "acquired_at": utc_iso(now),
            "expires_at": utc_iso(now + timedelta(seconds=lease_seconds)),
        }
    )
    if store.put_if_absent(LOOP_LOCK_KEY, body.encode()):
        return True
    held = store.get(LOOP_LOCK_KEY)
    try:
        expired = held is None or parse_utc(json.loads(held)["expires_at"]) <= now
    except (ValueError, KeyError, TypeError):
        expired = True
    if not expired:
        return False
    store.delete(LOOP_LOCK_KEY)  # a crashed run's lease: take it over (one retry, conditional again)
    return store.put_if_absent(LOOP_LOCK_KEY, body.encode())


def release_lock(store: Store) -> None:
    store.delete(LOOP_LOCK_KEY)


def cooldown_left(state: dict[str, Any], now: datetime, cooldown_minutes: float) -> float:
    """Minutes until the next retrain may run (0 when it may)."""
    last = state.get("last_retrain_at")
    if not last:
        return 0.0
    left = parse_utc(str(last)) + timedelta(minutes=cooldown_minutes) - now
    return max(0.0, left.total_seconds() / 60.0)


# ------------------------------------------------------------------------------------ retrain


def split_holdout(rides: LabelledRides, fraction: float) -> tuple[LabelledRides, LabelledRides]:
    n_hold = max(1, math.ceil(len(rides) * fraction))
    index = np.arange(len(rides))
    return rides.rows(index < len(rides) - n_hold), rides.rows(index >= len(rides) - n_hold)


def _mae(pred: np.ndarray, target: np.ndarray) -> float:
    return metrics.mae(pred, target)


def retrain(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> dict[str, Any]:
    base: dict[str, Any] = {
        "time": utc_iso(now),
        "model_name": config.model_name,
        "trigger": trigger.record(),
        "actor": actor,
    }
    state = read_state(ports.models)
    left = 0.0 if trigger.skip_cooldown else cooldown_left(state, now, config.cooldown_minutes)
    if left > 0:
        verdict = f"skipped: cooldown, {left:.0f} min left of {config.cooldown_minutes:g}"
        return _audit(ports, now, "skipped", {**base, "verdict": verdict, "state": state})
    if not acquire_lock(ports.models, now, config.lock_lease_seconds, actor):
        return _audit(ports, now, "skipped", {**base, "verdict": "skipped: another retrain holds the lock"})
    try:
        return _retrain_locked(trigger, ports, config, now, base, state)
    finally:
        release_lock(ports.models)


def _retrain_locked(
    trigger: Trigger,
    ports: Ports,
    config: RetrainConfig,
    now: datetime,
    base: dict[str, Any],
    state: dict[str, Any],
) -> dict[str, Any]:
    started = time.perf_counter()
    rides = load_labelled(ports.capture, now - timedelta(hours=config.lookback_hours), now)
    data = dict(rides.summary)
    if len(rides) < config.min_labelled_rows:
        verdict = f"skipped: {len(rides)} labelled rows < MIN_LABELLED_ROWS {config.min_labelled_rows}"
        return _audit(ports, now, "skipped", {**base, "verdict": verdict, "data": data})

    train, holdout = split_holdout(rides, config.holdout_fraction)
    data.update(
        train_rows=len(train),
        holdout_rows=len(holdout),
        holdout_pickup_from=str(holdout.pickup.min()),
        train_pickup_to=str(train.pickup.max()) if len(train) else None,
        holdout_fraction=config.holdout_fraction,
    )
    params = ModelParams(**{**ModelParams().as_dict(), **trigger.params})
    fit_started = time.perf_counter()
    model = fit(train.features, train.target, params)
    fit_seconds = time.perf_counter() - fit_started
    sk_pred = predict(model, holdout.features)

    live = live_pointer(ports.models)
    champion_mae = None
    if live is not None and (champion_body := ports.models.get(live.bundle_key)) is not None:
        champion_mae = _mae(load_bundle(champion_body).predict(holdout.features), holdout.target)

    scores_meta = {
        "model_name": config.model_name,
        "trained_by": "lambda_retrain",
        "data": data,
        "params": params.as_dict(),
    }
    bundle_bytes = export_bundle(model, scores_meta)
    bundle = load_bundle(bundle_bytes)
    pred = bundle.predict(holdout.features)
    parity = float(np.max(np.abs(pred - sk_pred)))
    if parity > PARITY_TOLERANCE_MINUTES:
        raise RuntimeError(f"bundle predictions differ from the model by {parity} min")
    scores = {"rmse": metrics.rmse(pred, holdout.target), "mae": _mae(pred, holdout.target)}
    train_pred = bundle.predict(train.features)
    profile = build_reference_profile(
        {name: feature_column(train.features, name) for name in MONITORED_FEATURES}, train_pred
    )
    profile_bytes = json.dumps(profile, sort_keys=True).encode()

    tracker = ports.tracker
    run_metrics = {
        "holdout_rmse": scores["rmse"],
        "holdout_mae": scores["mae"],
        "served_holdout_mae": _mae(holdout.served, holdout.target),
        "fit_seconds": fit_seconds,
        "rows_train": float(len(train)),
        "rows_holdout": float(len(holdout)),
        "n_trees": float(model[-1].n_iter_),
        "parity_max_abs_diff": parity,
    }
    if champion_mae is not None:
        run_metrics["champion_holdout_mae"] = champion_mae
    if tracker is not None:
        run_id = tracker.start_run(
            f"loop-{now:%Y%m%dT%H%M%S}",
            {
                **{k: str(v) for k, v in params.as_dict().items()},
                "lookback_hours": str(config.lookback_hours),
            },
            {"trigger": trigger.reason[:250], "trained_by": "lambda_retrain", "bundle_sha256": bundle.sha256},
        )
        try:
            tracker.upload_artifact(run_id, BUNDLE_ARTIFACT, bundle_bytes)
            tracker.upload_artifact(run_id, PROFILE_ARTIFACT, profile_bytes)
        except Exception as exc:  # the S3 copy is what serving reads; the run stays usable without it
            log.warning("MLflow artifact upload failed: %s", exc)
        tracker.finish_run(run_id, run_metrics)
        version = tracker.register_version(config.model_name, run_id, {"run_id": run_id})
    else:
        version = next_s3_version(ports.models)
        run_id = f"loop-{now:%Y%m%dT%H%M%S}"

    registry = LoopRegistry(ports, mlflow_version=tracker is not None)
    decision = gate_and_publish(
        Candidate(
            config.model_name,
            version,
            run_id,
            bundle_bytes,
            profile_bytes,
            scores["rmse"],
            scores["mae"],
            bundle.sha256,
        ),
        registry,
        ports.models,
        holdout.features,
        holdout.target,
        GateConfig(alias=config.alias, margin=config.gate_margin, absolute_bound=config.gate_absolute_bound),
    )
    promoted, verdict = decision.promote, decision.verdict
    if trigger.force_promote and not promoted:
        pointer = version_pointer(ports.models, version)
        assert pointer is not None
        publish_live(ports.models, pointer)
        registry.set_alias(config.model_name, config.alias, version)
        promoted, verdict = (
            True,
            f"forced: promoted by the invoker although the gate said '{decision.verdict}'",
        )

    state = {**state, "last_retrain_at": utc_iso(now), "last_retrain_version": version}
    if promoted:
        state["last_promotion"] = {
            "version": version,
            "previous_version": None if live is None else live.version,
            "promoted_at": utc_iso(now),
            "forced": trigger.force_promote and not decision.promote,
        }
    write_state(ports.models, state)
    record = {
        **base,
        "verdict": verdict,
        "promoted": promoted,
        "version": version,
        "run_id": run_id,
        "champion_version": None if live is None else live.version,
        "data": data,
        "metrics": {
            "challenger_holdout_rmse": scores["rmse"],
            "challenger_holdout_mae": scores["mae"],
            "champion_holdout_rmse": decision.champion_rmse,
            "champion_holdout_mae": champion_mae,
            "gate_margin": config.gate_margin,
            "fit_seconds": round(fit_seconds, 2),
            "n_trees": int(model[-1].n_iter_),
            "parity_max_abs_diff": parity,
        },
        "gate_tags": registry.tags,
        "mlflow": "registered"
        if tracker is not None
        else "not configured (MLFLOW_TRACKING_URI unset): S3 only",
        "seconds": round(time.perf_counter() - started, 2),
    }
    return _audit(ports, now, "promoted" if promoted else "refused", record, version)


# ------------------------------------------------------------------------------------ rollback


def rollback_check(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> dict[str, Any] | None:
    """None when there is no recent loop promotion to judge (the caller may retrain instead), or, for a
    scheduled check, not enough served rides yet."""
    base: dict[str, Any] = {
        "time": utc_iso(now),
        "model_name": config.model_name,
        "trigger": trigger.record(),
        "actor": actor,
    }
    state = read_state(ports.models)
    promotion = state.get("last_promotion") or {}
    live = live_pointer(ports.models)
    if (
        live is None
        or promotion.get("version") != live.version
        or not promotion.get("previous_version")
        or promotion.get("rolled_back_at")
        or now - parse_utc(str(promotion["promoted_at"])) > timedelta(hours=config.rollback_window_hours)
    ):
        return None
    previous = version_pointer(ports.models, str(promotion["previous_version"]))
    previous_body = None if previous is None else ports.models.get(previous.bundle_key)
    if previous is None or previous_body is None:
        return _audit(
            ports,
            now,
            "rollback_kept",
            {
                **base,
                "verdict": "kept: previous version's pointer/bundle missing",
                "live_version": live.version,
            },
            live.version,
        )
    since = parse_utc(str(promotion["promoted_at"]))
    rides = load_labelled(
        ports.capture, since, now + timedelta(seconds=1), keep_batch=lambda b: b.model_version == live.version
    )
    data = dict(rides.summary)
    base.update(live_version=live.version, previous_version=previous.version, data=data)
    if len(rides) < config.min_rollback_rows:
        if trigger.source == "schedule":  # not enough served rides yet: the next scheduled check judges
            log.info("rollback check: %d rows served by %s, waiting for more", len(rides), live.version)
            return None
        verdict = (
            f"kept: {len(rides)} labelled rows served by {live.version}"
            f" < MIN_ROLLBACK_ROWS {config.min_rollback_rows}"
        )
        return _audit(ports, now, "rollback_kept", {**base, "verdict": verdict}, live.version)
    live_mae = _mae(rides.served, rides.target)
    previous_mae = _mae(load_bundle(previous_body).predict(rides.features), rides.target)
    base["metrics"] = {"live_mae": live_mae, "previous_mae": previous_mae, "rows": len(rides)}
    compared = f"{live.version} MAE {live_mae:.3f} vs previous {previous.version} MAE {previous_mae:.3f}"
    if live_mae <= previous_mae:
        if trigger.source == "schedule":  # the schedule records a kept promotion once, not every tick
            if promotion.get("kept_by_schedule_at"):
                log.info("rollback check: %s still not worse (%s)", live.version, compared)
                return None
            state["last_promotion"] = {**promotion, "kept_by_schedule_at": utc_iso(now)}
            write_state(ports.models, state)
        verdict = f"kept: {compared} on the same rides (not worse)"
        return _audit(ports, now, "rollback_kept", {**base, "verdict": verdict}, live.version)
    publish_live(ports.models, replace(previous, published_at=utc_iso(now)))
    base["mlflow"] = "not configured"
    if ports.tracker is not None:
        try:  # the pointer is what serving reads: MLflow failing must not stop (or undo) the rollback
            ports.tracker.set_alias(config.model_name, config.alias, previous.version)
            base["mlflow"] = f"alias {config.alias} -> {previous.version}"
        except Exception as exc:
            log.warning("MLflow alias back to %s failed: %s", previous.version, exc)
            base["mlflow"] = f"alias not moved: {exc}"[:500]
    state["last_promotion"] = {**promotion, "rolled_back_at": utc_iso(now)}
    state["last_rollback"] = {"from": live.version, "to": previous.version, "at": utc_iso(now)}
    write_state(ports.models, state)
    verdict = f"rolled back: {compared} on the same rides (worse)"
    return _audit(
        ports, now, "rollback", {**base, "verdict": verdict, "version": previous.version}, live.version
    )


# ------------------------------------------------------------------------------------ entry


def handle(
    event: dict[str, Any], ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> dict[str, Any]:
    results = []
    for trigger in triggers_from_event(event, config):
        if trigger.action == "rollback_check":
            result = rollback_check(trigger, ports, config, now, actor)
            if result is None and trigger.source == "alarm":  # quality alarm, no recent promotion: retrain
                result = retrain(trigger, ports, config, now, actor)
            elif result is None and trigger.source == "schedule":  # nothing to judge yet: no record
                continue
            elif result is None:
                result = _audit(
                    ports,
                    now,
                    "rollback_kept",
                    {
                        "time": utc_iso(now),
                        "model_name": config.model_name,
                        "trigger": trigger.record(),
                        "actor": actor,
                        "verdict": "kept: no loop promotion within the rollback window",
                    },
                )
        else:
            result = retrain(trigger, ports, config, now, actor)
        results.append(result)
    return {"decisions": results} if results else {"decisions": [], "ignored": True}


def _audit(
    ports: Ports, now: datetime, kind: str, record: dict[str, Any], mlflow_version: str | None = None
) -> dict[str, Any]:
    key = write_audit(ports.models, now, kind, record)
    if ports.tracker is not None and mlflow_version is not None:
        tags = {
            "loop.last_decision": kind,
            "loop.verdict": str(record.get("verdict", ""))[:4000],
            "loop.audit_key": key,
            "loop.time": utc_iso(now),
        }
        try:
            ports.tracker.set_version_tags(_model_name(record), mlflow_version, tags)
        except Exception as exc:  # the S3 record stands; MLflow being down must not undo a decision
            log.warning("MLflow tags on version %s failed: %s", mlflow_version, exc)
    log.info("loop decision %s: %s", kind, record.get("verdict"))
    return {
        "kind": kind,
        "audit_key": key,
        "verdict": record.get("verdict"),
        "version": record.get("version"),
        "metrics": record.get("metrics"),
        "data": record.get("data"),
    }


def _model_name(record: dict[str, Any]) -> str:
    return str(record.get("model_name", DEFAULT_MODEL_NAME))
