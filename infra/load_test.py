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
from dataclasses import dataclass
from typing import Any

from infra.demo import VALID_MONTH, train_demo_model
from infra.harness.poll import wait_quietly
from infra.harness.rides import Ride, bad_record, real_rides
from infra.harness.scenario import percentile, start_services, stream_with_bar, warm_up
from infra.harness.stack import Stack, now_s
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


def _ride_id(rejection: dict[str, Any]) -> Any:
    try:
        return json.loads(base64.b64decode(rejection["raw_base64"]))["ride_id"]
    except Exception:
        return None


def run_load(stack: Stack, rides: int, bad_share: float, rate: float, seed: int) -> LoadResult:
    """Stream the rides through the deployed stack and account for every one."""
    id_base = int(time.time()) * 100_000
    good = real_rides(VALID_MONTH, rides, seed, id_base)
    bad = bad_records(good, bad_share, seed, id_base=id_base + 90_000)
    everything = good + bad
    random.Random(seed).shuffle(everything)
    good_ids = {r.ride_id for r in good}
    bad_payloads = {base64.b64encode(r.payload).decode() for r in bad}

    def my_rejections() -> list[dict[str, Any]]:
        found = stack.rejections_since(start)
        return [r for r in found if r["raw_base64"] in bad_payloads or _ride_id(r) in good_ids]

    consumer = PredictionsConsumer(stack["PredictionsStreamName"]).start()
    start = now_s()
    sent_at = stream_with_bar(everything, stack, rate, consumer)
    wait_quietly(lambda: good_ids <= consumer.received.keys(), 120 + len(everything) / 20)
    wait_quietly(lambda: len(my_rejections()) >= len(bad), 90)
    consumer.stop(linger=2)  # a last look for late duplicates
    return account(consumer, sent_at, good_ids, {r.ride_id for r in bad}, bad_payloads, my_rejections())


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
        wrongly_rejected=sum(1 for r in rejections if _ride_id(r) in good_ids),
        wrongly_predicted=len(received.keys() & bad_ids),
        latency_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        latency_p95_ms=percentile(latencies, 95) if latencies else float("nan"),
        throughput_rides_per_s=(len(good_ids) + len(bad_ids)) / max(last_out - min(sent_at.values()), 1e-6),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.load_test", description=__doc__.splitlines()[0])
    parser.add_argument("--rides", type=int, default=10_000)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--rate", type=float, default=400, help="rides/s offered (0 = as fast as possible)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as bench JSON lines")
    args = parser.parse_args(argv)
    stack, _ = start_services()
    if not stack.has_live():
        train_demo_model(stack)
    warm_up(stack)
    result = run_load(stack, args.rides, args.bad_share, args.rate, args.seed)
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
