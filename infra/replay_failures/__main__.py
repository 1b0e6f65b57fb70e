"""`python -m infra.replay_failures` (make replay-failures): see --help and the package docstring."""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from infra.aws import STACK_NAME
from infra.replay_failures.aws import stack_ports
from infra.replay_failures.service import TARGETS, Outcome, replay_queue


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make replay-failures",
        description="Re-drive every failed batch range in a function's on-failure queue from its stream; "
        "exit status 1 if any message is kept (lost, still failing, or not re-driven).",
    )
    parser.add_argument("--queue", choices=sorted(TARGETS), default="predict", help="whose failures queue")
    parser.add_argument("--stack", default=STACK_NAME, help=f"stack name (default {STACK_NAME})")
    parser.add_argument(
        "--region", help="replay on AWS in this region (default credentials); else LocalStack"
    )
    args = parser.parse_args(argv)
    target = TARGETS[args.queue]
    ports, stream_arn = stack_ports(target, args.stack, args.region)
    reports = replay_queue(ports, target, stream_arn)
    for report in reports:
        print(
            report.line(target.handled), file=sys.stdout if report.outcome is Outcome.REPLAYED else sys.stderr
        )
    outcomes = Counter(report.outcome for report in reports)
    print(
        f"{args.queue} failures queue: {len(reports)} message(s); "
        + ", ".join(f"{outcome.value.split(',')[0]} {outcomes[outcome]}" for outcome in Outcome)
    )
    return 0 if outcomes[Outcome.REPLAYED] == len(reports) else 1


if __name__ == "__main__":
    sys.exit(main())
