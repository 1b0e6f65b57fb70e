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
stops them). Clients come from infra/aws.py. Settings also from the environment: DEMO_RIDES,
DEMO_RATE, DEMO_MONTH, DEMO_SEED.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from infra.aws import ENDPOINT, STACK_NAME, client, env, stack_outputs

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "artifacts" / "demo"  # gitignored
MLFLOW_URL = f"http://127.0.0.1:{os.environ.get('MLFLOW_PORT', '5000')}"
TRAIN_MONTHS = ["data/green_tripdata_2023-01.parquet", "data/green_tripdata_2023-02.parquet"]
VALID_MONTH = "data/green_tripdata_2023-03.parquet"
PUT_BATCH = 100
SHOW_PREDICTIONS = 5
PY_CLIENT = ".venv/bin/python -c \"from infra.aws import client; print(client('"


# ------------------------------------------------------------------------------------ output


class Console:
    """Lines on stdout; the progress bar on stderr (one line, redrawn); a lock between them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bar_visible = False
        self.tty = sys.stderr.isatty()

    def say(self, text: str = "") -> None:
        with self.lock:
            self._clear_bar()
            print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"\n== {text}")

    def bar(self, done: int, total: int, extra: str, final: bool = False) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        line = f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {extra}"
        with self.lock:
            if self.tty:
                sys.stderr.write("\r\033[K" + line + ("\n" if final else ""))
                self.bar_visible = not final
            elif final or done == total:
                sys.stderr.write(line + "\n")
            sys.stderr.flush()

    def _clear_bar(self) -> None:
        if self.bar_visible and self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.bar_visible = False


CONSOLE = Console()


def run(cmd: list[str], what: str, extra_env: dict[str, str] | None = None) -> tuple[float, str]:
    """Run a step's command, stream its output indented; (seconds, stdout) or exit on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env={**os.environ, **(extra_env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if _worth_showing(line):
            CONSOLE.say("   | " + line.rstrip()[:160])
    code = proc.wait()
    if code != 0:
        CONSOLE.say("".join(lines[-40:]))
        sys.exit(f"demo: {what} failed (exit {code}): {' '.join(cmd)}")
    return time.perf_counter() - started, "".join(lines)


def _worth_showing(line: str) -> bool:
    """Keep the demo readable: the steps' own status lines, not SAM's tables or pip chatter."""
    keys = ("up on", "already running", "ready in", "building", "sam build", "Successfully", "No changes",
            "promoted", "gate:", "registered", "fitted", "Error", "error", "failed")  # fmt: skip
    return any(k in line for k in keys) and "botocore" not in line and "AlarmName" not in line


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


# ------------------------------------------------------------------------------------ stack


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def start_services() -> dict[str, Any]:
    """LocalStack, the stack, MLflow (in that order: MLflow's artifact bucket comes with the stack)."""
    timings: dict[str, Any] = {}
    fresh = not healthy(f"{ENDPOINT}/_localstack/health")
    CONSOLE.step("LocalStack (host mode, 127.0.0.1:4566)")
    if fresh:
        # a new LocalStack has empty buckets: an MLflow registry left from before would point at
        # artifacts that no longer exist, so start MLflow afresh too
        run(["infra/mlflow.sh", "down"], "mlflow down")
    timings["localstack_s"], _ = run(["infra/localstack.sh", "up"], "localstack up")

    CONSOLE.step("deploy template.yaml (sam build + samlocal deploy, stack trip-duration-local)")
    existed = _stack_exists()
    timings["deploy_s"], out = run(["infra/deploy_local.sh"], "deploy")
    timings["deploy_kind"] = (
        "create" if not existed else ("update, no changes" if "No changes to deploy" in out else "update")
    )
    CONSOLE.say(f"   deploy ({timings['deploy_kind']}): {timings['deploy_s']:.1f} s")

    outputs = stack_outputs(STACK_NAME)
    CONSOLE.step(f"MLflow server ({MLFLOW_URL}, artifacts in s3://{outputs['ModelsBucketName']}/mlflow)")
    run(["infra/mlflow.sh", "up"], "mlflow up", {"MODELS_BUCKET": outputs["ModelsBucketName"]})
    timings["outputs"] = outputs
    return timings


def _stack_exists() -> bool:
    try:
        stack_outputs(STACK_NAME)
        return True
    except Exception:
        return False


def train(outputs: dict[str, str]) -> dict[str, Any]:
    CONSOLE.step("train on 2023-01 + 2023-02, validate on 2023-03, register in MLflow, gate, publish")
    seconds, out = run(
        [
            sys.executable,
            "-m",
            "training.train",
            "--train",
            *TRAIN_MONTHS,
            "--valid",
            VALID_MONTH,
            "--models-bucket",
            outputs["ModelsBucketName"],
            "--out",
            str(OUT / "model"),
        ],
        "training",
        {
            **env(),
            "MLFLOW_TRACKING_URI": MLFLOW_URL,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
        },
    )
    summary: dict[str, Any] = json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    CONSOLE.say(
        f"   version {summary['version']}: RMSE {summary['rmse']}, MAE {summary['mae']}"
        f" -> {summary['verdict']} ({seconds:.0f} s)"
    )
    return summary


def live_pointer(outputs: dict[str, str]) -> dict[str, Any]:
    key = outputs.get("ModelPointerKey", "serving/live.json")
    body = client("s3").get_object(Bucket=outputs["ModelsBucketName"], Key=key)["Body"].read()
    pointer: dict[str, Any] = json.loads(body)
    return pointer


def warm_up(outputs: dict[str, str]) -> None:
    """One direct invoke before streaming (the answer shows the direct-invoke contract): the cold start
    (new code after a deploy, bundle download) is not counted in the stream latency."""
    CONSOLE.step("direct invoke of the predict function (one ride; also warms it up)")
    good: dict[str, Any] = {"PULocationID": 74, "DOLocationID": 168, "trip_distance": 2.1}
    bad = {**good, "trip_distance": "far"}
    for payload in ({"ride": good, "ride_id": "demo-direct"}, {"ride": bad, "ride_id": "demo-direct-bad"}):
        started = time.perf_counter()
        response = client("lambda").invoke(
            FunctionName=outputs["PredictFunctionName"], Payload=json.dumps(payload)
        )
        answer = response["Payload"].read().decode()
        CONSOLE.say(
            f"   {json.dumps(payload)}\n   -> {answer} ({(time.perf_counter() - started) * 1000:.0f} ms)"
        )


# ------------------------------------------------------------------------------------ rides


@dataclass
class Ride:
    ride_id: int
    payload: bytes
    good: bool
    duration: float | None = None  # actual minutes (good rides)


def make_rides(month: str, count: int, seed: int, id_base: int) -> list[Ride]:
    """`count` real rides of `month` (cleaned like training) plus a handful of bad records."""
    from training.data import PICKUP, load_month

    frame = load_month(str(ROOT / month)).frame
    sample = frame.sample(n=min(count, len(frame)), random_state=seed).sort_values(PICKUP)
    rides = [
        Ride(
            ride_id=id_base + i,
            payload=json.dumps(
                {
                    "ride": {
                        "PULocationID": int(row.PULocationID),
                        "DOLocationID": int(row.DOLocationID),
                        "trip_distance": float(row.trip_distance),
                        "pickup_datetime": getattr(row, PICKUP).isoformat(timespec="seconds"),
                    },
                    "ride_id": id_base + i,
                }
            ).encode(),
            good=True,
            duration=round(float(row.duration), 3),
        )
        for i, row in enumerate(sample.itertuples(index=False))
    ]
    n = len(rides)
    ok = {
        "PULocationID": 130,
        "DOLocationID": 205,
        "trip_distance": 3.66,
        "pickup_datetime": "2023-03-06T14:30:00",
    }
    bad_payloads: list[Any] = [
        b"this is not JSON",
        [1, 2, 3],
        {"ride": {**ok, "trip_distance": True}},
        {"ride": {**ok, "PULocationID": 999}},
        {"ride": {**ok, "trip_distance": -2.5}},
        {"ride": {k: v for k, v in ok.items() if k != "DOLocationID"}},
        {"ride": {**ok, "pickup_datetime": "yesterday"}},
        {"ride": {**ok, "trip_distance": 500}},
    ]
    rng = random.Random(seed)
    for j, bad in enumerate(bad_payloads):
        ride_id = id_base + n + j
        if isinstance(bad, dict):
            bad = {**bad, "ride_id": ride_id}
        payload = bad if isinstance(bad, bytes) else json.dumps(bad).encode()
        rides.insert(rng.randrange(len(rides) + 1), Ride(ride_id, payload, good=False))
    return rides


@dataclass
class Received:
    ride_id: Any
    prediction: float
    version: str
    arrival: float  # the output record's ApproximateArrivalTimestamp (epoch s)
    read: float  # when this consumer got it


@dataclass
class PredictionsConsumer:
    """Reads every shard of the predictions stream from LATEST, in a thread, until stopped."""

    stream: str
    received: dict[Any, Received] = field(default_factory=dict)
    seen: collections.Counter[Any] = field(default_factory=collections.Counter)  # ride_id -> records (dups)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kinesis = client("kinesis")
        shards = self.kinesis.describe_stream(StreamName=self.stream)["StreamDescription"]["Shards"]
        self.iterators = {
            s["ShardId"]: self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=s["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            for s in shards
        }
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            got = 0
            for shard, iterator in list(self.iterators.items()):
                try:
                    response = self.kinesis.get_records(ShardIterator=iterator, Limit=1000)
                except Exception as exc:  # keep reading; report at the end
                    self.errors.append(repr(exc))
                    continue
                self.iterators[shard] = response["NextShardIterator"]
                now = time.time()
                for record in response["Records"]:
                    got += 1
                    data = json.loads(record["Data"])
                    p = data["prediction"]
                    item = Received(
                        p["ride_id"],
                        float(p["ride_duration"]),
                        str(data["version"]),
                        record["ApproximateArrivalTimestamp"].timestamp(),
                        now,
                    )
                    self.received[item.ride_id] = item
                    self.seen[item.ride_id] += 1
                    if len(self.received) <= SHOW_PREDICTIONS:
                        CONSOLE.say(f"   <- {json.dumps(data)}")
            if not got:
                self.stop.wait(0.2)


def stream_rides(
    rides: list[Ride], stream: str, rate: float, consumer: PredictionsConsumer
) -> dict[int, float]:
    """PutRecords in batches of PUT_BATCH at about `rate` rides/s; returns ride_id -> send time."""
    kinesis = client("kinesis")
    sent_at: dict[int, float] = {}
    started = time.perf_counter()
    for i in range(0, len(rides), PUT_BATCH):
        chunk = rides[i : i + PUT_BATCH]
        if rate > 0:  # pace: this chunk is due at i / rate seconds
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        now = time.time()
        records = [{"Data": r.payload, "PartitionKey": str(r.ride_id)} for r in chunk]
        pending = list(range(len(records)))
        for _attempt in range(5):  # PutRecords may fail single records (throughput): resend those
            response = kinesis.put_records(StreamName=stream, Records=[records[j] for j in pending])
            pending = [j for j, res in zip(pending, response["Records"], strict=True) if "ErrorCode" in res]
            if not pending:
                break
            time.sleep(0.2)
        if pending:
            sys.exit(f"demo: PutRecords kept failing for {len(pending)} records")
        for r in chunk:
            sent_at[r.ride_id] = now
        done = i + len(chunk)
        elapsed = time.perf_counter() - started
        CONSOLE.bar(
            done,
            len(rides),
            f"rides sent  {done / max(elapsed, 1e-6):5.0f}/s  predictions out {len(consumer.received)}",
        )
    CONSOLE.bar(len(rides), len(rides), f"rides sent in {time.perf_counter() - started:.1f} s", final=True)
    return sent_at


def rejections_since(bucket: str, since: datetime) -> list[dict[str, Any]]:
    """Rejections (architecture.md, rejected-rides object) with arrival_time >= since."""
    s3 = client("s3")
    found: list[dict[str, Any]] = []
    day = since.astimezone(UTC)
    prefixes = {f"rejected/dt={(day + timedelta(days=d)):%Y-%m-%d}/" for d in (0, 1)}
    for prefix in sorted(prefixes):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if obj["LastModified"] < since - timedelta(minutes=5):
                    continue
                document = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
                for item in document["rejections"]:
                    arrival = datetime.fromisoformat(item["arrival_time"].replace("Z", "+00:00"))
                    if arrival >= since - timedelta(seconds=1):
                        found.append(item)
    return found


def wait_until(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.5)
    return None


# ------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--rides", type=int, default=int(os.environ.get("DEMO_RIDES", "3000")))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("DEMO_RATE", "400")),
                        help="rides per second put on the stream (0 = as fast as possible)")  # fmt: skip
    parser.add_argument("--month", default=os.environ.get("DEMO_MONTH", VALID_MONTH))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("DEMO_SEED", "0")))
    parser.add_argument("--skip-train", action="store_true", help="use the live model as it is")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    OUT.mkdir(parents=True, exist_ok=True)
    demo_started = time.perf_counter()

    timings = start_services()
    outputs: dict[str, str] = timings["outputs"]
    training = None if args.skip_train else train(outputs)
    try:
        pointer = live_pointer(outputs)
    except Exception as exc:
        sys.exit(f"demo: no live model pointer in s3://{outputs['ModelsBucketName']} ({exc})")
    CONSOLE.say(f"   live model: {pointer['model_name']} version {pointer['version']}")
    warm_up(outputs)

    CONSOLE.step(
        f"stream {args.rides} rides of {args.month} (+ bad records) into {outputs['RidesStreamName']}"
    )
    run_id = int(time.time())
    rides = make_rides(args.month, args.rides, args.seed, id_base=run_id * 100_000)
    good = {r.ride_id: r for r in rides if r.good}
    bad_count = len(rides) - len(good)
    consumer = PredictionsConsumer(outputs["PredictionsStreamName"])
    consumer.thread.start()
    run_start = datetime.now(UTC).replace(microsecond=0)
    sent_at = stream_rides(rides, outputs["RidesStreamName"], args.rate, consumer)

    CONSOLE.say(f"   waiting for {len(good)} predictions and {bad_count} rejections ...")
    wait_started = time.perf_counter()
    wait_until(lambda: len(set(consumer.received) & set(good)) >= len(good), 180 + len(rides) / 50, "preds")
    rejected = wait_until(
        lambda: (
            (r := rejections_since(outputs["RejectedBucketName"], run_start)) and len(r) >= bad_count and r
        ),
        60,
        "rejections",
    ) or rejections_since(outputs["RejectedBucketName"], run_start)
    consumer.stop.set()
    consumer.thread.join(timeout=5)
    mine = {k: v for k, v in consumer.received.items() if k in good}
    CONSOLE.say(
        f"   {len(mine)} predictions, {len(rejected)} rejections "
        f"({time.perf_counter() - wait_started:.1f} s after the last put)"
    )

    CONSOLE.step("send the actual durations (actuals/ JSON lines in the capture bucket)")
    from trip_core.capture import Actual, encode_actuals

    day = datetime.now(UTC)
    actuals_key = f"actuals/dt={day:%Y-%m-%d}/demo-{run_id}.jsonl"
    body = encode_actuals(Actual(r.ride_id, r.duration) for r in good.values() if r.duration is not None)
    client("s3").put_object(Bucket=outputs["CaptureBucketName"], Key=actuals_key, Body=body)
    CONSOLE.say(f"   s3://{outputs['CaptureBucketName']}/{actuals_key} ({len(good)} rides)")

    CONSOLE.step("run the monitor over the run's window")
    window_end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    event = {"window_start": _iso(run_start), "window_end": _iso(window_end)}
    monitor_started = time.perf_counter()
    response = client("lambda").invoke(FunctionName=outputs["MonitorFunctionName"], Payload=json.dumps(event))
    answer = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        sys.exit(f"demo: monitor failed: {answer}")
    CONSOLE.say(
        f"   {json.dumps(event)} -> {json.dumps(answer)} ({time.perf_counter() - monitor_started:.1f} s)"
    )
    report = _fetch_report(outputs["CaptureBucketName"], answer["report_key"])

    prefix = f"trip-duration-{outputs['Stage']}-"
    alarms = client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    took = time.perf_counter() - demo_started
    summary(
        args,
        timings,
        training,
        pointer,
        good,
        bad_count,
        mine,
        rejected,
        sent_at,
        report,
        alarms,
        outputs,
        took,
    )
    return 0


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _fetch_report(bucket: str, json_key: str) -> dict[str, Any]:
    s3 = client("s3")
    report: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=json_key)["Body"].read())
    html_key = json_key.rsplit(".", 1)[0] + ".html"
    (OUT / "drift_report.json").write_text(json.dumps(report, indent=1))
    (OUT / "drift_report.html").write_bytes(s3.get_object(Bucket=bucket, Key=html_key)["Body"].read())
    report["_html_key"] = html_key
    return report


def summary(
    args: argparse.Namespace,
    timings: dict[str, Any],
    training: dict[str, Any] | None,
    pointer: dict[str, Any],
    good: dict[int, Ride],
    bad_count: int,
    mine: dict[Any, Received],
    rejected: list[dict[str, Any]],
    sent_at: dict[int, float],
    report: dict[str, Any],
    alarms: list[dict[str, Any]],
    outputs: dict[str, str],
    total_s: float,
) -> None:
    say = CONSOLE.say
    pad = " " * 22
    say("\n" + "=" * 100)
    say("SUMMARY")
    say("=" * 100)
    sent = len(good) + bad_count
    lost = sent - len(mine) - len(rejected)
    versions = sorted({m.version for m in mine.values()})
    say(f"rides sent            {sent} ({len(good)} real rides of {args.month}, {bad_count} bad records)")
    say(f"predictions made      {len(mine)} (read from the predictions stream; model version(s) {versions})")
    say(f"rejected              {len(rejected)} (rejected store), lost: {lost}")
    reasons = collections.Counter(f"{r['field']}: {r['reason']}" for i in rejected for r in i["reasons"])
    for reason, n in reasons.most_common(10):
        say(f"{pad}  {n} x {reason}")
    say(f"deploy time           {timings['deploy_s']:.1f} s ({timings['deploy_kind']}; sam build + deploy)")
    arrival = [(m.arrival - sent_at[m.ride_id]) * 1000 for m in mine.values() if m.ride_id in sent_at]
    read = [(m.read - sent_at[m.ride_id]) * 1000 for m in mine.values() if m.ride_id in sent_at]
    say(
        f"latency in -> out     p50 {pct(arrival, 50):.0f} ms, p95 {pct(arrival, 95):.0f} ms, "
        f"max {max(arrival, default=0):.0f} ms (PutRecords -> the prediction's ApproximateArrivalTimestamp, "
        f"{args.rate:g} rides/s offered)"
    )
    say(f"latency in -> read    p50 {pct(read, 50):.0f} ms, p95 {pct(read, 95):.0f} ms (read here)")
    if training:
        say(
            f"training              version {training['version']}: {training['verdict']} "
            f"({training['rows_train']} train rows, {training['seconds']} s)"
        )
    val_mae, val_rmse = pointer["validation_mae"], pointer["validation_rmse"]
    say(
        f"live model            {pointer['model_name']} v{pointer['version']}: "
        f"validation MAE {val_mae:.3f}, RMSE {val_rmse:.3f} min"
    )
    window, rej = report["window"], report["rejected"]
    say(
        f"monitor window        {window['start']} .. {window['end']}: {report['prediction_count']} "
        f"predictions, rejected {rej['count']} (share {rej['share'] or 0:.4f})"
    )
    for version, result in sorted(report["versions"].items()):
        say(f"model version {version:7s} status {result['status']}")
        drift = result.get("drift") or {}
        if drift:
            say(f"  drift share         {drift['drift_share']:.2f} (dataset drift: {drift['dataset_drift']})")
            items = sorted(drift["features"].items())
            if drift.get("prediction"):
                items.append(("(prediction)", drift["prediction"]))
            for name, f in items:
                verdict = "DRIFT" if f.get("drifted") else "ok"
                say(
                    f"    {name:20s} {verdict:5s} {f.get('statistic', '')} {f.get('score', float('nan')):.4g}"
                    f" (threshold {f.get('threshold', '')})"
                )
        q = result.get("quality") or {}
        if q.get("mae") is not None:
            say(
                f"  quality on actuals  {q['joined']} joined: MAE {q['mae']:.3f} (x{q['mae_ratio']:.2f} of "
                f"validation {val_mae:.3f}), RMSE {q['rmse']:.3f} (x{q['rmse_ratio']:.2f} of {val_rmse:.3f})"
            )
        elif q:
            say(f"  quality on actuals  {q.get('joined')} joined: too few, not published")
    say("alarms (describe_alarms; evaluated every 60 s, a fresh stack shows INSUFFICIENT_DATA at first):")
    for alarm in sorted(alarms, key=lambda a: a["AlarmName"]):
        say(f"    {alarm['AlarmName']:42s} {alarm['StateValue']}")
    dashboard = outputs["DashboardName"]
    say("where to look:")
    say(f"    MLflow UI         {MLFLOW_URL} (experiment trip-duration; #/models/trip-duration)")
    say(f"    drift report      s3://{outputs['CaptureBucketName']}/{report['_html_key']}")
    say(f"                      local copy: {(OUT / 'drift_report.html').relative_to(ROOT)} (and .json)")
    say(f"    dashboard         {dashboard} (CloudWatch; LocalStack has no console, its body:")
    say(f"                      {PY_CLIENT}cloudwatch').get_dashboard(DashboardName='{dashboard}'))\")")
    say(f"    function logs     /aws/lambda/{outputs['PredictFunctionName']}, ...-monitor")
    say(f"    buckets           {outputs['CaptureBucketName']} (captures/ actuals/ reports/)")
    say(f"                      {outputs['RejectedBucketName']} (rejected/)")
    say(f"demo took {total_s:.0f} s. LocalStack ({ENDPOINT}) and MLflow ({MLFLOW_URL}) are left running;")
    say("stop them with: make localstack-down mlflow-down   (re-run: make demo)")
    if lost:
        say(f"WARNING: {lost} ride(s) neither predicted nor rejected")


if __name__ == "__main__":
    sys.exit(main())
