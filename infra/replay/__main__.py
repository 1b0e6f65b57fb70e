"""`python -m infra.replay` (make replay REPLAY_ARGS="..."): see --help and docs/replay.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.replay import traffic as traffic_mod
from infra.replay.model import bundle_dir, train_model
from infra.replay.scenario import DEFAULT_BATCH_MINUTES, report_lines, run_replay, write_picture
from infra.replay.template import ROOT
from training.model import ModelParams

DAY_HELP = (
    "day1 is the first calendar day (New York local) of the first --replay file's month (from its name, "
    "else of its median pickup); dayN starts at 00:00 New York local of day1 + N - 1 days."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make replay REPLAY_ARGS=...",
        description="Replay TLC months in pickup-time order through the service's real code on a simulated "
        "clock (moto S3/Kinesis/CloudWatch), the template's alarms evaluated on the monitor's metrics.",
        epilog=DAY_HELP,
    )
    model = parser.add_mutually_exclusive_group(required=True)
    model.add_argument(
        "--train", nargs="+", metavar="FILE", help="training months (as make train; needs --valid)"
    )
    model.add_argument(
        "--bundle", type=Path, metavar="DIR", help="bundle.npz + reference_profile.json instead"
    )
    parser.add_argument("--valid", metavar="FILE", help="validation month (with --train)")
    parser.add_argument(
        "--replay", nargs="+", required=True, metavar="FILE", help="months to replay, in order"
    )
    parser.add_argument(
        "--inject",
        nargs="*",
        default=[],
        metavar="SPEC",
        help="distance*F@dayN (trip_distance of rides picked up from dayN on times F) or "
        "duration*F@dayN (their actual durations times F, inputs unchanged). " + DAY_HELP,
    )
    parser.add_argument("--days", type=int, metavar="N", help="replay only day1 .. dayN")
    parser.add_argument(
        "--max-iter", type=int, default=ModelParams.max_iter, help="boosting iterations (max)"
    )
    parser.add_argument(
        "--batch-minutes",
        type=float,
        default=DEFAULT_BATCH_MINUTES,
        help="rides sent within this many simulated minutes reach the function as one batch",
    )
    parser.add_argument(
        "--loop",
        action="store_true",
        help="the closed loop too: the retrain function on its alarms and schedule (docs/replay.md)",
    )
    parser.add_argument(
        "--evaluation",
        metavar="FILE",
        help="with --loop: the trusted month the loop's gate scores on (e.g. the month before --replay)",
    )
    parser.add_argument(
        "--param",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter overrides (e.g. RetrainTargetRows=10000)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / ".state" / "replay",
        metavar="DIR",
        help="where replay.svg and the trained model go",
    )
    args = parser.parse_args(argv)
    if args.train and not args.valid:
        parser.error("--train needs --valid")
    if args.loop and not args.evaluation:
        parser.error("--loop needs --evaluation (the loop's gate fails closed without it)")
    try:
        args.injections = [traffic_mod.Injection.parse(spec) for spec in args.inject]
    except ValueError as error:
        parser.error(str(error))
    if any("=" not in item for item in args.param):
        parser.error("--param takes NAME=VALUE")
    args.parameters = dict(item.split("=", 1) for item in args.param)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print("building the model ...", file=sys.stderr, flush=True)
    files = (
        bundle_dir(args.bundle)
        if args.bundle
        else train_model(args.train, args.valid, args.out / "model", args.max_iter)
    )
    traffic = traffic_mod.build_traffic(args.replay, args.injections, args.days)
    print(f"replaying {len(traffic)} rides ...", file=sys.stderr, flush=True)
    outcome = run_replay(traffic, files, args.batch_minutes, args.loop, args.parameters, args.evaluation)
    picture = args.out / "replay.svg"
    write_picture(
        outcome,
        picture,
        f"replay of {', '.join(Path(f).name for f in args.replay)} {' '.join(args.inject)}".strip(),
    )
    lines = report_lines(outcome)
    print("\n".join(lines[:-1]))
    print(f"picture: {picture}")
    print(lines[-1])


if __name__ == "__main__":
    main()
