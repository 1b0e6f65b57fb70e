"""Guards of a retrain: one at a time (a lock object with a lease) and a cooldown since the last one.

The lock is taken and released only with conditional writes on its ETag: created if absent; an expired
lease taken over by replacing exactly the object that was read (If-Match), so of two takers of one
expired lease one wins; released by deleting it only while it is still the holder's own (If-Match)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from lambda_retrain.ports import Store
from trip_core.contracts import LOOP_LOCK_KEY, parse_utc, utc_iso
from trip_core.observability import logger


@dataclass(frozen=True)
class Lease:
    """The lock as its holder wrote it: the ETag is the proof of holding."""

    owner: str
    etag: str


def acquire_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> Lease | None:
    body = json.dumps(
        {
            "owner": owner,
            "token": uuid.uuid4().hex,  # two takers never write the same bytes (the same ETag)
            "acquired_at": utc_iso(now),
            "expires_at": utc_iso(now + timedelta(seconds=lease_seconds)),
        }
    ).encode()
    etag = store.put_if_absent(LOOP_LOCK_KEY, body, "application/json")
    if etag is None:
        held = store.get_tagged(LOOP_LOCK_KEY)
        if held is None:  # released between the two calls: one more conditional create
            etag = store.put_if_absent(LOOP_LOCK_KEY, body, "application/json")
        elif _lease_expired(held.body, now):  # a crashed run's lease: replace exactly what was read
            etag = store.put_if_match(LOOP_LOCK_KEY, body, held.etag)
    return None if etag is None else Lease(owner, etag)


def _lease_expired(held: bytes, now: datetime) -> bool:
    try:
        return parse_utc(json.loads(held)["expires_at"]) <= now
    except (ValueError, KeyError, TypeError):
        return True


def release_lock(store: Store, lease: Lease) -> bool:
    """False when the lock is no longer this lease (taken over after it expired): left to its holder."""
    released = store.delete_if_match(LOOP_LOCK_KEY, lease.etag)
    if not released:
        logger.warning(f"lock not released by {lease.owner}: it is no longer this holder's")
    return released


@contextmanager
def holding_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> Iterator[Lease | None]:
    """Yields the lease when the lock is ours (None otherwise); released on the way out only then."""
    lease = acquire_lock(store, now, lease_seconds, owner)
    try:
        yield lease
    finally:
        if lease is not None:
            release_lock(store, lease)


def cooldown_left(state: dict[str, Any], now: datetime, cooldown_minutes: float) -> float:
    """Minutes until the next retrain may run (0 when it may)."""
    last = state.get("last_retrain_at")
    if not last:
        return 0.0
    left = parse_utc(str(last)) + timedelta(minutes=cooldown_minutes) - now
    return max(0.0, left.total_seconds() / 60.0)
