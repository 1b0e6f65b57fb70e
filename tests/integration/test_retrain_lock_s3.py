"""The lock's conditional writes on moto's S3 (If-None-Match / If-Match on PutObject), through the
S3Store adapter the function uses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lambda_retrain.aws import S3Store
from lambda_retrain.guards import acquire_lock, lock_holder, release_lock
from tests.doubles.moto_s3 import moto_s3
from tests.doubles.retrain import race_for_an_expired_lease
from trip_core.contracts import LOOP_LOCK_KEY

NOW = datetime(2024, 5, 6, 12, 30, tzinfo=UTC)


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Store]:
    with moto_s3(monkeypatch, "models") as s3:
        yield S3Store("models", s3)


def holder(store: S3Store, now: datetime = NOW) -> Any:
    return lock_holder(store.get(LOOP_LOCK_KEY), now)


def test_of_two_takers_of_an_expired_lease_on_s3_exactly_one_wins(store: S3Store) -> None:
    first, rival = race_for_an_expired_lease(store, NOW)
    assert first is None and rival is not None and holder(store) == "rival"


def test_on_s3_only_the_holder_releases(store: S3Store) -> None:
    lease = acquire_lock(store, NOW, 60, "a")
    assert lease is not None and acquire_lock(store, NOW, 60, "b") is None
    later = NOW + timedelta(minutes=2)
    taken = acquire_lock(store, later, 60, "c")
    assert taken is not None and not release_lock(store, lease, later) and holder(store, later) == "c"
    assert release_lock(store, taken, later) and holder(store, later) is None
    assert not release_lock(store, taken, later)  # released already: nothing to release, no error
    assert acquire_lock(store, later, 60, "d") is not None  # a released lease is free at once
