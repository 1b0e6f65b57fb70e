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
import json
import time

from infra.demo import VALID_MONTH, train_demo_model
from infra.harness.accounting import LoadResult, Traffic
from infra.harness.scenario import start_services, stream_with_bar, warm_up
from infra.harness.stack import Stack, now_s
from infra.harness.streams import PredictionsConsumer


def run_load(stack: Stack, rides: int, bad_share: float, rate: float, seed: int) -> LoadResult:
    """Stream the rides through the deployed stack and account for every one."""
    traffic = Traffic.real(VALID_MONTH, rides, bad_share, seed, id_base=int(time.time()) * 100_000)
    consumer = PredictionsConsumer(stack["PredictionsStreamName"]).start()
    start = now_s()
    sent_at = stream_with_bar(traffic.records, stack, rate, consumer)
    rejections = traffic.wait_settled(stack, consumer, start, 120 + len(traffic.records) / 20)
    return traffic.tally(consumer, sent_at, rejections)


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
