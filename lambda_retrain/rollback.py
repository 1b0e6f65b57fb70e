"""The rollback policy (MAE-ratio ALARM within ROLLBACK_WINDOW_HOURS of a loop promotion, the schedule,
or a direct invoke): on the labelled rides the promoted version served since its promotion
(>= MIN_ROLLBACK_ROWS), what it served vs the previous version's bundle on the same rides, by the gate's
rule (training.decision); not better -> the live pointer goes back to serving/versions/<previous>.json.

A promotion is judged once: by the first check whose comparison is decisive (training.decision: its se
small enough for both error rates, or the gain beyond the indifference zone), or else by the first check
in the window's last FINAL_LOOK; later checks do not re-test it (every extra look would be another chance
to roll back a good model). A check before that waits (the schedule) or keeps the
promotion without judging it (an alarm or a direct invoke: audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from lambda_retrain.audit import Decision, DecisionKind, read_state, record_base, record_decision, write_state
from lambda_retrain.config import RetrainConfig
from lambda_retrain.labelled import LabelledRides, load_labelled
from lambda_retrain.ports import Ports
from lambda_retrain.registry import make_live, move_alias, version_pointer
from lambda_retrain.triggers import Source, Trigger
from training import decision, evaluation_set, metrics
from trip_core.bundle import load_bundle
from trip_core.capture import CaptureBatch
from trip_core.contracts import LIVE_POINTER_KEY, MONITOR_WINDOW, parse_utc, utc_iso
from trip_core.observability import logger
from trip_core.pointer import ModelPointer

# The checks in the rollback window's last part judge with the evidence there is (see the docstring).
FINAL_LOOK = timedelta(hours=1)


class Judgement(Enum):
    DECIDED = "decided"  # kept or rolled back, audited
    NO_RECENT_PROMOTION = "no loop promotion within the rollback window"
    WAITING_FOR_RIDES = "not enough evidence yet"  # the next scheduled check judges
    ALREADY_KEPT = "kept by an earlier check"  # a promotion is judged once


@dataclass(frozen=True)
class RollbackResult:
    judgement: Judgement
    decision: Decision | None = None  # set when DECIDED


@dataclass(frozen=True)
class Judged:
    """The promotion under judgement and the rides its version served."""

    live: ModelPointer
    live_etag: str  # the pointer as read: a rollback replaces only that one, never a newer promotion
    previous: ModelPointer
    previous_bundle: bytes
    rides: LabelledRides
    promotion: dict[str, Any]
    state: dict[str, Any]


def rollback_check(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> RollbackResult:
    state = read_state(ports.models)
    promotion = state.get("last_promotion") or {}
    tagged = ports.models.get_tagged(LIVE_POINTER_KEY)
    live = None if tagged is None else ModelPointer.from_json(tagged.body)
    if tagged is None or live is None or not _within_window(promotion, live, now, config):
        return RollbackResult(Judgement.NO_RECENT_PROMOTION)
    base = record_base(trigger, config, now, actor)
    previous = version_pointer(ports.models, str(promotion["previous_version"]))
    previous_body = None if previous is None else ports.models.get(previous.bundle_key)
    if previous is None or previous_body is None:
        verdict = "kept: previous version's pointer/bundle missing"
        record = {**base, "verdict": verdict, "live_version": live.version}
        return _decided(record_decision(ports, now, DecisionKind.ROLLBACK_KEPT, record, live.version))
    if promotion.get("judged_at"):
        logger.info(f"rollback check: {live.version} was judged at {promotion['judged_at']}; not re-tested")
        return RollbackResult(Judgement.ALREADY_KEPT)
    rides = _served_since(ports, live.version, parse_utc(str(promotion["promoted_at"])), now)
    base.update(live_version=live.version, previous_version=previous.version, data=dict(rides.summary))
    if len(rides) < config.min_rollback_rows:
        if trigger.source == Source.SCHEDULE:
            logger.info(f"rollback check: {len(rides)} rows served by {live.version}, waiting for more")
            return RollbackResult(Judgement.WAITING_FOR_RIDES)
        verdict = (
            f"kept: {len(rides)} labelled rows served by {live.version}"
            f" < MIN_ROLLBACK_ROWS {config.min_rollback_rows}"
        )
        return _decided(
            record_decision(
                ports, now, DecisionKind.ROLLBACK_KEPT, {**base, "verdict": verdict}, live.version
            )
        )
    judged = Judged(live, tagged.etag, previous, previous_body, rides, promotion, state)
    return _judge(trigger, ports, config, now, base, judged)


def _served_since(ports: Ports, version: str, since: datetime, now: datetime) -> LabelledRides:
    """The labelled rides `version` served (captured) since `since`: picked up from a MONITOR_WINDOW before
    it, since a ride waiting in the stream when the pointer moved is served by the new version."""

    def served(batch: CaptureBatch) -> bool:
        return batch.model_version == version and parse_utc(batch.captured_at) >= since

    return load_labelled(ports.capture, since - MONITOR_WINDOW, now + timedelta(seconds=1), keep_batch=served)


def _within_window(
    promotion: dict[str, Any], live: ModelPointer, now: datetime, config: RetrainConfig
) -> bool:
    """The live version is a loop promotion, not rolled back yet, promoted recently enough to judge."""
    return (
        promotion.get("version") == live.version
        and bool(promotion.get("previous_version"))
        and not promotion.get("rolled_back_at")
        and now - parse_utc(str(promotion["promoted_at"])) <= timedelta(hours=config.rollback_window_hours)
    )


def _decided(decision: Decision) -> RollbackResult:
    return RollbackResult(Judgement.DECIDED, decision)


def _final_look(promotion: dict[str, Any], now: datetime, config: RetrainConfig) -> bool:
    age = now - parse_utc(str(promotion["promoted_at"]))
    return age >= timedelta(hours=config.rollback_window_hours) - FINAL_LOOK


def _judge(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, base: dict[str, Any], judged: Judged
) -> RollbackResult:
    rides, live, previous = judged.rides, judged.live, judged.previous
    previous_pred = load_bundle(judged.previous_bundle).predict(rides.features)
    compared = decision.compare(previous_pred, rides.served, rides.target, rides.pickup)
    base["metrics"] = {
        "live_mae": compared.challenger_mae,
        "previous_mae": compared.champion_mae,
        "rows": len(rides),
        "decision": compared.figures(),
    }
    summary = f"{live.version} vs previous {previous.version}: {compared.summary()}"
    decides = compared.outcome != decision.Outcome.NOT_ENOUGH_EVIDENCE and (
        compared.decisive or _final_look(judged.promotion, now, config)
    )
    if not decides:
        if trigger.source == Source.SCHEDULE:
            logger.info(f"rollback check: waiting for more evidence ({summary})")
            return RollbackResult(Judgement.WAITING_FOR_RIDES)
        verdict = f"kept, not judged yet: {compared.outcome}, not decisive ({summary})"
        return _decided(
            record_decision(
                ports, now, DecisionKind.ROLLBACK_KEPT, {**base, "verdict": verdict}, live.version
            )
        )
    if compared.outcome != decision.Outcome.BETTER:
        body = ports.models.get(judged.live.bundle_key)
        backed = None if body is None else better_on_evaluation_set(ports, body, judged.previous_bundle)
        if backed is None:
            return _decided(_roll_back(ports, config, now, base, judged, summary))
        summary = f"not better on the served rides ({summary}), but {backed}"
    judged.state["last_promotion"] = {**judged.promotion, "judged_at": utc_iso(now)}
    write_state(ports.models, judged.state)
    verdict = f"kept: {compared.outcome} on the same rides ({summary})"
    return _decided(
        record_decision(ports, now, DecisionKind.ROLLBACK_KEPT, {**base, "verdict": verdict}, live.version)
    )


@dataclass(frozen=True)
class EvaluationMaes:
    month: str
    mae: float
    reference_mae: float


def evaluation_set_maes(ports: Ports, bundle: bytes, reference: bytes) -> EvaluationMaes | None:
    """Both bundles' MAE on the trusted evaluation set; None when it cannot be read."""
    try:
        trusted = evaluation_set.load(ports.models)
    except evaluation_set.EvaluationSetError:
        return None
    mae = metrics.mae(load_bundle(bundle).predict(trusted.features), trusted.target)
    reference_mae = metrics.mae(load_bundle(reference).predict(trusted.features), trusted.target)
    return EvaluationMaes(trusted.month, mae, reference_mae)


def better_on_evaluation_set(ports: Ports, bundle: bytes, reference: bytes) -> str | None:
    """Why `bundle` stays although the served rides say otherwise: it is better than `reference` on the
    evaluation set, which no client can write (the served rides' labels are client-reported, so they
    alone must not undo what the gate's trusted yardstick backed). None: not."""
    scored = evaluation_set_maes(ports, bundle, reference)
    if scored is None or not scored.mae < scored.reference_mae:
        return None
    return f"better on the evaluation set {scored.month} (MAE {scored.mae:.3f} vs {scored.reference_mae:.3f})"


def _roll_back(
    ports: Ports, config: RetrainConfig, now: datetime, base: dict[str, Any], judged: Judged, compared: str
) -> Decision:
    live, previous = judged.live, judged.previous
    if not make_live(ports.models, previous, judged.live_etag, now):
        verdict = f"kept: serving/live.json moved while the check ran; not rolled back ({compared})"
        return record_decision(
            ports, now, DecisionKind.ROLLBACK_KEPT, {**base, "verdict": verdict}, live.version
        )
    record = {**base, "mlflow": move_alias(ports, config, previous.version)}
    state = judged.state
    state["last_promotion"] = {**judged.promotion, "rolled_back_at": utc_iso(now), "judged_at": utc_iso(now)}
    state["last_rollback"] = {"from": live.version, "to": previous.version, "at": utc_iso(now)}
    write_state(ports.models, state)
    record["verdict"] = f"rolled back: not better on the same rides ({compared})"
    record["version"] = previous.version
    return record_decision(ports, now, DecisionKind.ROLLBACK, record, live.version)


def manual_rollback(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision:
    """An operator's rollback (`make rollback VERSION=n`): serving/live.json := version n's pointer, with
    no traffic plan (a running rollout then ends), audited with who and why."""
    base = record_base(trigger, config, now, actor)
    version = str(trigger.version)
    target = version_pointer(ports.models, version)
    tagged = ports.models.get_tagged(LIVE_POINTER_KEY)
    live = None if tagged is None else ModelPointer.from_json(tagged.body)
    problem = None
    if target is None:
        problem = f"version {version} has no pointer serving/versions/{version}.json"
    elif tagged is None or live is None:
        problem = "no live model to roll back"
    elif live.version == version:
        problem = f"version {version} is live already"
    if problem is not None or target is None or tagged is None or live is None:
        verdict = f"refused: rollback to {version}: {problem}"
        return record_decision(ports, now, DecisionKind.INVALID_REQUEST, {**base, "verdict": verdict})
    if not make_live(ports.models, target, tagged.etag, now):
        verdict = f"refused: rollback to {version}: serving/live.json moved while it ran"
        return record_decision(ports, now, DecisionKind.INVALID_REQUEST, {**base, "verdict": verdict})
    state = read_state(ports.models)
    state["last_rollback"] = {"from": live.version, "to": version, "at": utc_iso(now), "by": actor}
    write_state(ports.models, state)
    record = {
        **base,
        "verdict": f"rolled back by {actor} from {live.version} to {version}: {trigger.reason}",
        "version": version,
        "mlflow": move_alias(ports, config, version),
    }
    return record_decision(ports, now, DecisionKind.ROLLBACK, record, live.version)
