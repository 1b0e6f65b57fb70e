"""`make loop-demo`: the closed loop on LocalStack, with no manual step (docs/architecture.md, Closed loop).

    .venv/bin/python -m infra.loop_demo [--days 5] [--after 3000] [--bad-rides 1000]

1. LocalStack (fresh or running), the stack deployed with loop-friendly overrides (RetrainCooldownMinutes=0,
   PointerTtlSeconds=5, AlarmPeriodSeconds=60, RollbackCheckMinutes=2,
   MlflowTrackingUri = the local MLflow server: the retrain Lambda runs as a host process, it reaches
   127.0.0.1:5000), MLflow up.
2. A model trained on 2021 (2021-01 train, 2021-02 valid), registered and promoted (made live if a
   previous run left a better one); 2023-02, the month before the traffic, published as the trusted
   evaluation set the loop's gate scores every challenger on.
3. `--days` days of real 2023-03 rides at their real volume (every ride, ~2,300 a day), in pickup order,
   pickups in the past moved by whole weeks, through the rides stream; their actual durations reported at
   dropoff as clients report them; the monitor over the window: drift and the MAE ratio climb; the alarms
   reach ALARM by themselves (LocalStack evaluates them every 60 s) -> SNS -> RetrainFunction retrains on
   the RetrainTargetRows most recent labelled rides (the template's row target and minimum) mixed with
   the 2021 model's training rows, gates the challenger
   against the live model on the fresh holdout, promotes it (serving/live.json + MLflow alias).
   A trickle of rides keeps flowing meanwhile: the running predict Lambda switches within the pointer TTL.
4. `--after` rides of a later slice of 2023-03 (not trained on): MAE before/after, alarm -> new model
   serving time, ride ids in vs out (no drop, no duplicate across the swap).
5. Gate refusal: a direct retrain with max_iter 1 -> refused, live pointer unchanged.
6. Forced bad promotion (force_promote, max_iter 1) -> `--bad-rides` rides served by it and their actuals
   -> the scheduled rollback check finds its MAE worse than the previous version's on the same rides ->
   the pointer goes back by itself, recorded.
7. The audit listing (python -m infra.audit_table).

LocalStack and MLflow are left running (make localstack-down mlflow-down).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from infra.audit_table import table
from infra.aws import client, env
from infra.harness.mlflow import MLFLOW_URL, Registry
from infra.harness.poll import PollTimeout, poll
from infra.harness.rides import Ride, pickup_window, predict_in_process, real_rides
from infra.harness.scenario import CONSOLE, OUT, SAY, run, start_services, stream_with_bar, train, warm_up
from infra.harness.stack import InvokeError, Stack, now_s
from infra.harness.streams import PredictionsConsumer, actuals_for, put_records
from lambda_retrain.audit import read_audit
from trip_core.contracts import LIVE_POINTER_KEY, LOOP_STATE_KEY, PRODUCTION_ALIAS

# demo-friendly settings of the loop (template.yaml parameters; infra/deploy_local.sh adds Stage and
# AlarmPeriodSeconds=60)
LOOP_OVERRIDES = {
    "RetrainCooldownMinutes": "0",
    "PointerTtlSeconds": "5",
    "MlflowTrackingUri": MLFLOW_URL,
    "RollbackCheckMinutes": "2",  # the scheduled rollback check judges a promotion by itself
    "AllowForcePromote": "true",  # the rollback phase forces a bad model live (refused by default)
}
TRAIN_2021 = ["data/green_tripdata_2021-01.parquet"]
VALID_2021 = "data/green_tripdata_2021-02.parquet"
MONTH_2023 = "data/green_tripdata_2023-03.parquet"
EVALUATION_2023 = "data/green_tripdata_2023-02.parquet"  # the month before the traffic: the latest landed
RIDES_PER_DAY = 2300  # 2023-03 green taxi, cleaned as training cleans it
TRICKLE_PER_SECOND = 20
TRICKLE_POOL = 6000  # 20 rides/s for up to 5 min
ALARM_TIMEOUT_S = 240  # LocalStack evaluates a 60 s alarm once a minute; two rounds and some slack


@dataclass
class Loop:
    """The scenario's state: the stack, the predictions read so far, the registry, the model's name."""

    stack: Stack
    consumer: PredictionsConsumer
    registry: Registry
    model: str
    rate: float

    def production(self) -> str | None:
        return self.registry.alias_version(self.model, PRODUCTION_ALIAS)

    def retrain(self, reason: str, **payload: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.stack.invoke(
            "RetrainFunctionName", {"action": "retrain", "reason": reason, "skip_cooldown": True, **payload}
        )
        show_decisions(answer["decisions"])
        decision: dict[str, Any] = answer["decisions"][0]
        return decision

    def serve(self, rides: list[Ride], tag: str, timeout: float = 240) -> None:
        """Rides through the streams until every good one is predicted, then their actuals."""
        stream_with_bar(rides, self.stack, self.rate, self.consumer)
        good = {r.ride_id for r in rides if r.good}
        poll(
            lambda: good <= self.consumer.received.keys(),
            timeout=timeout,
            interval=0.5,
            what=f"{len(good)} predictions",
        )
        self.send_actuals(rides, tag)

    def send_actuals(self, rides: list[Ride], tag: str) -> None:
        """Each ride's actual duration reported at its dropoff, named by the id the predictions stream gave
        (backdated: the rides' pickups lie in the past, Stack.backdate_actuals)."""
        received = self.consumer.received
        labelled = [r for r in rides if r.good and r.duration is not None and r.ride_id in received]
        given = actuals_for(labelled, received)
        name = f"loop-demo-{tag}-{int(now_s().timestamp())}"
        keys = self.stack.backdate_actuals(given, name, [r.dropoff_utc() for r in labelled])
        SAY(f"   actuals: {len(given)} rides in {len(keys)} hourly objects (actuals/.../{name}.jsonl)")

    def monitor(self, rides: list[Ride]) -> None:
        """The monitor over the pickups from the first of `rides` (one phase's) to now: its metrics are
        timestamped at the window's end, and an alarm judges only its recent periods (the later phases'
        rides are picked up later, and not sent yet)."""
        start, _ = pickup_window(r.fields() for r in rides if r.good)
        event, answer = self.stack.monitor(start, now_s())
        for version, result in sorted(self.stack.report(answer["report_key"])["versions"].items()):
            drift, quality = result.get("drift") or {}, result.get("quality") or {}
            mae = quality.get("mae")
            SAY(
                f"   monitor {event['window_start']}..{event['window_end']} version {version}: "
                f"{result['prediction_count']} predictions, "
                f"drift share {drift.get('drift_share', float('nan')):.2f}"
                f" (dataset drift {drift.get('dataset_drift')})"
                + (
                    f", MAE {mae:.3f} = x{quality['mae_ratio']:.2f} of its reference"
                    if mae is not None
                    else ""
                )
            )

    def mae(self, rides: list[Ride], version: str) -> tuple[float, int]:
        """MAE of the predictions `version` made for these rides (from the stream), and how many."""
        got = self.consumer.received
        errors = [
            abs(got[r.ride_id].prediction - r.duration)
            for r in rides
            if r.duration is not None and r.ride_id in got and got[r.ride_id].version == version
        ]
        return (float(np.mean(errors)) if errors else float("nan")), len(errors)

    def bundle_mae(self, version: str, rides: list[Ride]) -> float:
        """MAE `version` would have had on these rides (its bundle, in process)."""
        good = [r for r in rides if r.good]
        predicted = predict_in_process(
            self.stack.bundle(self.stack.pointer(version)), [r.fields() for r in good]
        )
        return float(np.mean(np.abs(predicted - np.array([r.duration for r in good], dtype=np.float64))))


class Trickle:
    """Rides at a low steady rate in a thread while the loop works (the swap happens under traffic)."""

    def __init__(self, stream: str, pool: list[Ride]) -> None:
        self.stream, self.pool = stream, [r for r in pool if r.good]
        self.sent: list[Ride] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        kinesis, step = client("kinesis"), max(1, TRICKLE_PER_SECOND // 4)
        while not self.stop.is_set() and self.pool:
            chunk, self.pool = self.pool[:step], self.pool[step:]
            put_records(self.stream, chunk, kinesis)
            self.sent.extend(chunk)
            self.stop.wait(0.25)

    def finish(self) -> list[Ride]:
        self.stop.set()
        self.thread.join(timeout=10)
        return self.sent


def show_decisions(decisions: list[dict[str, Any]]) -> None:
    for d in decisions:
        metrics = d.get("metrics") or {}
        shown = {
            k: round(v, 3) if isinstance(v, float) else v
            for k, v in metrics.items()
            if "mae" in k or "rmse" in k
        }
        SAY(f"   decision {d.get('kind')}: {d.get('verdict')} (version {d.get('version')}) {shown}")


# ------------------------------------------------------------------------------------ steps


def deploy_and_train() -> tuple[Stack, dict[str, Any]]:
    overrides = " ".join(f"{k}={v}" for k, v in LOOP_OVERRIDES.items())
    os.environ["PARAMETER_OVERRIDES"] = f"{os.environ.get('PARAMETER_OVERRIDES', '')} {overrides}".strip()
    stack, _ = start_services()  # LocalStack, deploy (with the overrides), MLflow
    CONSOLE.step("train the initial model on 2021 (2021-01 train, 2021-02 valid), register, gate, publish")
    seconds, trained = train(stack, TRAIN_2021, VALID_2021, OUT / "loop-model-2021")
    version, registry = str(trained["version"]), Registry()
    if not trained["promoted"]:  # a previous run left a better model live: the demo starts from 2021
        stack.models.put(LIVE_POINTER_KEY, stack.pointer(version).to_json().encode(), "application/json")
        registry.set_alias(trained["model"], PRODUCTION_ALIAS, version)
        SAY(f"   (a previous run's model was live: version {version} made live for the demo)")
    reset_loop(stack)
    CONSOLE.step(
        f"a new month lands: {EVALUATION_2023} becomes the trusted evaluation set the loop's gate scores on"
    )
    _, lineage = run(
        [sys.executable, "-m", "training.evaluation_set", "--month", EVALUATION_2023,
         "--models-bucket", stack["ModelsBucketName"]],
        "evaluation set", env(),
    )  # fmt: skip
    SAY(f"   {lineage.strip().splitlines()[-1]}")
    SAY(
        f"   version {version}: validation (2021-02) RMSE {trained['rmse']}, MAE {trained['mae']}"
        f" ({seconds:.0f} s); live: {stack.live().version}, MLflow alias production -> "
        f"{registry.alias_version(trained['model'], PRODUCTION_ALIAS)}"
    )
    # warm the retrain function: an OK notification is ignored by the loop but loads its code
    warm = {"Records": [{"Sns": {"Message": json.dumps({"AlarmName": "warm-up", "NewStateValue": "OK"})}}]}
    stack.invoke("RetrainFunctionName", warm)
    return stack, trained


def reset_loop(stack: Stack) -> None:
    """Start from a quiet loop: no state of a previous run (cooldown, last promotion), alarms OK."""
    client("s3").delete_object(Bucket=stack.models.bucket, Key=LOOP_STATE_KEY)
    cw = client("cloudwatch")
    for output in ("DriftShareAlarmName", "MAERatioAlarmName"):
        if stack.alarm(output)["StateValue"] == "ALARM":
            cw.set_alarm_state(AlarmName=stack[output], StateValue="OK", StateReason="loop-demo reset")


def drift_phase(loop: Loop, before: list[Ride], v_old: str) -> datetime:
    """The 2021 model serves 2023 rides; the monitor sees drift and the MAE ratio climb."""
    CONSOLE.step(f"stream {len(before)} rides of 2023-03 (version {v_old} serving), actuals, monitor")
    loop.serve(before, "before")
    monitor_at = now_s()
    loop.monitor(before)
    return monitor_at


def wait_for_alarm(stack: Stack, monitor_at: datetime) -> dict[str, Any]:
    def fired() -> dict[str, Any] | None:
        for alarm in (stack.alarm("DriftShareAlarmName"), stack.alarm("MAERatioAlarmName")):
            if alarm["StateValue"] == "ALARM" and alarm["StateUpdatedTimestamp"] >= monitor_at - timedelta(
                seconds=2
            ):
                return alarm
        return None

    alarm = poll(fired, timeout=ALARM_TIMEOUT_S, interval=0.5, what="an alarm in ALARM")
    at: datetime = alarm["StateUpdatedTimestamp"]
    SAY(
        f"   {alarm['AlarmName']} -> ALARM at {at:%H:%M:%S} ({(at - monitor_at).total_seconds():.0f} s "
        f"after the monitor ran): {alarm['StateReason'][:140]}"
    )
    return alarm


def wait_for_promotion(loop: Loop, alarm_at: datetime, v_old: str) -> dict[str, Any]:
    """The loop's decision on the alarm's retrain; exits if it was not a promotion."""
    decided = poll(
        lambda: next(
            (
                r
                for r in loop.stack.audit_since(alarm_at - timedelta(seconds=5))
                if r["kind"] in ("promoted", "refused")
            ),
            None,
        ),
        timeout=600,
        interval=1.0,
        what="the loop's retrain decision",
    )
    if decided["kind"] != "promoted":
        SAY(table(read_audit(loop.stack.models)))
        sys.exit(f"loop-demo: the alarm's retrain was not promoted: {decided['verdict']} (more --rides?)")
    data, m = decided["data"], decided["metrics"]
    SAY(
        f"   retrained on the {data['labelled_rows']} most recent labelled rides ({data['train_rows']} train,"
        f" {data['holdout_rows']} holdout; {data['ranges_read']} pickup ranges read back to "
        f"{data['window']['start']}) + {data['champion_rows']} rows of the champion's training data "
        f"(a recent row weighs {data['recent_weight']}) by {decided['actor']}, "
        f"trigger {decided['trigger']['alarm_name']}"
    )
    SAY(
        f"   gate on the holdout: challenger MAE {m['challenger_holdout_mae']:.3f} "
        f"RMSE {m['challenger_holdout_rmse']:.3f} vs champion {v_old} MAE {m['champion_holdout_mae']:.3f} "
        f"RMSE {m['champion_holdout_rmse']:.3f}: {decided['verdict']}"
    )
    SAY(
        f"   serving/live.json -> {loop.stack.live().version}; MLflow alias production -> {loop.production()}"
    )
    return decided


def first_served(loop: Loop, version: str, alarm_at: datetime, retrain_s: Any) -> float:
    """Seconds from the alarm to the first prediction by `version` on the stream."""

    def first() -> Any:
        new = [r for r in loop.consumer.received.values() if r.version == version]
        return min(new, key=lambda r: r.arrival) if new else None

    swap_s: float = poll(first, timeout=120, interval=0.5, what=f"a prediction by version {version}").arrival
    swap_s -= alarm_at.timestamp()
    SAY(
        f"   first prediction by version {version}: {swap_s:.1f} s after the alarm, "
        f"(SNS + retrain {retrain_s} s + pointer TTL 5 s)"
    )
    return swap_s


def rollback_phase(loop: Loop, bad_phase: list[Ride]) -> dict[str, Any]:
    """A forced bad promotion, served; the scheduled rollback check moves the pointer back by itself."""
    CONSOLE.step("forced bad promotion (force_promote, max_iter 1), serve rides, scheduled rollback check")
    forced = loop.retrain("loop-demo: forced bad promotion", force_promote=True, params={"max_iter": 1})
    v_bad, forced_at = str(forced["version"]), now_s()
    loop.serve(bad_phase, "bad")
    served = [r for r in bad_phase if r.good and loop.consumer.received[r.ride_id].version == v_bad]
    SAY(f"   {len(served)} of {sum(r.good for r in bad_phase)} rides served by version {v_bad}")
    loop.monitor(bad_phase)
    # No invoke: the scheduled check compares the MAE the live version served with the previous version's
    # on the same rides. (The MAE-ratio alarm compares a version with its OWN validation MAE, so a model as
    # bad on its holdout as in serving keeps that ratio near 1; the schedule is what catches it.)
    SAY("   waiting for the scheduled rollback check (every 2 minutes) ...")
    rollback = poll(
        lambda: next((r for r in loop.stack.audit_since(forced_at) if r["kind"] == "rollback"), None),
        timeout=ALARM_TIMEOUT_S,
        interval=1.0,
        what="the scheduled rollback check to roll back",
    )
    mae_state = loop.stack.alarm("MAERatioAlarmName")
    SAY(
        f"   {mae_state['AlarmName']}: {mae_state['StateValue']} "
        f"since {mae_state['StateUpdatedTimestamp']:%H:%M:%S}"
    )
    SAY(f"   {rollback['kind']}: {rollback['verdict']}")
    SAY(
        f"   serving/live.json -> {loop.stack.live().version}; MLflow alias production -> {loop.production()}"
    )
    return rollback


@dataclass
class Swap:
    """The alarm -> retrain -> promotion, and the rides that flowed across it."""

    alarm: dict[str, Any]
    promoted: dict[str, Any]
    v_new: str
    seconds: float  # alarm -> first prediction by v_new
    trickle: list[Ride]


def swap_phase(loop: Loop, trickle_rides: list[Ride], monitor_at: datetime, v_old: str) -> Swap:
    """alarm -> SNS -> retrain -> gate -> promote, under a trickle of traffic."""
    CONSOLE.step(
        f"wait for the alarms ({loop.stack['DriftShareAlarmName']}, {loop.stack['MAERatioAlarmName']})"
        " -> SNS -> RetrainFunction (no invoke here)"
    )
    trickle = Trickle(loop.stack["RidesStreamName"], trickle_rides)
    trickle.thread.start()
    try:
        alarm = wait_for_alarm(loop.stack, monitor_at)
        promoted = wait_for_promotion(loop, alarm["StateUpdatedTimestamp"], v_old)
        v_new = str(promoted["version"])
        seconds = first_served(loop, v_new, alarm["StateUpdatedTimestamp"], promoted["seconds"])
    finally:
        sent = trickle.finish()
    loop.send_actuals(sent, "trickle")
    return Swap(alarm, promoted, v_new, seconds, sent)


def gate_refusal(loop: Loop) -> dict[str, Any]:
    """A challenger that is not better: the gate refuses, the pointer stays."""
    CONSOLE.step("retrain with a weak challenger (direct invoke, params max_iter 1): the gate must refuse")
    refused = loop.retrain("loop-demo: weak challenger", params={"max_iter": 1})
    assert refused["kind"] == "refused", refused
    SAY(f"   live pointer still {loop.stack.live().version}")
    return refused


def split_rides(args: argparse.Namespace) -> list[list[Ride]]:
    """Rides of 2023-03 in pickup order, disjoint slices: before | trickle | after | bad-model phase."""
    sizes = [args.days * RIDES_PER_DAY, TRICKLE_POOL, args.after, args.bad_rides]
    rides = real_rides(MONTH_2023, sum(sizes), seed=3, id_base=int(now_s().timestamp()) * 100_000)
    cuts = np.cumsum([0, *sizes])
    return [rides[a:b] for a, b in itertools.pairwise(cuts)]


def later_figures(loop: Loop, after: list[Ride], swap: Swap) -> dict[str, Any]:
    """The new model on a later slice; what crossed the swap (dropped, doubled, by which versions)."""
    CONSOLE.step(f"stream {len(after)} later rides of 2023-03 (not trained on), actuals")
    loop.serve(after, "after")
    loop.monitor(after)
    got, seen = loop.consumer.received, loop.consumer.seen
    swap_ids = {r.ride_id for r in swap.trickle} | {r.ride_id for r in after if r.good}
    return {
        "swap_in": len(swap_ids),
        "swap_out": len(swap_ids & got.keys()),
        "dropped": len(swap_ids - got.keys()),
        "duplicated": sum(1 for i in swap_ids if seen[i] > 1),
        "trickle_versions": sorted({got[r.ride_id].version for r in swap.trickle if r.ride_id in got}),
        "after": loop.mae(after, swap.v_new),
    }


def rows_per_day(rides: list[Ride]) -> str:
    """Labelled rides per New York pickup day: the volume the loop retrains at."""
    days = Counter(
        str(r.fields()["pickup_datetime"])[:10] for r in rides if r.good and r.duration is not None
    )
    shown = " ".join(f"{day[5:]}:{n}" for day, n in sorted(days.items()))
    return f"median {np.median(list(days.values())):.0f} ({shown})"


def say_summary(
    loop: Loop,
    v_old: str,
    before: tuple[float, int],
    old_on_after: float,
    swap: Swap,
    later: dict[str, Any],
    refused: dict[str, Any],
    rollback: dict[str, Any],
) -> None:
    (mae_before, n_before), (mae_after, n_after) = before, later["after"]
    SAY("\n" + "=" * 100 + "\nCLOSED LOOP SUMMARY\n" + "=" * 100)
    SAY(f"initial model        version {v_old}, trained on 2021-01 (valid 2021-02)")
    SAY(f"labelled rows / day  {later['rows_per_day']} (the first phase's rides, by New York pickup day)")
    SAY(
        f"MAE before           {mae_before:.3f} min  (version {v_old} on {n_before} rides of 2023-03, "
        "from the predictions stream)"
    )
    SAY(
        f"MAE after            {mae_after:.3f} min  (version {swap.v_new} on {n_after} later rides of "
        "2023-03, which neither model trained on)"
    )
    SAY(f"                     version {v_old} on those same later rides: {old_on_after:.3f} min")
    SAY(
        f"alarm -> new model   {swap.seconds:.1f} s from {swap.alarm['AlarmName']} -> ALARM to the first "
        f"prediction by version {swap.v_new}"
    )
    SAY(
        f"swap traffic         {later['swap_in']} rides in (trickle during the swap + later slice), "
        f"{later['swap_out']} predictions out; dropped {later['dropped']}, duplicated {later['duplicated']}; "
        f"trickle served by versions {later['trickle_versions']}"
    )
    SAY(f"gate refusal         {refused['verdict']}")
    SAY(f"rollback             {rollback['verdict']}")
    SAY(f"live after rollback  {loop.stack.live().version} (MLflow alias production -> {loop.production()})")
    tags = loop.registry.version_tags(loop.model, swap.v_new)
    shown = ", ".join(
        f"{k}={v[:40]}" for k, v in sorted(tags.items()) if k.startswith(("loop.", "gate.promoted"))
    )
    SAY(f"MLflow tags of v{swap.v_new}  {shown}")
    SAY("audit (python -m infra.audit_table --local):")
    SAY(table(read_audit(loop.stack.models)))


# ------------------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m infra.loop_demo", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--days", type=int, default=int(os.environ.get("LOOP_DAYS", "5")), help="days of rides first"
    )
    parser.add_argument("--after", type=int, default=int(os.environ.get("LOOP_AFTER", "3000")))
    parser.add_argument("--bad-rides", type=int, default=int(os.environ.get("LOOP_BAD_RIDES", "1000")))
    parser.add_argument("--rate", type=float, default=400.0, help="rides/s of the bulk phases")
    return parser.parse_args(argv)


def scenario(args: argparse.Namespace) -> bool:
    """Every phase in order; True if the loop showed what it should."""
    stack, trained = deploy_and_train()
    v_old = stack.live().version
    warm_up(stack)
    before, trickle_rides, after, bad_phase = split_rides(args)
    consumer = PredictionsConsumer(stack["PredictionsStreamName"]).start()
    loop = Loop(stack, consumer, Registry(), trained["model"], args.rate)
    monitor_at = drift_phase(loop, before, v_old)
    swap = swap_phase(loop, trickle_rides, monitor_at, v_old)
    later = later_figures(loop, after, swap)
    old_on_after = loop.bundle_mae(v_old, after)
    refused = gate_refusal(loop)
    rollback = rollback_phase(loop, bad_phase)
    consumer.stop()
    mae_before = loop.mae(before, v_old)
    later["rows_per_day"] = rows_per_day(before)
    say_summary(loop, v_old, mae_before, old_on_after, swap, later, refused, rollback)
    return (
        later["dropped"] == 0
        and later["duplicated"] == 0
        and later["after"][0] < mae_before[0]
        and rollback["kind"] == "rollback"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    OUT.mkdir(parents=True, exist_ok=True)
    started = now_s()
    try:
        ok = scenario(args)
    except (PollTimeout, InvokeError) as exc:
        sys.exit(f"loop-demo: {exc}")
    SAY(
        f"loop-demo took {(now_s() - started).total_seconds():.0f} s. LocalStack and MLflow are left running "
        "(make localstack-down mlflow-down)."
    )
    if not ok:
        SAY("WARNING: the loop did not show what it should (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
