"""What an invocation asks for: SNS alarm notifications or a direct invoke -> typed triggers.

A notification's body is only a claim: the loop re-checks the alarm with CloudWatch before acting
(loop.py). A direct invoke is checked whole: its keys, their types, `params` against
trip_core.contracts.MODEL_PARAM_BOUNDS, and `force_promote` only where the stack allows it; anything else
is a `TriggerRefused` (audited by loop.py, never a crash)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lambda_retrain.config import RetrainConfig
from trip_core import jsontext
from trip_core.contracts import MODEL_PARAM_BOUNDS
from trip_core.observability import logger

MAX_REASON_CHARS = 500
DIRECT_KEYS = ("action", "source", "reason", "skip_cooldown", "force_promote", "params", "version")
MAX_VERSION_CHARS = 128


class Action(StrEnum):
    RETRAIN = "retrain"
    ROLLBACK_CHECK = "rollback_check"  # also the look at a running rollout (rollout.py)
    APPROVE = "approve"  # the version awaiting approval goes on (rollout.py)
    REJECT = "reject"  # ... or is retired
    ROLLBACK = "rollback"  # an operator's rollback to `version` (rollback.py)
    STOP_CANARY = "stop_canary"  # an alarm of CANARY_ALARMS: the canary ends at once (not by direct invoke)


NAMED = (Action.APPROVE, Action.REJECT, Action.ROLLBACK)  # direct actions that name a version


class Source(StrEnum):
    ALARM = "alarm"
    DIRECT = "direct"
    SCHEDULE = "schedule"  # the periodic rollback check (and retry of a retrain alarm still in ALARM)


class TriggerRefused(ValueError):
    """A direct invoke the loop will not act on; the message says why."""


@dataclass(frozen=True)
class Trigger:
    action: Action
    source: Source
    reason: str
    alarm_name: str | None = None
    alarm_state: str | None = None
    skip_cooldown: bool = False
    force_promote: bool = False  # demo only (ALLOW_FORCE_PROMOTE): past the gate, into shadow or live
    params: dict[str, Any] = field(default_factory=dict)  # ModelParams overrides, checked
    version: str | None = None  # the version an approve, reject or rollback names

    def record(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "action": self.action,
            "reason": self.reason,
            "alarm_name": self.alarm_name,
            "alarm_state": self.alarm_state,
            "skip_cooldown": self.skip_cooldown,
            "force_promote": self.force_promote,
            "params": self.params,
        }


def triggers_from_event(event: Any, config: RetrainConfig) -> list[Trigger]:
    """SNS alarm notifications -> the triggers they claim (ALARM of a configured alarm); direct -> one."""
    if not isinstance(event, dict):  # a direct invoke's payload is any JSON
        raise TriggerRefused(f"a direct invoke must be a JSON object, got {type(event).__name__}")
    records = event.get("Records")
    if not isinstance(records, list):
        return [direct_trigger(event, config)]
    return [trigger for record in records if (trigger := alarm_trigger(record, config)) is not None]


def direct_trigger(event: dict[str, Any], config: RetrainConfig) -> Trigger:
    unknown = sorted(str(key) for key in event if key not in DIRECT_KEYS)
    if unknown:
        raise TriggerRefused(f"unknown key(s) {unknown}; allowed: {list(DIRECT_KEYS)}")
    direct = tuple(a for a in Action if a != Action.STOP_CANARY)
    action = _choice(event, "action", direct, Action.RETRAIN)
    source = _choice(event, "source", (Source.DIRECT, Source.SCHEDULE), Source.DIRECT)
    reason = event.get("reason", "direct invoke")
    if not isinstance(reason, str) or len(reason) > MAX_REASON_CHARS:
        raise TriggerRefused(f"reason must be a text of at most {MAX_REASON_CHARS} characters")
    force_promote = _flag(event, "force_promote")
    if force_promote and not config.allow_force_promote:
        raise TriggerRefused("force_promote is not allowed on this stack (parameter AllowForcePromote)")
    return Trigger(
        action=Action(action),
        source=Source(source),
        reason=reason,
        skip_cooldown=_flag(event, "skip_cooldown"),
        force_promote=force_promote,
        params=checked_params(event.get("params", {})),
        version=_version(event, Action(action)),
    )


def _version(event: dict[str, Any], action: Action) -> str | None:
    version = event.get("version")
    if action not in NAMED:
        if version is not None:
            raise TriggerRefused(f"version is for {[str(a) for a in NAMED]} only, not {action}")
        return None
    if not isinstance(version, str) or not version or len(version) > MAX_VERSION_CHARS or "/" in version:
        raise TriggerRefused(
            f"{action} needs a version (a name without '/'), got {version!r}"[:MAX_REASON_CHARS]
        )
    return version


def _choice(event: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = event.get(key, default)
    if value not in allowed:
        raise TriggerRefused(f"{key} must be one of {list(allowed)}, got {value!r}"[:MAX_REASON_CHARS])
    return str(value)


def _flag(event: dict[str, Any], key: str) -> bool:
    value = event.get(key, False)
    if not isinstance(value, bool):
        raise TriggerRefused(f"{key} must be true or false, got {value!r}"[:MAX_REASON_CHARS])
    return value


def checked_params(params: Any) -> dict[str, Any]:
    """ModelParams overrides, each a known field of the right type within its bounds."""
    if not isinstance(params, dict):
        raise TriggerRefused("params must be an object of ModelParams fields")
    for name, value in params.items():
        if name not in MODEL_PARAM_BOUNDS:
            raise TriggerRefused(f"unknown param {str(name)[:40]!r}; allowed: {sorted(MODEL_PARAM_BOUNDS)}")
        kind, low, high = MODEL_PARAM_BOUNDS[name]
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        typed = numeric and (kind is float or isinstance(value, int)) and math.isfinite(value)
        if not (typed and low <= value <= high):
            bounds = f"{kind.__name__} in [{low:g}, {high:g}]"
            raise TriggerRefused(f"param {name} must be {bounds}, got {value!r}"[:MAX_REASON_CHARS])
    return {name: MODEL_PARAM_BOUNDS[name][0](value) for name, value in params.items()}


def alarm_trigger(record: Any, config: RetrainConfig) -> Trigger | None:
    """None for what the loop does not act on: not an alarm, not ALARM, or an alarm not configured."""
    try:
        message = jsontext.loads(record["Sns"]["Message"])
        name, state = str(message["AlarmName"]), str(message["NewStateValue"])
    except (KeyError, TypeError, ValueError):
        logger.warning("ignoring a record that is not a CloudWatch alarm notification")
        return None
    if state != "ALARM":
        return None
    reason = f"{name} -> {state}: {message.get('NewStateReason', '')}"[:MAX_REASON_CHARS]
    if name in config.canary_alarms:
        return Trigger(Action.STOP_CANARY, Source.ALARM, reason, name, state)
    if name in config.rollback_alarms:
        return Trigger(Action.ROLLBACK_CHECK, Source.ALARM, reason, name, state)
    if name in config.retrain_alarms:
        return Trigger(Action.RETRAIN, Source.ALARM, reason, name, state)
    return None
