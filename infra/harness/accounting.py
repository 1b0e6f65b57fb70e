"""Every ride accounted for: bad records the service must reject, and the tally of what came out of the
deployed stack (predicted on the predictions stream, rejected with a reason) against what went in.
Shared by `make reliability` (infra/load_test.py) and `make chaos` (infra/chaos)."""

from __future__ import annotations

import base64
import json
import random
import statistics
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from infra.harness.poll import wait_quietly
from infra.harness.rides import Ride, bad_record, mixed_in, real_rides
from infra.harness.scenario import percentile
from infra.harness.stack import Stack
from infra.harness.streams import PredictionsConsumer

MUTATIONS = [
    lambda r: {**r, "trip_distance": True},
    lambda r: {**r, "trip_distance": -1.0},
    lambda r: {**r, "trip_distance": 1e9},
    lambda r: {**r, "PULocationID": 999},
    lambda r: {**r, "DOLocationID": "130"},
    lambda r: {k: v for k, v in r.items() if k != "PULocationID"},
    lambda r: {**r, "pickup_datetime": "not a date"},
    lambda r: {**r, "trip_distance": None},
]


def bad_records(rides: list[Ride], share: float, seed: int, id_base: int) -> list[Ride]:
    """`share` of len(rides) bad records: mutations of real rides and, every ninth, arbitrary bytes."""
    rng = random.Random(seed)
    out = []
    for i in range(max(1, round(len(rides) * share))):
        if i % (len(MUTATIONS) + 1) == len(MUTATIONS):
            payload: Any = rng.randbytes(rng.randint(1, 64))
        else:
            payload = {"ride": MUTATIONS[i % (len(MUTATIONS) + 1)](rng.choice(rides).fields())}
        out.append(bad_record(id_base + i, payload))
    return out


@dataclass
class Traffic:
    """Consecutive real rides of a month in pickup order with `bad_share` bad records mixed in (the good
    keep their order), and what the stack must make of them: each good ride predicted, each bad one
    stored as rejected with its reason."""

    good: list[Ride]
    bad: list[Ride]
    records: list[Ride]

    @classmethod
    def real(cls, month: str, rides: int, bad_share: float, seed: int, id_base: int) -> Traffic:
        good = real_rides(month, rides, seed, id_base)
        bad = bad_records(good, bad_share, seed, id_base=id_base + rides)
        return cls(good, bad, mixed_in(good, bad, seed))

    def __post_init__(self) -> None:
        self.good_ids = {r.ride_id for r in self.good}
        self.bad_ids = {r.ride_id for r in self.bad}
        self.bad_payloads = {base64.b64encode(r.payload).decode() for r in self.bad}

    def rejections(self, stack: Stack, since: datetime) -> list[dict[str, Any]]:
        """The stored rejections of this traffic's records (the bad ones, and any good one wrongly)."""
        return [
            r
            for r in stack.rejections_since(since)
            if r["raw_base64"] in self.bad_payloads or ride_id_of(r) in self.good_ids
        ]

    def wait_settled(
        self, stack: Stack, consumer: PredictionsConsumer, since: datetime, timeout: float
    ) -> list[dict[str, Any]]:
        """Wait (quietly: a timeout is reported as lost rides, not raised) until every good ride came
        out and every bad one is stored; -> the rejections."""
        wait_quietly(lambda: self.good_ids <= consumer.received.keys(), timeout)
        wait_quietly(lambda: len(self.rejections(stack, since)) >= len(self.bad), 90)
        consumer.stop(linger=2)  # a last look for late duplicates
        return self.rejections(stack, since)

    def tally(
        self, consumer: PredictionsConsumer, sent_at: dict[Any, float], rejections: list[dict[str, Any]]
    ) -> LoadResult:
        return account(consumer, sent_at, self.good_ids, self.bad_ids, self.bad_payloads, rejections)


@dataclass
class LoadResult:
    sent: int
    sent_good: int
    sent_bad: int
    predicted: int
    rejected: int
    lost: int
    duplicated: int
    wrongly_rejected: int
    wrongly_predicted: int
    latency_p50_ms: float
    latency_p95_ms: float
    throughput_rides_per_s: float

    @property
    def accounted(self) -> bool:
        return self.predicted + self.rejected == self.sent and self.lost == 0


def ride_id_of(rejection: dict[str, Any]) -> Any:
    try:
        return json.loads(base64.b64decode(rejection["raw_base64"]))["ride_id"]
    except Exception:
        return None


def account(
    consumer: PredictionsConsumer,
    sent_at: dict[Any, float],
    good_ids: set[Any],
    bad_ids: set[Any],
    bad_payloads: set[str],
    rejections: list[dict[str, Any]],
) -> LoadResult:
    received = consumer.received
    predicted_ids = received.keys() & good_ids
    rejected_payloads = {r["raw_base64"] for r in rejections}
    latencies = [(received[i].arrival - sent_at[i]) * 1000 for i in predicted_ids]
    last_out = max((received[i].arrival for i in predicted_ids), default=time.time())
    return LoadResult(
        sent=len(good_ids) + len(bad_ids),
        sent_good=len(good_ids),
        sent_bad=len(bad_ids),
        predicted=len(predicted_ids),
        rejected=len(rejected_payloads & bad_payloads),
        lost=len(good_ids - predicted_ids) + len(bad_payloads - rejected_payloads),
        duplicated=sum(n - 1 for i, n in consumer.seen.items() if i in good_ids),
        wrongly_rejected=sum(1 for r in rejections if ride_id_of(r) in good_ids),
        wrongly_predicted=len(received.keys() & bad_ids),
        latency_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        latency_p95_ms=percentile(latencies, 95) if latencies else float("nan"),
        throughput_rides_per_s=(len(good_ids) + len(bad_ids)) / max(last_out - min(sent_at.values()), 1e-6),
    )
