"""`make rollout-demo`: the safe rollout on LocalStack (docs/architecture.md, "Safe rollout").

    .venv/bin/python -m infra.rollout_demo [--rate 400]

1. LocalStack, the stack with the loop-demo settings (infra/loop_demo.py) and PromotionPolicy=auto,
   CanaryShare=0.1, RolloutStageHours=0.05 (a stage undecided after 3 minutes decides on the evidence it
   has), MLflow, on a fresh LocalStack; the 2021 model live; 2023-02 the trusted evaluation set.
2. auto: three days of real 2023-03 rides served by the 2021 model, their actuals; `make retrain`'s invoke:
   the challenger passes the gate and goes into shadow. A day of rides: the scheduled check (every 2
   minutes) judges the shadow on the rides both models scored, ride by ride -> a canary at 10 %. A day: the
   canary is judged on the rides it answered (the live model's answers to them captured beside) -> live.
3. A bad challenger (max_iter 1) forced past the gate: under a rollout policy it goes into shadow, not
   live. A day of rides: retired by the scheduled check, having answered no ride.
4. approve: the stack redeployed with PromotionPolicy=approve; `make rollback` to the 2021 model, so that a
   clearly better challenger exists; a retrain -> shadow -> a day -> awaiting approval, the evidence on the
   rollout topic; `make approve` -> a canary at 10 % answering a day of rides.
5. The stages as a table, the rides each arm answered and scored per phase, and artifacts/demo/
   rollout-mae.svg: each arm's MAE over the phases' pickup hours.

Every day of rides is a real day of 2023-03 (another week of the month each time) moved by whole weeks to
the 24 hours before it is sent, in pickup order, at its real volume; actuals reported at dropoff.
LocalStack and MLflow are left running (make localstack-down mlflow-down).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from infra.aws import STACK_NAME, client
from infra.harness.mlflow import Registry
from infra.harness.poll import PollTimeout, poll
from infra.harness.rides import Ride, real_rides
from infra.harness.scenario import CONSOLE, OUT, SAY, run, warm_up
from infra.harness.stack import InvokeError, Stack, now_s
from infra.harness.streams import PredictionsConsumer
from infra.loop_demo import MONTH_2023, RIDES_PER_DAY, Loop, deploy_and_train
from infra.rollout_picture import ArmPoint, render_arms_svg
from trip_core.contracts import parse_utc

ROLLOUT_OVERRIDES = {
    "PromotionPolicy": "auto",
    "CanaryShare": "0.1",
    "RolloutStageHours": "0.05",
}
LABELLED_DAYS = 3  # enough labelled rides for the retrain's holdout to span the gate's pickup hours
STAGE_TIMEOUT_S = 12 * 60  # the stage's 3 minutes, the 2-minute schedule, a retry's backoff
PICTURE = OUT / "rollout-mae.svg"


@dataclass
class Phase:
    name: str
    rides: list[Ride]
    sent_at: datetime


@dataclass
class Demo:
    loop: Loop
    started: datetime
    v_old: str
    queue_url: str
    phases: list[Phase] = field(default_factory=list)
    seed: int = 0

    @property
    def stack(self) -> Stack:
        return self.loop.stack

    def serve_day(self, name: str, days: int = 1) -> Phase:
        """A day of real rides (another week of 2023-03 each time) through the streams, their actuals."""
        self.seed += 1
        rides = real_rides(
            MONTH_2023, days * RIDES_PER_DAY, seed=self.seed, id_base=int(now_s().timestamp()) * 100_000
        )
        CONSOLE.step(f"{name}: {len(rides)} rides of 2023-03 in pickup order, their actuals")
        phase = Phase(name, rides, now_s())
        self.loop.serve(rides, f"rollout-{self.seed}")
        self.phases.append(phase)
        SAY(f"   answered by {dict(answered_by(self.loop, rides))}")
        return phase

    def wait_for(self, version: str, since: datetime, ends: tuple[str, ...]) -> dict[str, Any]:
        """The loop's first decision on `version` since `since` whose stage or kind is one of `ends`."""

        def decided() -> dict[str, Any] | None:
            for record in self.stack.audit_since(since):
                if record.get("version") == version and ends_in(record, ends):
                    return record
            return None

        SAY(f"   waiting for the scheduled check to decide on {version} ({' or '.join(ends)}) ...")
        record = poll(decided, timeout=STAGE_TIMEOUT_S, interval=2.0, what=f"{version}: {ends}")
        SAY(f"   {record['kind']} ({record.get('stage')}): {record['verdict'][:300]}")
        return record


def ends_in(record: dict[str, Any], ends: tuple[str, ...]) -> bool:
    return record.get("stage") in ends or record["kind"] in ends


def answered_by(loop: Loop, rides: list[Ride]) -> Counter[str]:
    got = loop.consumer.received
    return Counter(got[r.ride_id].version for r in rides if r.good and r.ride_id in got)


# ------------------------------------------------------------------------------------ phases


def auto_phase(demo: Demo) -> str:
    """The better challenger: shadow -> canary -> live, each stage judged by the scheduled check."""
    demo.serve_day(f"the 2021 model (version {demo.v_old}) serves {LABELLED_DAYS} days", LABELLED_DAYS)
    CONSOLE.step("make retrain (direct invoke): the challenger passes the gate and goes into shadow")
    version, asked = retrain_into_shadow(demo, "rollout-demo: 2023 traffic, a model of it")
    demo.serve_day(f"shadow: {version} scores every ride beside the live model")
    demo.wait_for(version, asked, ("canary", "retired"))
    canary_at = now_s()
    demo.serve_day(f"canary: {version} answers 10 % of the rides")
    demo.wait_for(version, canary_at - timedelta(minutes=1), ("promoted", "retired"))
    return version


def bad_phase(demo: Demo, live: str) -> str:
    """A worse challenger forced past the gate: stopped in shadow, having answered no ride."""
    CONSOLE.step("a bad challenger (max_iter 1) forced past the gate: into shadow, not live")
    version, asked = retrain_into_shadow(
        demo, "rollout-demo: a bad challenger", force_promote=True, params={"max_iter": 1}
    )
    phase = demo.serve_day(f"shadow: {version} beside the live model {live}")
    demo.wait_for(version, asked, ("retired", "canary", "promoted"))
    SAY(f"   rides answered by {version}: {answered_by(demo.loop, phase.rides)[version]}")
    return version


def approve_phase(demo: Demo) -> str:
    """PromotionPolicy=approve: the shadow's verdict waits for an operator, `make approve` goes on."""
    CONSOLE.step("redeploy with PromotionPolicy=approve (the stack parameter)")
    os.environ["PARAMETER_OVERRIDES"] += " PromotionPolicy=approve"
    seconds, _ = run(["infra/deploy_local.sh"], "deploy")
    SAY(f"   deploy (update): {seconds:.1f} s")
    CONSOLE.step(f"make rollback VERSION={demo.v_old}: back to the 2021 model, so a better challenger exists")
    operate("rollback", demo.v_old, "rollout-demo: stage an approve-mode rollout")
    version, asked = approve_mode_challenger(demo)
    demo.serve_day(f"shadow: {version} beside the live model {demo.v_old}")
    waiting = demo.wait_for(version, asked, ("awaiting_approval", "retired"))
    if waiting.get("stage") != "awaiting_approval":
        return version
    show_notification(demo, version)
    CONSOLE.step(f"make approve VERSION={version}")
    operate("approve", version, "rollout-demo: the shadow's evidence is good")
    demo.serve_day(f"canary (approved): {version} answers 10 % of the rides")
    return version


def approve_mode_challenger(demo: Demo) -> tuple[str, datetime]:
    """A retrain; when its gate cannot judge (the demo has put four days of rides into the last day's
    pickup hours, so the latest labelled rides span too few of them), the same retrain forced past the
    gate: the shadow then judges it on a day of paired rides, the operator on that evidence."""
    asked = now_s()
    decision = demo.loop.retrain("rollout-demo: approve mode")
    if decision["kind"] == "rollout" and "in shadow beside live" in decision["verdict"]:
        return str(decision["version"]), asked
    SAY("   the gate could not judge it on the demo's compressed holdout: forced past the gate into shadow")
    return retrain_into_shadow(demo, "rollout-demo: approve mode, forced past the gate", force_promote=True)


def retrain_into_shadow(demo: Demo, reason: str, **payload: Any) -> tuple[str, datetime]:
    """A direct retrain whose challenger must go into shadow; (its version, when it was asked for)."""
    asked = now_s()
    decision = demo.loop.retrain(reason, **payload)
    if decision["kind"] != "rollout" or "in shadow beside live" not in decision["verdict"]:
        sys.exit(f"rollout-demo: the retrain did not go into shadow: {decision['verdict']}")
    return str(decision["version"]), asked


def operate(command: str, version: str, reason: str) -> None:
    """The on-call command itself (`make approve|reject|rollback`), as a person runs it."""
    _, out = run(
        [sys.executable, "-m", "infra.operate", command, "--version", version, "--reason", reason], command
    )
    SAY(f"   {out.strip()[:300]}")


@contextmanager
def monitor_schedule_paused(stack: Stack) -> Iterator[None]:
    """The monitor's hourly schedule disabled while the demo runs (EventBridge DisableRule), enabled
    again after: its drift alarm would start retrains of its own (the closed loop, make loop-demo) beside
    the operator's `make retrain` this demo shows."""
    events, function = client("events"), stack["MonitorFunctionName"]
    resources = client("cloudformation").list_stack_resources(StackName=STACK_NAME)["StackResourceSummaries"]
    ids = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Events::Rule"]
    rules = [r for r in ids if any(t["Arn"].endswith(f":{function}") for t in _targets(events, r))]
    for rule in rules:
        events.disable_rule(Name=rule)
    SAY(f"   monitor schedule paused for the demo: {rules}")
    try:
        yield
    finally:
        for rule in rules:
            events.enable_rule(Name=rule)


def _targets(events: Any, rule: str) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = events.list_targets_by_rule(Rule=rule)["Targets"]
    return targets


def subscribe_to_rollout_topic(stack: Stack) -> str:
    """An SQS queue on the rollout topic: what an operator's mail or chat would receive."""
    sqs = client("sqs")
    url: str = sqs.create_queue(QueueName=f"rollout-demo-{int(now_s().timestamp())}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("sns").subscribe(TopicArn=stack["RolloutTopicArn"], Protocol="sqs", Endpoint=arn)
    return url


def show_notification(demo: Demo, version: str) -> None:
    """The rollout topic's message asking for approval, with its evidence."""

    def asked() -> dict[str, Any] | None:
        answer = client("sqs").receive_message(QueueUrl=demo.queue_url, MaxNumberOfMessages=10)
        for message in answer.get("Messages", []):
            body = json.loads(message["Body"])
            if "awaiting_approval" in body.get("Subject", "") and version in body["Subject"]:
                return body
        return None

    body = poll(asked, timeout=60, interval=1.0, what="the approval request on the rollout topic")
    evidence = json.loads(body["Message"])
    metrics = evidence.get("metrics") or {}
    SAY(f"   rollout topic: '{body['Subject']}'")
    SAY(
        f"   evidence: {metrics.get('rides')} rides compared, live MAE {metrics.get('live_mae'):.3f}, "
        f"challenger MAE {metrics.get('challenger_mae'):.3f}; verdict: {evidence['verdict'][:200]}"
    )


# ------------------------------------------------------------------------------------ the record


def stage_table(demo: Demo) -> str:
    rows = [("s", "version", "kind", "stage", "rides", "live MAE", "chall. MAE", "verdict")]
    for r in demo.stack.audit_since(demo.started):
        if r["kind"] not in ("rollout", "promoted", "retired", "rollback", "refused"):
            continue
        m = r.get("metrics") or {}
        rows.append(
            (
                f"{(parse_utc(r['time']) - demo.started).total_seconds():.0f}",
                str(r.get("version")),
                r["kind"],
                str(r.get("stage") or ""),
                str(m.get("rides", "")),
                _minutes(m.get("live_mae")),
                _minutes(m.get("challenger_mae")),
                r["verdict"][:110],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )


def _minutes(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ""


def arms_table(demo: Demo) -> str:
    """Per phase: the rides each version answered, and those a version scored beside without answering."""
    lines = []
    for phase in demo.phases:
        ids = {r.ride_id for r in phase.rides}
        beside: Counter[str] = Counter()
        seen: set[tuple[Any, str]] = set()
        for batch in demo.stack.captures_since(phase.sent_at):
            for ride_id in batch.ride_id:
                if batch.paired_version and ride_id in ids and (ride_id, batch.paired_version) not in seen:
                    seen.add((ride_id, batch.paired_version))
                    beside[batch.paired_version] += 1
        lines.append(
            f"  {phase.name[:60]:60s} answered {dict(answered_by(demo.loop, phase.rides))}"
            f"  scored beside {dict(beside)}"
        )
    return "\n".join(lines)


def arm_points(demo: Demo) -> list[ArmPoint]:
    """Each captured answer (and each answer scored beside it) with its ride's actual duration."""
    points: list[ArmPoint] = []
    for index, phase in enumerate(demo.phases):
        actual = {r.ride_id: r.duration for r in phase.rides if r.duration is not None}
        seen: set[tuple[Any, str]] = set()
        for batch in demo.stack.captures_since(phase.sent_at):
            paired = batch.paired_prediction or [None] * len(batch.ride_id)
            rows = zip(batch.ride_id, batch.pickup_datetime, batch.prediction, paired, strict=True)
            for ride_id, pickup, answer, beside in rows:
                if ride_id not in actual or (ride_id, batch.model_version) in seen:
                    continue
                seen.add((ride_id, batch.model_version))
                at = datetime.fromisoformat(pickup)
                points.append(ArmPoint(index, at, batch.model_version, True, abs(answer - actual[ride_id])))
                if beside is not None and batch.paired_version:
                    error = abs(beside - actual[ride_id])
                    points.append(ArmPoint(index, at, batch.paired_version, False, error))
    return points


def say_summary(demo: Demo, versions: dict[str, str]) -> None:
    SAY("\n" + "=" * 100 + "\nSAFE ROLLOUT SUMMARY\n" + "=" * 100)
    for role, version in versions.items():
        SAY(f"{role:28s} version {version}")
    SAY(f"live at the end              version {demo.stack.live().version}")
    SAY("stages (the loop's audit):")
    SAY(stage_table(demo))
    SAY("rides per arm (answered: on the predictions stream; scored beside: captured, never answered):")
    SAY(arms_table(demo))
    PICTURE.write_text(
        render_arms_svg(arm_points(demo), [p.name for p in demo.phases], "per-arm MAE over the rollout")
    )
    SAY(f"per-arm MAE picture: {PICTURE}")


# ------------------------------------------------------------------------------------ main


def scenario(args: argparse.Namespace) -> bool:
    # a fresh LocalStack: rides of an earlier run would lie in the same pickup hours as this run's, and the
    # retrain's holdout (the latest labelled rides) would then span too few of them to judge
    run(["infra/localstack.sh", "down"], "localstack down")
    overrides = " ".join(f"{k}={v}" for k, v in ROLLOUT_OVERRIDES.items())
    os.environ["PARAMETER_OVERRIDES"] = f"{os.environ.get('PARAMETER_OVERRIDES', '')} {overrides}".strip()
    stack, trained = deploy_and_train()
    warm_up(stack)
    consumer = PredictionsConsumer(stack["PredictionsStreamName"]).start()
    loop = Loop(stack, consumer, Registry(), trained["model"], args.rate)
    demo = Demo(loop, now_s(), stack.live().version, subscribe_to_rollout_topic(stack))
    with monitor_schedule_paused(stack):
        good = auto_phase(demo)
        bad = bad_phase(demo, good)
        approved = approve_phase(demo)
    consumer.stop()
    say_summary(demo, {"2021 model": demo.v_old, "auto challenger": good, "bad challenger": bad,
                       "approved challenger": approved})  # fmt: skip
    bad_answered = sum(answered_by(loop, p.rides)[bad] for p in demo.phases)
    approved_answered = answered_by(loop, demo.phases[-1].rides)[approved]
    return stack.live().version == demo.v_old and bad_answered == 0 and approved_answered > 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.rollout_demo", description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=400.0, help="rides/s sent to the rides stream")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    OUT.mkdir(parents=True, exist_ok=True)
    started = now_s()
    try:
        ok = scenario(args)
    except (PollTimeout, InvokeError) as exc:
        sys.exit(f"rollout-demo: {exc}")
    seconds = (now_s() - started).total_seconds()
    SAY(f"rollout-demo took {seconds:.0f} s. LocalStack and MLflow are left running.")
    if not ok:
        SAY("WARNING: the rollout did not show what it should (see above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
