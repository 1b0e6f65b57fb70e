"""Guards of a retrain: one at a time (a lock object with a lease) and a cooldown since the last one.

The lock is taken and released only with conditional writes on its ETag: created if absent; an expired
or released lease taken over by replacing exactly the object that was read (If-Match), so of two takers
one wins; released by its holder alone, by overwriting its own lease (If-Match) with one that has ended.
Nothing is ever deleted: S3 conditional deletes are not implemented everywhere (LocalStack answers
NotImplemented), and the retrain role needs no s3:DeleteObject."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from lambda_retrain.ports import Store
from trip_core import jsontext
from trip_core.contracts import LOOP_LOCK_KEY, parse_utc, utc_iso
from trip_core.observability import logger


@dataclass(frozen=True)
class Lease:
    """The lock as its holder wrote it: the ETag is the proof of holding."""

    owner: str
    etag: str


def acquire_lock(store: Store, now: datetime, lease_seconds: int, owner: str) -> Lease | None:
    body = _lease_body(owner, now, now + timedelta(seconds=lease_seconds))
    etag = store.put_if_absent(LOOP_LOCK_KEY, body, "application/json")
    if etag is None:
        held = store.get_tagged(LOOP_LOCK_KEY)
        if held is None:  # absent again between the two calls: one more conditional create
            etag = store.put_if_absent(LOOP_LOCK_KEY, body, "application/json")
        elif lock_holder(held.body, now) is None:  # released, or a crashed run's lease: replace what was read
            etag = store.put_if_match(LOOP_LOCK_KEY, body, held.etag)
    return None if etag is None else Lease(owner, etag)


def _lease_body(owner: str, acquired: datetime, expires: datetime, **extra: str) -> bytes:
    lease = {
        "owner": owner,
        "token": uuid.uuid4().hex,  # two takers never write the same bytes (the same ETag)
        "acquired_at": utc_iso(acquired),
        "expires_at": utc_iso(expires),
        **extra,
    }
    return json.dumps(lease).encode()


def lock_holder(body: bytes | None, now: datetime) -> str | None:
    """Who holds the lock as `body` records it at `now`; None when it is free (absent, released, expired
    or unreadable, so a corrupt lock cannot stop the loop for good)."""
    if body is None:
        return None
    try:
        lease = jsontext.loads(body)
        holder, expires = str(lease["owner"]), parse_utc(lease["expires_at"])
    except (ValueError, KeyError, TypeError):
        return None
    return None if "released_at" in lease or expires <= now else holder


def release_lock(store: Store, lease: Lease, now: datetime) -> bool:
    """False when the lock is no longer this lease (taken over after it expired): left to its holder."""
    ended = _lease_body(lease.owner, now, now, released_at=utc_iso(now))
    released = store.put_if_match(LOOP_LOCK_KEY, ended, lease.etag) is not None
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
            release_lock(store, lease, datetime.now(UTC))  # when the run ends, not when it began


def cooldown_left(state: dict[str, Any], now: datetime, cooldown_minutes: float) -> float:
    """Minutes until the next retrain may run (0 when it may)."""
    last = state.get("last_retrain_at")
    if not last:
        return 0.0
    left = parse_utc(str(last)) + timedelta(minutes=cooldown_minutes) - now
    return max(0.0, left.total_seconds() / 60.0)
