"""`make demo`: the whole service on this machine, end to end, then a summary.

    .venv/bin/python -m infra.demo [--rides 3000] [--rate 400] [--month data/green_tripdata_2023-03.parquet]

Steps: LocalStack up -> `sam build` + deploy of template.yaml (create, or update) -> MLflow server up
(artifacts on LocalStack S3) -> train on 2023-01 + 2023-02, validate on 2023-03, register and gate
(the first model is promoted; a re-run registers a new version gated against the live one) ->
stream rides of a real month (plus a few deliberately bad records) into the rides stream with
PutRecords, while reading the predictions stream -> send the actual durations (actuals objects)
-> run the monitor over the run's window -> summary (predictions, rejections, drift verdicts,
MAE/RMSE vs validation, alarm states, latency, where to look).

LocalStack and MLflow are left running (inspect the results; `make localstack-down mlflow-down`
stops them). The steps are the harness's (infra/harness/). Settings also from the environment:
DEMO_RIDES, DEMO_RATE, DEMO_MONTH, DEMO_SEED.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from infra.aws import ENDPOINT, client
from infra.harness.mlflow import MLFLOW_URL
from infra.harness.poll import wait_quietly
from infra.harness.rides import OK_RIDE, ROOT, Ride, bad_record, mixed_in, pickup_window, real_rides
from infra.harness.scenario import (
    CONSOLE,
    OUT,
    SAY,
    percentile,
    show_prediction,
    start_services,
    stream_with_bar,
    train,
    warm_up,
)
from infra.harness.stack import Stack, now_s
from infra.harness.streams import PredictionsConsumer, Received
from trip_core.capture import Actual
from trip_core.pointer import ModelPointer

TRAIN_MONTHS = ["data/green_tripdata_2023-01.parquet", "data/green_tripdata_2023-02.parquet"]
VALID_MONTH = "data/green_tripdata_2023-03.parquet"
PY_CLIENT = ".venv/bin/python -c \"from infra.aws import client; print(client('"
# what a client may send that is not a ride: each must end in the rejected store
BAD_PAYLOADS: list[Any] = [
    b"this is not JSON",
    [1, 2, 3],
    {"ride": {**OK_RIDE, "trip_distance": True}},
    {"ride": {**OK_RIDE, "PULocationID": 999}},
    {"ride": {**OK_RIDE, "trip_distance": -2.5}},
    {"ride": {k: v for k, v in OK_RIDE.items() if k != "DOLocationID"}},
    {"ride": {**OK_RIDE, "pickup_datetime": "yesterday"}},
    {"ride": {**OK_RIDE, "trip_distance": 500}},
]


def make_rides(month: str, count: int, seed: int, id_base: int) -> list[Ride]:
    """`count` real rides of `month` plus the BAD_PAYLOADS, mixed in at random places."""
    rides = real_rides(month, count, seed, id_base)
    bad = [bad_record(id_base + len(rides) + j, p) for j, p in enumerate(BAD_PAYLOADS)]
    return mixed_in(rides, bad, seed)


@dataclass
class Traffic:
    """What went in and what came out of one streamed run."""

    start: datetime
    run_id: int
    good: dict[Any, Ride]
    bad_count: int
    predicted: dict[Any, Received]  # of this run's good rides
    rejected: list[dict[str, Any]]
    sent_at: dict[Any, float]

    @property
    def lost(self) -> int:
        return len(self.good) + self.bad_count - len(self.predicted) - len(self.rejected)


def stream_month(stack: Stack, args: argparse.Namespace) -> Traffic:
    CONSOLE.step(f"stream {args.rides} rides of {args.month} (+ bad records) into {stack['RidesStreamName']}")
    run_id = int(time.time())
    rides = make_rides(args.month, args.rides, args.seed, id_base=run_id * 100_000)
    good = {r.ride_id: r for r in rides if r.good}
    consumer = PredictionsConsumer(stack["PredictionsStreamName"], on_first=show_prediction).start()
    start = now_s()
    sent_at = stream_with_bar(rides, stack, args.rate, consumer)
    bad_count = len(rides) - len(good)
    SAY(f"   waiting for {len(good)} predictions and {bad_count} rejections ...")
    waited = time.perf_counter()
    wait_quietly(lambda: good.keys() <= consumer.received.keys(), 180 + len(rides) / 50)
    wait_quietly(lambda: len(stack.rejections_since(start)) >= bad_count, 60)
    consumer.stop()
    predicted = {k: v for k, v in consumer.received.items() if k in good}
    rejected = stack.rejections_since(start)
    SAY(
        f"   {len(predicted)} predictions, {len(rejected)} rejections "
        f"({time.perf_counter() - waited:.1f} s after the last put)"
    )
    return Traffic(start, run_id, good, bad_count, predicted, rejected, sent_at)


def send_actuals(stack: Stack, traffic: Traffic) -> None:
    CONSOLE.step("send the actual durations (actuals/ JSON lines in the capture bucket)")
    actuals = [Actual(r.ride_id, r.duration) for r in traffic.good.values() if r.duration is not None]
    (key,) = stack.send_actuals(actuals, f"demo-{traffic.run_id}")
    SAY(f"   s3://{stack['CaptureBucketName']}/{key} ({len(traffic.good)} rides)")


def monitor(stack: Stack, traffic: Traffic) -> dict[str, Any]:
    """The monitor over the pickups of the run's rides; its report (a copy + the HTML in artifacts/demo)."""
    CONSOLE.step("run the monitor over the pickup-time window of the run's rides")
    started = time.perf_counter()
    start, _ = pickup_window(r.fields() for r in traffic.good.values())
    # up to now: rejected rides count by arrival, and the run's bad records arrived after the last pickup
    event, answer = stack.monitor(start, now_s() + timedelta(seconds=1))
    SAY(f"   {json.dumps(event)} -> {json.dumps(answer)} ({time.perf_counter() - started:.1f} s)")
    report = stack.report(answer["report_key"])
    html_key = answer["report_key"].rsplit(".", 1)[0] + ".html"
    (OUT / "drift_report.json").write_text(json.dumps(report, indent=1))
    (OUT / "drift_report.html").write_bytes(stack.get("CaptureBucketName", html_key))
    report["_html_key"] = html_key
    return report


# ------------------------------------------------------------------------------------ summary


def say_traffic(args: argparse.Namespace, traffic: Traffic, deploy: dict[str, Any]) -> None:
    pad = " " * 22
    versions = sorted({m.version for m in traffic.predicted.values()})
    sent = len(traffic.good) + traffic.bad_count
    SAY(
        f"rides sent            {sent} ({len(traffic.good)} real rides of {args.month}, "
        f"{traffic.bad_count} bad records)"
    )
    SAY(
        f"predictions made      {len(traffic.predicted)} (read from the predictions stream; "
        f"model version(s) {versions})"
    )
    SAY(f"rejected              {len(traffic.rejected)} (rejected store), lost: {traffic.lost}")
    reasons = collections.Counter(
        f"{r['field']}: {r['reason']}" for i in traffic.rejected for r in i["reasons"]
    )
    for reason, n in reasons.most_common(10):
        SAY(f"{pad}  {n} x {reason}")
    SAY(f"deploy time           {deploy['deploy_s']:.1f} s ({deploy['deploy_kind']}; sam build + deploy)")


def say_latency(args: argparse.Namespace, traffic: Traffic) -> None:
    mine = [m for m in traffic.predicted.values() if m.ride_id in traffic.sent_at]
    arrival = [(m.arrival - traffic.sent_at[m.ride_id]) * 1000 for m in mine]
    read = [(m.read - traffic.sent_at[m.ride_id]) * 1000 for m in mine]
    SAY(
        f"latency in -> out     p50 {percentile(arrival, 50):.0f} ms, p95 {percentile(arrival, 95):.0f} ms, "
        f"max {max(arrival, default=0):.0f} ms (PutRecords -> the prediction's ApproximateArrivalTimestamp, "
        f"{args.rate:g} rides/s offered)"
    )
    SAY(
        f"latency in -> read    p50 {percentile(read, 50):.0f} ms, "
        f"p95 {percentile(read, 95):.0f} ms (read here)"
    )


def say_model(training: dict[str, Any] | None, pointer: ModelPointer) -> None:
    if training:
        SAY(
            f"training              version {training['version']}: {training['verdict']} "
            f"({training['rows_train']} train rows, {training['seconds']} s)"
        )
    SAY(
        f"live model            {pointer.model_name} v{pointer.version}: "
        f"validation MAE {pointer.validation_mae:.3f}, RMSE {pointer.validation_rmse:.3f} min"
    )


def say_drift(drift: dict[str, Any]) -> None:
    SAY(f"  drift share         {drift['drift_share']:.2f} (dataset drift: {drift['dataset_drift']})")
    items = sorted(drift["features"].items())
    if drift.get("prediction"):
        items.append(("(prediction)", drift["prediction"]))
    for name, f in items:
        verdict = "DRIFT" if f.get("drifted") else "ok"
        SAY(
            f"    {name:20s} {verdict:5s} {f.get('statistic', '')} {f.get('distance', float('nan')):.4g}"
            f" (threshold {f.get('threshold', '')})"
        )


def say_quality(q: dict[str, Any], pointer: ModelPointer) -> None:
    if not q:
        return
    low, high = q["domain_minutes"]
    joined = f"{q['joined']} joined, {q['in_domain']} in {low:g}-{high:g} min"
    if q.get("mae") is not None:
        SAY(
            f"  quality on actuals  {joined}: MAE {q['mae']:.3f} (x{q['mae_ratio']:.2f} of "
            f"validation {pointer.validation_mae:.3f}), RMSE {q['rmse']:.3f} (x{q['rmse_ratio']:.2f} of "
            f"{pointer.validation_rmse:.3f})"
        )
    else:
        SAY(f"  quality on actuals  {joined}: too few, not published")


def say_report(report: dict[str, Any], pointer: ModelPointer) -> None:
    window, rej = report["window"], report["rejected"]
    SAY(
        f"monitor window        {window['start']} .. {window['end']}: {report['prediction_count']} "
        f"predictions, rejected {rej['count']} (share {rej['share'] or 0:.4f})"
    )
    actuals = report["actuals"]
    rejected = ", ".join(f"{reason} {n}" for reason, n in actuals["rejected"].items() if n) or "none"
    SAY(
        f"actuals               {actuals['accepted']} accepted of {actuals['lines']} lines;"
        f" rejected: {rejected}"
    )
    for version, result in sorted(report["versions"].items()):
        SAY(f"model version {version:7s} status {result['status']}")
        if result.get("drift"):
            say_drift(result["drift"])
        say_quality(result.get("quality") or {}, pointer)


def say_alarms(stack: Stack) -> None:
    prefix = f"trip-duration-{stack['Stage']}-"
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    SAY("alarms (describe_alarms; evaluated every 60 s, a fresh stack shows INSUFFICIENT_DATA at first):")
    for alarm in sorted(alarms, key=lambda a: a["AlarmName"]):
        SAY(f"    {alarm['AlarmName']:42s} {alarm['StateValue']}")


def say_where_to_look(stack: Stack, report: dict[str, Any]) -> None:
    dashboard = stack["DashboardName"]
    SAY("where to look:")
    SAY(f"    MLflow UI         {MLFLOW_URL} (experiment trip-duration; #/models/trip-duration)")
    SAY(f"    drift report      s3://{stack['CaptureBucketName']}/{report['_html_key']}")
    SAY(f"                      local copy: {(OUT / 'drift_report.html').relative_to(ROOT)} (and .json)")
    SAY(f"    dashboard         {dashboard} (CloudWatch; LocalStack has no console, its body:")
    SAY(f"                      {PY_CLIENT}cloudwatch').get_dashboard(DashboardName='{dashboard}'))\")")
    SAY(f"    function logs     /aws/lambda/{stack['PredictFunctionName']}, ...-monitor")
    SAY(f"    buckets           {stack['CaptureBucketName']} (captures/ actuals/ reports/)")
    SAY(f"                      {stack['RejectedBucketName']} (rejected/)")


# ------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--rides", type=int, default=int(os.environ.get("DEMO_RIDES", "3000")))
    parser.add_argument(
        "--rate",
        type=float,
        default=float(os.environ.get("DEMO_RATE", "400")),
        help="rides per second put on the stream (0 = as fast as possible)",
    )
    parser.add_argument("--month", default=os.environ.get("DEMO_MONTH", VALID_MONTH))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("DEMO_SEED", "0")))
    parser.add_argument("--skip-train", action="store_true", help="use the live model as it is")
    return parser.parse_args(argv)


def train_demo_model(stack: Stack) -> dict[str, Any]:
    CONSOLE.step("train on 2023-01 + 2023-02, validate on 2023-03, register in MLflow, gate, publish")
    seconds, summary = train(stack, TRAIN_MONTHS, VALID_MONTH, OUT / "model")
    SAY(
        f"   version {summary['version']}: RMSE {summary['rmse']}, MAE {summary['mae']}"
        f" -> {summary['verdict']} ({seconds:.0f} s)"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stack, deploy = start_services()
    training = None if args.skip_train else train_demo_model(stack)
    pointer = stack.live()
    SAY(f"   live model: {pointer.model_name} version {pointer.version}")
    warm_up(stack)
    traffic = stream_month(stack, args)
    send_actuals(stack, traffic)
    report = monitor(stack, traffic)
    SAY("\n" + "=" * 100 + "\nSUMMARY\n" + "=" * 100)
    say_traffic(args, traffic, deploy)
    say_latency(args, traffic)
    say_model(training, pointer)
    say_report(report, pointer)
    say_alarms(stack)
    say_where_to_look(stack, report)
    SAY(
        f"demo took {time.perf_counter() - started:.0f} s. LocalStack ({ENDPOINT}) and MLflow ({MLFLOW_URL}) "
        "are left running;\nstop them with: make localstack-down mlflow-down   (re-run: make demo)"
    )
    if traffic.lost:
        SAY(f"WARNING: {traffic.lost} ride(s) neither predicted nor rejected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
