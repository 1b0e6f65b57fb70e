"""Audit records of the loop: one JSON object per decision at `loop/audit/<timestamp>_<kind>.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from lambda_retrain.ports import Store
from trip_core.contracts import LOOP_AUDIT_PREFIX, LOOP_STATE_KEY


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
