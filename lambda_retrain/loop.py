"""The closed loop's entry: each trigger of an invocation (triggers.py) -> one audited decision.

  retrain         retrain.py, behind the guards (guards.py): cooldown, one at a time, enough rows;
  rollback_check  rollback.py: judge the last loop promotion; a quality alarm with no recent
                  promotion to judge retrains instead.
  approve, reject the version awaiting approval goes on, or is retired (rollout.py); stop_canary: an
                  alarm of CANARY_ALARMS ends a canary; rollback: an operator's, to a named version.
  schedule        the rollback check, then the periodic look at a running rollout (rollout.py: no
                  retrain while one runs); with nothing to judge, it retrains when a retrain alarm
                  is still in ALARM and the cooldown has passed: alarms notify on transitions only, so an
                  alarm whose retrain was skipped (too few rows) or refused would otherwise never heal.
Every decision (also a skip) is an audit record (audit.py) and, when there is an MLflow version, tags.
An alarm notification is acted on only if CloudWatch (DescribeAlarms) says the alarm is in ALARM; a
refused direct invoke and a decision that raised are audited too (`invalid_request`, `failed`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from lambda_retrain import rollout
from lambda_retrain.audit import (
    Decision,
    DecisionKind,
    read_state,
    record_base,
    record_decision,
    write_audit,
)
from lambda_retrain.config import RetrainConfig
from lambda_retrain.guards import cooldown_left
from lambda_retrain.ports import Ports
from lambda_retrain.retrain import retrain
from lambda_retrain.rollback import Judgement, manual_rollback, rollback_check
from lambda_retrain.triggers import Action, Source, Trigger, TriggerRefused, triggers_from_event
from trip_core.contracts import utc_iso
from trip_core.observability import logger

MAX_ERROR_CHARS = 2000


def handle(event: Any, ports: Ports, config: RetrainConfig, now: datetime, actor: str) -> dict[str, Any]:
    """The handler's answer: the decisions the event's triggers led to."""
    try:
        triggers = triggers_from_event(event, config)
    except TriggerRefused as exc:
        return {"decisions": [refuse_request(event, exc, ports, config, now, actor).answer()]}
    decisions = [
        decision
        for trigger in triggers
        if (decision := decide_audited(trigger, ports, config, now, actor)) is not None
    ]
    if not decisions:
        return {"decisions": [], "ignored": True}
    return {"decisions": [decision.answer() for decision in decisions]}


def refuse_request(
    event: Any, exc: TriggerRefused, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision:
    record = {
        "time": utc_iso(now),
        "model_name": config.model_name,
        "actor": actor,
        "request": json.dumps(event, default=str, sort_keys=True)[:MAX_ERROR_CHARS],
        "verdict": f"refused: {exc}",
    }
    return record_decision(ports, now, DecisionKind.INVALID_REQUEST, record)


def decide_audited(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    """decide(), and a `failed` record with the error when it raises (re-raised: Lambda reports it)."""
    try:
        return decide(trigger, ports, config, now, actor)
    except Exception as exc:
        record = {
            **record_base(trigger, config, now, actor),
            "verdict": f"failed: {type(exc).__name__}",
            "error": f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS],
        }
        try:
            write_audit(ports.models, now, DecisionKind.FAILED, record)
        except Exception:  # the audit store itself is down: the log and Lambda's error still say it
            logger.exception("could not audit the failure")
        raise


def decide(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    """None when a scheduled check has nothing to do: the schedule records no such tick."""
    if trigger.source == Source.ALARM and (ignored := _unconfirmed(trigger, ports, config, now, actor)):
        return ignored
    operator = _OPERATOR_ACTIONS.get(trigger.action)
    if operator is not None:
        return operator(trigger, ports, config, now, actor)
    if trigger.action == Action.RETRAIN:
        return _retrain_unless_rolling_out(trigger, ports, config, now, actor)
    if rollout.active(read_state(ports.models)) is not None:
        # a promotion not judged yet (made under PromotionPolicy direct) is judged before the rollout
        judged = rollback_check(trigger, ports, config, now, actor).decision
        return judged or rollout.check(trigger, ports, config, now, actor)
    result = rollback_check(trigger, ports, config, now, actor)
    if result.decision is not None:
        return result.decision
    if trigger.source == Source.SCHEDULE:
        return _retrain_if_still_alarming(trigger, ports, config, now, actor)
    if result.judgement == Judgement.NO_RECENT_PROMOTION and trigger.source == Source.ALARM:
        return _retrain_unless_rolling_out(trigger, ports, config, now, actor)  # nothing to roll back
    verdict = f"kept: {result.judgement.value}"
    record = {**record_base(trigger, config, now, actor), "verdict": verdict}
    return record_decision(ports, now, DecisionKind.ROLLBACK_KEPT, record)


_OPERATOR_ACTIONS = {
    Action.APPROVE: rollout.approve,
    Action.REJECT: rollout.reject,
    Action.STOP_CANARY: rollout.stop_canary,
    Action.ROLLBACK: manual_rollback,
}


def _retrain_unless_rolling_out(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision:
    """A challenger in rollout is judged first: a second one would be gated against a live model the
    first may replace, and would change the traffic plan under it."""
    running = rollout.active(read_state(ports.models))
    if running is None:
        return retrain(trigger, ports, config, now, actor)
    verdict = f"skipped: version {running['version']} is in rollout ({running['stage']})"
    return record_decision(
        ports, now, DecisionKind.SKIPPED, {**record_base(trigger, config, now, actor), "verdict": verdict}
    )


def _unconfirmed(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    """An `ignored` record when CloudWatch does not describe the notified alarm as in ALARM."""
    name = str(trigger.alarm_name)
    state = ports.alarms.states((name,)).get(name, "not found")
    if state == "ALARM":
        return None
    verdict = f"ignored: the notification says {name} is in ALARM, DescribeAlarms says {state}"
    record = {**record_base(trigger, config, now, actor), "verdict": verdict, "described_state": state}
    return record_decision(ports, now, DecisionKind.IGNORED, record)


def _retrain_if_still_alarming(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    firing = sorted(name for name, s in ports.alarms.states(config.retrain_alarms).items() if s == "ALARM")
    if not firing or cooldown_left(read_state(ports.models), now, config.cooldown_minutes) > 0:
        return None
    reason = f"scheduled: {', '.join(firing)} still in ALARM"
    retry = replace(trigger, action=Action.RETRAIN, reason=reason, alarm_name=firing[0], alarm_state="ALARM")
    return _retrain_unless_rolling_out(retry, ports, config, now, actor)
