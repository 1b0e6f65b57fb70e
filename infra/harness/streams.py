"""Kinesis for the scenarios: put records (resending the ones PutRecords refused), read a stream from now
on, a consumer thread that collects the predictions stream by ride_id (with the prediction id each ride
was given), and actual durations onto the actuals stream."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from infra.aws import client
from infra.harness.poll import poll
from infra.harness.rides import Ride
from trip_core.capture import Actual, encode_actuals

PUT_ATTEMPTS = 5
PUT_BATCH = 100  # rides per PutRecords when streaming at a rate
SHOW_FIRST = 5
Progress = Callable[[int, int, str], None]  # (done, total, text)


def put_records(
    stream: str, rides: Sequence[Ride], kinesis: Any | None = None, attempts: int = PUT_ATTEMPTS
) -> None:
    """PutRecords of `rides` (partition key = ride_id); PutRecords may refuse single records under
    throughput limits: those are sent again, up to `attempts` puts in all, then it is an error."""
    _put_entries(
        stream, [{"Data": r.payload, "PartitionKey": str(r.ride_id)} for r in rides], kinesis, attempts
    )


def put_actuals(stream: str, actuals: Sequence[Actual], kinesis: Any | None = None) -> None:
    """Actual durations on the actuals stream, one record per actual (docs/architecture.md, "Actuals"),
    partition key = the prediction id, in PutRecords batches of 500."""
    entries = [{"Data": encode_actuals([a]).rstrip(b"\n"), "PartitionKey": a.prediction_id} for a in actuals]
    for i in range(0, len(entries), 500):
        _put_entries(stream, entries[i : i + 500], kinesis, PUT_ATTEMPTS)


def _put_entries(stream: str, entries: list[dict[str, Any]], kinesis: Any | None, attempts: int) -> None:
    kinesis = kinesis or client("kinesis")
    pending = entries
    for _attempt in range(attempts):
        response = kinesis.put_records(StreamName=stream, Records=pending)
        pending = [rec for rec, res in zip(pending, response["Records"], strict=True) if "ErrorCode" in res]
        if not pending:
            return
        time.sleep(0.2)
    raise RuntimeError(f"PutRecords kept failing for {len(pending)} records of {stream}")


def put_payloads(stream: str, payloads: Sequence[dict[str, Any]], attempts: int = PUT_ATTEMPTS) -> None:
    """Ride payloads (dicts with a ride_id) on `stream`, in PutRecords batches of 500."""
    rides = [Ride(p.get("ride_id"), json.dumps(p).encode(), good=True) for p in payloads]
    for i in range(0, len(rides), 500):
        put_records(stream, rides[i : i + 500], attempts=attempts)


class StreamReader:
    """Reads every shard of a stream from the position it had when created (LATEST) onwards."""

    def __init__(self, stream: str, kinesis: Any | None = None) -> None:
        self.kinesis = kinesis or client("kinesis")
        shards = self.kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]
        self.iterators = {
            s["ShardId"]: self.kinesis.get_shard_iterator(
                StreamName=stream, ShardId=s["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for s in shards
        }
        self.records: list[dict[str, Any]] = []  # the decoded records read() collected

    def fetch(self, errors: list[str] | None = None) -> list[dict[str, Any]]:
        """The Kinesis records that arrived since the last fetch. A shard that fails is retried at the
        next fetch: its error goes to `errors` if given, else it is raised."""
        out: list[dict[str, Any]] = []
        for shard, iterator in list(self.iterators.items()):
            try:
                response = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
            except Exception as exc:
                if errors is None:
                    raise
                errors.append(repr(exc))
                continue
            self.iterators[shard] = response["NextShardIterator"]
            out.extend(response["Records"])
        return out

    def read(self) -> list[dict[str, Any]]:
        """Every decoded record so far (this fetch's appended)."""
        self.records.extend(json.loads(r["Data"]) for r in self.fetch())
        return self.records

    def wait_for(self, count: int, timeout: float) -> list[dict[str, Any]]:
        return poll(
            lambda: self.records if len(self.read()) >= count else None,
            timeout=timeout,
            what=f"{count} records (have {len(self.records)})",
        )


def stream_rides(
    rides: Sequence[Ride], stream: str, rate: float, progress: Progress | None = None
) -> dict[Any, float]:
    """PutRecords in batches of PUT_BATCH at about `rate` rides/s (0 = as fast as possible); returns
    ride_id -> the time its batch went out."""
    kinesis = client("kinesis")
    sent_at: dict[Any, float] = {}
    started = time.perf_counter()
    for i in range(0, len(rides), PUT_BATCH):
        if rate > 0:  # pace: this chunk is due at i / rate seconds
            time.sleep(max(0.0, started + i / rate - time.perf_counter()))
        chunk = rides[i : i + PUT_BATCH]
        now = time.time()
        put_records(stream, chunk, kinesis)
        sent_at.update((r.ride_id, now) for r in chunk)
        if progress:
            done = i + len(chunk)
            progress(
                done, len(rides), f"rides sent  {done / max(time.perf_counter() - started, 1e-6):5.0f}/s"
            )
    return sent_at


@dataclass
class Received:
    ride_id: Any
    prediction: float
    version: str
    prediction_id: str  # what the client names its actual by
    arrival: float  # the output record's ApproximateArrivalTimestamp (epoch s)
    read: float  # when this consumer got it


def actuals_for(rides: Iterable[Ride], received: Mapping[Any, Received]) -> list[Actual]:
    """The actual durations of the good rides that were predicted, named by the prediction id each was
    given on the predictions stream (what a client reports when a ride ends)."""
    return [
        Actual(received[r.ride_id].prediction_id, r.duration)
        for r in rides
        if r.good and r.duration is not None and r.ride_id in received
    ]


class PredictionsConsumer:
    """Reads the predictions stream from LATEST in a thread until stopped: ride_id -> the last
    prediction (`received`), and how many copies came out (`seen`: delivery is at least once)."""

    def __init__(self, stream: str, on_first: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.reader = StreamReader(
            stream, client("kinesis")
        )  # its own client: boto3 clients are per thread here
        self.received: dict[Any, Received] = {}
        self.seen: collections.Counter[Any] = collections.Counter()
        self.errors: list[str] = []
        self.on_first = on_first  # called with the first few prediction records, to show them
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> PredictionsConsumer:
        self.thread.start()
        return self

    def stop(self, linger: float = 0.0) -> None:
        """Stop reading (after `linger` seconds more, to catch late duplicates)."""
        self.stop_event.wait(linger)
        self.stop_event.set()
        self.thread.join(timeout=5)

    def _loop(self) -> None:
        while not self.stop_event.is_set():
            records = self.reader.fetch(self.errors)
            now = time.time()
            for record in records:
                self._take(json.loads(record["Data"]), record["ApproximateArrivalTimestamp"].timestamp(), now)
            if not records:
                self.stop_event.wait(0.2)

    def _take(self, data: dict[str, Any], arrival: float, now: float) -> None:
        p = data["prediction"]
        item = Received(
            p["ride_id"], float(p["ride_duration"]), str(data["version"]), p["prediction_id"], arrival, now
        )
        self.received[item.ride_id] = item
        self.seen[item.ride_id] += 1
        if self.on_first and len(self.received) <= SHOW_FIRST:
            self.on_first(data)
