"""Load through the deployed stack on LocalStack: N real rides + 1% bad records, every ride accounted for.

    python -m infra.load_test --rides 10000          # make reliability (full count)
    python -m infra.load_test --rides 1000 --json    # make bench: ride-in -> prediction-out figures

Starts what is missing (LocalStack, the stack, MLflow, a live model) the way `make demo` does, then
streams rides of a later real month plus bad records into the rides stream, reads the predictions
stream and the rejected-rides store, and accounts: predicted + rejected = sent, lost = 0, and the
number of ride_ids that came out more than once (delivery is at least once; consumers de-duplicate
by ride_id, README "Serving").
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from infra.demo import (
    VALID_MONTH,
    PredictionsConsumer,
    Ride,
    live_pointer,
    make_rides,
    pct,
    rejections_since,
    start_services,
    stream_rides,
    train,
    wait_until,
    warm_up,
)


class CountingDict(dict[Any, Any]):
    """The consumer's ride_id -> prediction map, counting every copy that came out."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: Counter[Any] = Counter()

    def __setitem__(self, key: Any, value: Any) -> None:
        self.copies[key] += 1
        super().__setitem__(key, value)


def bad_records(rides: list[Ride], share: float, seed: int, id_base: int) -> list[Ride]:
    """`share` of len(rides) bad records: mutations of real rides and arbitrary bytes."""
    rng = random.Random(seed)
    mutations = [
        lambda r: {**r, "trip_distance": True},
        lambda r: {**r, "trip_distance": -1.0},
        lambda r: {**r, "trip_distance": 1e9},
        lambda r: {**r, "PULocationID": 999},
        lambda r: {**r, "DOLocationID": "130"},
        lambda r: {k: v for k, v in r.items() if k != "PULocationID"},
        lambda r: {**r, "pickup_datetime": "not a date"},
        lambda r: {**r, "trip_distance": None},
    ]
    out = []
    for i in range(max(1, round(len(rides) * share))):
        ride_id = id_base + i
        if i % (len(mutations) + 1) == len(mutations):
            payload = rng.randbytes(rng.randint(1, 64))
        else:
            source = json.loads(rng.choice(rides).payload)["ride"]
            payload = json.dumps(
                {"ride": mutations[i % (len(mutations) + 1)](source), "ride_id": ride_id}
            ).encode()
        out.append(Ride(ride_id, payload, good=False))
    return out


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


def run_load(outputs: dict[str, str], rides: int, bad_share: float, rate: float, seed: int) -> LoadResult:
    """Stream the rides through the deployed stack and account for every one."""
    run_id = int(time.time())
    good = [r for r in make_rides(VALID_MONTH, rides, seed, id_base=run_id * 100_000) if r.good]
    bad = bad_records(good, bad_share, seed, id_base=run_id * 100_000 + 90_000)
    everything = good + bad
    random.Random(seed).shuffle(everything)
    good_ids = {r.ride_id for r in good}
    bad_payloads = {base64.b64encode(r.payload).decode() for r in bad}

    received = CountingDict()
    consumer = PredictionsConsumer(outputs["PredictionsStreamName"], received=received)
    consumer.thread.start()
    run_start = datetime.now(UTC).replace(microsecond=0)
    sent_at = stream_rides(everything, outputs["RidesStreamName"], rate, consumer)
    wait_until(lambda: good_ids <= received.keys(), 120 + len(everything) / 20, "predictions")

    def my_rejections() -> list[dict[str, Any]]:
        found = rejections_since(outputs["RejectedBucketName"], run_start)
        return [r for r in found if r["raw_base64"] in bad_payloads or _ride_id(r) in good_ids]

    rejections = wait_until(lambda: (r := my_rejections()) and len(r) >= len(bad) and r, 90, "rejections")
    rejections = rejections or my_rejections()
    time.sleep(2)  # a last look for late duplicates before stopping the reader
    consumer.stop.set()
    consumer.thread.join(timeout=5)

    predicted_ids = received.keys() & good_ids
    rejected_payloads = {r["raw_base64"] for r in rejections}
    latencies = [(received[i].arrival - sent_at[i]) * 1000 for i in predicted_ids]
    last_out = max((received[i].arrival for i in predicted_ids), default=time.time())
    first_in = min(sent_at.values())
    return LoadResult(
        sent=len(everything),
        sent_good=len(good),
        sent_bad=len(bad),
        predicted=len(predicted_ids),
        rejected=len(rejected_payloads & bad_payloads),
        lost=len(good_ids - predicted_ids) + len(bad_payloads - rejected_payloads),
        duplicated=sum(n - 1 for i, n in received.copies.items() if i in good_ids),
        wrongly_rejected=sum(1 for r in rejections if _ride_id(r) in good_ids),
        wrongly_predicted=len(received.keys() & {r.ride_id for r in bad}),
        latency_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        latency_p95_ms=pct(latencies, 95) if latencies else float("nan"),
        throughput_rides_per_s=len(everything) / max(last_out - first_in, 1e-6),
    )


def _ride_id(rejection: dict[str, Any]) -> Any:
    try:
        return json.loads(base64.b64decode(rejection["raw_base64"]))["ride_id"]
    except Exception:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.load_test", description=__doc__.splitlines()[0])
    parser.add_argument("--rides", type=int, default=10_000)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=400, help="rides/s offered (0 = as fast as possible)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as bench JSON lines")
    args = parser.parse_args(argv)
    outputs = start_services()["outputs"]
    try:
        live_pointer(outputs)
    except Exception:
        train(outputs)
    warm_up(outputs)
    result = run_load(outputs, args.rides, args.bad_share, args.rate, args.seed)
    if args.json:
        for metric, value, unit in (
            (f"e2e_latency_p50_{args.rides}_rides", result.latency_p50_ms, "ms"),
            (f"e2e_latency_p95_{args.rides}_rides", result.latency_p95_ms, "ms"),
            ("e2e_throughput", result.throughput_rides_per_s, "rides/s"),
        ):
            print(json.dumps({"metric": metric, "value": round(value, 1), "unit": unit}))
    print(json.dumps(result.__dict__ | {"accounted": result.accounted}), flush=True)
    return 0 if result.accounted and not result.wrongly_rejected and not result.wrongly_predicted else 1


if __name__ == "__main__":
    raise SystemExit(main())
