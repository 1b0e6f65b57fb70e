"""The closed loop's entry: each trigger of an invocation (triggers.py) -> one audited decision.

  retrain         retrain.py, behind the guards (guards.py): cooldown, one at a time, enough rows;
  rollback_check  rollback.py: judge the last loop promotion; a quality alarm with no recent
                  promotion to judge retrains instead.
Every decision (also a skip) is an audit record (audit.py) and, when there is an MLflow version, tags.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lambda_retrain.audit import Decision, DecisionKind, record_base, record_decision
from lambda_retrain.config import RetrainConfig
from lambda_retrain.ports import Ports
from lambda_retrain.retrain import retrain
from lambda_retrain.rollback import Judgement, rollback_check
from lambda_retrain.triggers import Action, Source, Trigger, triggers_from_event


def handle(
    event: dict[str, Any], ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> dict[str, Any]:
    """The handler's answer: the decisions the event's triggers led to."""
    decisions = [
        decision
        for trigger in triggers_from_event(event, config)
        if (decision := decide(trigger, ports, config, now, actor)) is not None
    ]
    if not decisions:
        return {"decisions": [], "ignored": True}
    return {"decisions": [decision.answer() for decision in decisions]}


def decide(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    """None when a scheduled check has nothing to judge yet: the schedule records no such tick."""
    if trigger.action == Action.RETRAIN:
        return retrain(trigger, ports, config, now, actor)
    result = rollback_check(trigger, ports, config, now, actor)
    if result.decision is not None:
        return result.decision
    if trigger.source == Source.SCHEDULE:
        return None
    if result.judgement == Judgement.NO_RECENT_PROMOTION and trigger.source == Source.ALARM:
        return retrain(trigger, ports, config, now, actor)  # a quality alarm, nothing to roll back: retrain
    verdict = f"kept: {result.judgement.value}"
    record = {**record_base(trigger, config, now, actor), "verdict": verdict}
    return record_decision(ports, now, DecisionKind.ROLLBACK_KEPT, record)
