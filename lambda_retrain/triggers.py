"""What an invocation asks for: SNS alarm notifications or a direct invoke -> typed triggers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lambda_retrain.config import RetrainConfig
from trip_core.observability import logger


class Action(StrEnum):
    RETRAIN = "retrain"
    ROLLBACK_CHECK = "rollback_check"


class Source(StrEnum):
    ALARM = "alarm"
    DIRECT = "direct"
    SCHEDULE = "schedule"  # the periodic rollback check


@dataclass(frozen=True)
class Trigger:
    action: Action
    source: Source
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


def triggers_from_event(event: dict[str, Any], config: RetrainConfig) -> list[Trigger]:
    """SNS alarm notifications -> the triggers they mean (ALARM of a configured alarm); direct -> one."""
    records = event.get("Records")
    if not isinstance(records, list):
        return [direct_trigger(event)]
    return [trigger for record in records if (trigger := alarm_trigger(record, config)) is not None]


def direct_trigger(event: dict[str, Any]) -> Trigger:
    action = str(event.get("action", Action.RETRAIN))
    if action not in tuple(Action):
        raise ValueError(f"unknown action {action!r}")
    source = str(event.get("source", Source.DIRECT))
    if source not in (Source.DIRECT, Source.SCHEDULE):
        raise ValueError(f"unknown source {source!r}")
    return Trigger(
        action=Action(action),
        source=Source(source),
        reason=str(event.get("reason", "direct invoke")),
        skip_cooldown=bool(event.get("skip_cooldown", False)),
        force_promote=bool(event.get("force_promote", False)),
        params=dict(event.get("params") or {}),
    )


def alarm_trigger(record: Any, config: RetrainConfig) -> Trigger | None:
    """None for what the loop does not act on: not an alarm, not ALARM, or an alarm not configured."""
    try:
        message = json.loads(record["Sns"]["Message"])
        name, state = str(message["AlarmName"]), str(message["NewStateValue"])
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a record that is not a CloudWatch alarm notification")
        return None
    if state != "ALARM":
        return None
    reason = f"{name} -> {state}: {message.get('NewStateReason', '')}"[:500]
    if name in config.rollback_alarms:
        return Trigger(Action.ROLLBACK_CHECK, Source.ALARM, reason, name, state)
    if name in config.retrain_alarms:
        return Trigger(Action.RETRAIN, Source.ALARM, reason, name, state)
    return None
