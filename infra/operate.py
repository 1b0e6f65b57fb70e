"""The on-call person's commands (`make status | retrain | approve | reject | rollback`):

  status                       live / shadow / canary versions with their predictions in the last hour,
                               the rollout's stage, the loop's last decisions, every alarm's state
  retrain --reason R           start the retrain pipeline now (audited with the reason)
  approve|reject --version V   the version awaiting approval goes on, or is retired
  rollback --version V         serving/live.json back to version V (audited)

Against the LocalStack stack by default; `--stack NAME [--region R]` against a stack on AWS (the default
credentials). Every action is a direct invoke of the retrain function: the loop checks and audits it
(docs/architecture.md, "Closed loop"), this only asks.
"""

from __future__ import annotations

import argparse
import getpass
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from infra.audit_table import table
from infra.harness.stack import LONG_INVOKE
from lambda_retrain.audit import read_audit, read_state
from lambda_retrain.aws import S3Store
from lambda_retrain.rollout import active
from trip_core.contracts import LIVE_POINTER_KEY, METRICS_NAMESPACE
from trip_core.plan import NO_PLAN, PlanError, plan_of
from trip_core.pointer import ModelPointer

LAST_DECISIONS = 8


@dataclass(frozen=True)
class Stack:
    outputs: dict[str, str]
    client: Callable[..., Any]  # service name (, config) -> boto3 client
    name: str


def connect(stack: str | None, region: str | None) -> Stack:
    if stack is None:
        from infra.aws import STACK_NAME, client, stack_outputs

        return Stack(stack_outputs(), client, STACK_NAME)
    import boto3

    session = boto3.Session(region_name=region)
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    return Stack(outputs, lambda service, config=None: session.client(service, config=config), stack)


def status(stack: Stack) -> str:
    models = S3Store(stack.outputs["ModelsBucketName"], stack.client("s3"))
    body = models.get(LIVE_POINTER_KEY)
    lines = []
    if body is None:
        lines.append("no live model (serving/live.json is missing)")
    else:
        document = json.loads(body)
        live = ModelPointer.from_dict(document)
        try:
            plan = plan_of(document, live.version)
        except PlanError as exc:  # serving follows no such plan either (it logs and counts it)
            lines.append(f"traffic plan REFUSED by the predict function: {exc}; the live model answers alone")
            plan = NO_PLAN
        served = _predictions_last_hour(stack)
        lines += ["arm     version  predictions (last hour)", "------  -------  -----------------------"]
        arms = [("live", live.version), ("shadow", plan.shadow), ("canary", plan.canary)]
        for arm, version in arms:
            if version is not None:
                count = "" if arm == "shadow" else str(served.get(version, 0))  # a shadow answers none
                lines.append(f"{arm:<6}  {version:<7}  {count}")
        if plan.canary is not None:
            lines.append(f"canary share: {plan.canary_share:.0%}")
    lines += _rollout_lines(read_state(models))
    lines += ["", "last decisions of the loop:", table(read_audit(models)[-LAST_DECISIONS:])]
    lines += ["", "alarms:", *_alarm_states(stack)]
    return "\n".join(lines)


def _rollout_lines(state: dict[str, Any]) -> list[str]:
    rollout = state.get("rollout")
    if not rollout:
        return []
    if not isinstance(rollout, dict):
        return [f"\nrollout state MALFORMED (the loop does not follow it): {json.dumps(rollout)[:300]}"]
    running = rollout.get("stage") in ("shadow", "canary", "awaiting_approval")
    flag = " (MALFORMED: the loop does not follow it)" if running and active(state) is None else ""
    return [
        f"\nrollout of {rollout.get('version')} beside {rollout.get('live_version')}: {rollout.get('stage')}"
        f" since {rollout.get('stage_started_at')}{flag}"
    ]


def _predictions_last_hour(stack: Stack) -> dict[str, int]:
    """Predictions per model_version (the predict functions' metric, both arms), summed over the hour."""
    cloudwatch, end = stack.client("cloudwatch"), datetime.now(UTC)
    counts: dict[str, int] = {}
    for metric in cloudwatch.list_metrics(Namespace=METRICS_NAMESPACE, MetricName="Predictions")["Metrics"]:
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        version = dimensions.get("model_version")
        if version is None:
            continue
        points = cloudwatch.get_metric_statistics(
            Namespace=METRICS_NAMESPACE,
            MetricName="Predictions",
            Dimensions=metric["Dimensions"],
            StartTime=end - timedelta(hours=1),
            EndTime=end,
            Period=3600,
            Statistics=["Sum"],
        )["Datapoints"]
        counts[version] = counts.get(version, 0) + int(sum(p["Sum"] for p in points))
    return counts


def _alarm_states(stack: Stack) -> list[str]:
    resources = stack.client("cloudformation").list_stack_resources(StackName=stack.name)
    names = [
        r["PhysicalResourceId"]
        for r in resources["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::CloudWatch::Alarm"
    ]
    alarms = stack.client("cloudwatch").describe_alarms(AlarmNames=names)["MetricAlarms"] if names else []
    return [
        f"  {a['StateValue']:<17}  {a['AlarmName']}" for a in sorted(alarms, key=lambda a: a["AlarmName"])
    ]


def ask_the_loop(stack: Stack, request: dict[str, Any]) -> dict[str, Any]:
    """A direct invoke of the retrain function; its answer (raises on a function error)."""
    lam = stack.client("lambda", LONG_INVOKE)
    response = lam.invoke(
        FunctionName=stack.outputs["RetrainFunctionName"], Payload=json.dumps(request).encode()
    )
    answer: dict[str, Any] = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise RuntimeError(f"the retrain function failed: {json.dumps(answer)[:2000]}")
    return answer


def request_of(args: argparse.Namespace) -> dict[str, Any]:
    reason = args.reason or f"make {args.command} by {getpass.getuser()}"
    request: dict[str, Any] = {"action": args.command, "source": "direct", "reason": reason}
    if args.command != "retrain":
        if not args.version:
            raise SystemExit(f"make {args.command} needs VERSION=<version>")
        request["version"] = args.version
    elif not args.reason:
        raise SystemExit('make retrain needs REASON="why" (it is audited)')
    return request


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.operate", description=__doc__)
    parser.add_argument("command", choices=("status", "retrain", "approve", "reject", "rollback"))
    parser.add_argument("--version")
    parser.add_argument("--reason")
    parser.add_argument("--stack", help="a stack on AWS (default: the LocalStack stack)")
    parser.add_argument("--region")
    args = parser.parse_args(argv)
    request = None if args.command == "status" else request_of(args)
    stack = connect(args.stack, args.region)
    if request is None:
        print(status(stack))
        return
    for decision in ask_the_loop(stack, request)["decisions"]:
        print(f"{decision['kind']}: {decision['verdict']}")


if __name__ == "__main__":
    main()
