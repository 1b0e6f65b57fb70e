"""Audit records of the loop: one JSON object per decision at `loop/audit/<timestamp>_<kind>.json`,
mirrored as tags on the MLflow version it concerns when MLflow is configured."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from lambda_retrain.config import RetrainConfig
from lambda_retrain.ports import Ports, Store
from lambda_retrain.triggers import Trigger
from trip_core.contracts import DEFAULT_MODEL_NAME, LOOP_AUDIT_PREFIX, LOOP_STATE_KEY, utc_iso
from trip_core.observability import logger


class DecisionKind(StrEnum):
    PROMOTED = "promoted"
    REFUSED = "refused"
    SKIPPED = "skipped"
    ROLLBACK = "rollback"
    ROLLBACK_KEPT = "rollback_kept"
    FAILED = "failed"  # a retrain or rollback check raised: the error, then Lambda reports it
    IGNORED = "ignored"  # a notification for an alarm CloudWatch does not describe as in ALARM
    INVALID_REQUEST = "invalid_request"  # a direct invoke refused (unknown key, bad param, force_promote)
    ROLLOUT = "rollout"  # a challenger entered a stage of its rollout (shadow, canary, awaiting approval)
    RETIRED = "retired"  # a challenger's rollout ended without its promotion


@dataclass(frozen=True)
class Decision:
    """One audited decision, as the handler answers it."""

    kind: DecisionKind
    audit_key: str
    verdict: str | None
    version: str | None
    metrics: dict[str, Any] | None
    data: dict[str, Any] | None

    def answer(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "audit_key": self.audit_key,
            "verdict": self.verdict,
            "version": self.version,
            "metrics": self.metrics,
            "data": self.data,
        }


def audit_key(moment: datetime, kind: str) -> str:
    return f"{LOOP_AUDIT_PREFIX}{moment.astimezone(UTC):%Y%m%dT%H%M%S%fZ}_{kind}.json"


def write_audit(store: Store, moment: datetime, kind: str, record: dict[str, Any]) -> str:
    key, n = audit_key(moment, kind), 1
    while store.get(key) is not None:  # two decisions in the same microsecond (tests): keep both
        n += 1
        key = audit_key(moment, kind).replace(".json", f"_{n}.json")
    document = {"schema": 1, "kind": kind, **record}
    store.put(key, json.dumps(document, sort_keys=True, default=str).encode(), "application/json")
    return key


def read_audit(store: Store) -> list[dict[str, Any]]:
    records = []
    for key in sorted(store.list_keys(LOOP_AUDIT_PREFIX)):
        body = store.get(key)
        if body is not None:
            records.append({"key": key, **json.loads(body)})
    return records


def read_state(store: Store) -> dict[str, Any]:
    body = store.get(LOOP_STATE_KEY)
    return {} if body is None else dict(json.loads(body))


def write_state(store: Store, state: dict[str, Any]) -> None:
    store.put(LOOP_STATE_KEY, json.dumps(state, sort_keys=True).encode(), "application/json")


def record_base(trigger: Trigger, config: RetrainConfig, now: datetime, actor: str) -> dict[str, Any]:
    """The fields every decision's record starts with."""
    return {
        "time": utc_iso(now),
        "model_name": config.model_name,
        "trigger": trigger.record(),
        "actor": actor,
    }


def record_decision(
    ports: Ports, now: datetime, kind: DecisionKind, record: dict[str, Any], mlflow_version: str | None = None
) -> Decision:
    key = write_audit(ports.models, now, kind, record)
    if ports.tracker is not None and mlflow_version is not None:
        tags = {
            "loop.last_decision": str(kind),
            "loop.verdict": str(record.get("verdict", ""))[:4000],
            "loop.audit_key": key,
            "loop.time": utc_iso(now),
            **({"loop.stage": str(record["stage"])} if "stage" in record else {}),
        }
        model_name = str(record.get("model_name", DEFAULT_MODEL_NAME))
        try:
            ports.tracker.set_version_tags(model_name, mlflow_version, tags)
        except Exception as exc:  # the S3 record stands; MLflow being down must not undo a decision
            logger.warning(f"MLflow tags on version {mlflow_version} failed: {exc}")
    logger.info(f"loop decision {kind}: {record.get('verdict')}")
    return Decision(
        kind, key, record.get("verdict"), record.get("version"), record.get("metrics"), record.get("data")
    )
