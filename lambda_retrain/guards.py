"""Guards of a retrain: one at a time (a lock object with a lease) and a cooldown since the last one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from lambda_retrain.ports import Store
from trip_core.contracts import LOOP_LOCK_KEY, parse_utc, utc_iso


def acquire_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> bool:
    body = json.dumps(
        {
            "owner": owner,
            "acquired_at": utc_iso(now),
            "expires_at": utc_iso(now + timedelta(seconds=lease_seconds)),
        }
    ).encode()
    if store.put_if_absent(LOOP_LOCK_KEY, body):
        return True
    if not _lease_expired(store.get(LOOP_LOCK_KEY), now):
        return False
    store.delete(LOOP_LOCK_KEY)  # a crashed run's lease: take it over (one retry, conditional again)
    return store.put_if_absent(LOOP_LOCK_KEY, body)


def _lease_expired(held: bytes | None, now: datetime) -> bool:
    try:
        return held is None or parse_utc(json.loads(held)["expires_at"]) <= now
    except (ValueError, KeyError, TypeError):
        return True


def release_lock(store: Store) -> None:
    store.delete(LOOP_LOCK_KEY)


@contextmanager
def holding_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> Iterator[bool]:
    """Yields whether the lock is ours; released on the way out only when it was."""
    acquired = acquire_lock(store, now, lease_seconds, owner)
    try:
        yield acquired
    finally:
        if acquired:
            release_lock(store)


def cooldown_left(state: dict[str, Any], now: datetime, cooldown_minutes: float) -> float:
    """Minutes until the next retrain may run (0 when it may)."""
    last = state.get("last_retrain_at")
    if not last:
        return 0.0
    left = parse_utc(str(last)) + timedelta(minutes=cooldown_minutes) - now
    return max(0.0, left.total_seconds() / 60.0)
