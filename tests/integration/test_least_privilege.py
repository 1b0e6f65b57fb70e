"""Least privilege, proven without AWS (issue 14, point 5): each function's real app module, cold-started with
its template environment, runs a day of real traffic on moto with IAM enforced (moto's
INITIAL_NO_AUTH_ACTION_COUNT, through `enable_iam_authentication`) as a role carrying exactly the policies the
template gives its role: the inline statements, resolved with the stack's names, and the managed policies
SAM attaches. A permission the code needs and the template lacks is a denial these flows record and fail on;
a statement no call of the function matched fails too, unless it is listed below with the reason the code
never exercises it; an excess action (predict writing actuals/, retrain deleting a bundle ...) is denied.

What moto enforces, so what this proves: the caller's identity policies, Action and Resource; S3 per bucket
and key, SQS per queue, Kinesis streams and Secrets Manager secrets through the `_determine_resource` hook
this file gives moto's responses; PutMetricData and DescribeAlarms take no resource. What moto does not:
conditions (ignored, as if met), bucket policies (stored, not evaluated), and S3's 403 instead of 404 for a
missing key to a principal without s3:ListBucket. `test_what_moto_does_not_enforce` pins that; those are
checked on the template in tests/unit/test_iam_template.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core import enable_iam_authentication
from moto.iam.access_control import IAMRequestBase
from moto.kinesis.responses import KinesisResponse
from moto.secretsmanager.responses import SecretsManagerResponse

from infra.harness.rides import Ride, bad_record, mixed_in, real_rides
from infra.replay.template import Template
from lambda_actuals.bootstrap import build_service as build_actuals
from lambda_actuals.config import ActualsConfig
from lambda_retrain.aws import S3Store
from lambda_retrain.guards import lock_holder
from tests.doubles.kinesis import lambda_record
from tests.doubles.predict import publish, tiny_bundle
from tests.integration.test_predict_moto import LambdaContext
from tests.integration.test_retrain_moto import put_alarm_in_alarm
from tests.monitor_months import month_columns, reference_profile_dict, valid_rows
from training import evaluation_set
from training.publish import S3ObjectStore, publish_live, publish_version
from trip_core.contracts import (
    DEFAULT_MODEL_NAME,
    EVALUATION_POINTER_KEY,
    LIVE_POINTER_KEY,
    LOOP_LOCK_KEY,
    LOOP_STATE_KEY,
    MONITOR_STATE_KEY,
    UNREADABLE_STATE_PREFIX,
    bundle_key,
    floor_hour,
    utc_iso,
)
from trip_core.pointer import ModelPointer

ROOT = Path(__file__).parents[2]
STACK_NAME = "trip-duration-dev"
REGION = "us-east-1"
APPS = {  # the module of each function's handler
    "PredictFunction": "lambda_predict/app.py",
    "PredictRideFunction": "lambda_predict/ride_app.py",
    "ActualsFunction": "lambda_actuals/app.py",
    "MonitorFunction": "lambda_monitor/app.py",
    "RetrainFunction": "lambda_retrain/app.py",
}
BY_THE_STREAM = {
    "ReadTheRidesStream": "the event source mapping",
    "ListStreams": "the event source mapping",
    "ReportFailedBatches": "the event source mapping's on-failure destination",
}
BY_THE_RUNTIME = {"Logs": "the Lambda runtime", "Traces": "the Lambda runtime"}
# Two days of traffic are enough labelled rides for a retrain whose holdout convinces the gate (the
# template's defaults want about a week's)
PARAMETERS = {"MinLabelledRows": "2000", "RetrainTargetRows": "4000"}
RIDES_A_DAY = 2_200
MONTH = "data/green_tripdata_2023-03.parquet"
SHARD = "shardId-000000000000"
CHAMPION = "1"
MISSING_IS_404 = "no call: S3's 404 for a missing key needs it, moto's is 404 anyway (test_iam_template)"
LAMBDA_TRUST = {  # the trust policy SAM gives the roles it creates
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
# Statements no call of the function's code can match, and why
NOT_CALLED_BY_THE_CODE = {
    "PredictFunction": {**BY_THE_STREAM, **BY_THE_RUNTIME},
    "PredictRideFunction": BY_THE_RUNTIME,
    "ActualsFunction": {
        **BY_THE_STREAM,
        "ReadTheActualsStream": "the event source mapping",
        **BY_THE_RUNTIME,
    },
    "MonitorFunction": {"TellMissingFromDenied": MISSING_IS_404},
    "RetrainFunction": {
        "TellMissingFromDenied": MISSING_IS_404,
        "ReadMlflowCredentials": "read only with MlflowAuthSecretArn set",
        "TellTheRollout": "only a staged PromotionPolicy (auto, approve) publishes (test_rollout.py)",
    },
}


@dataclass(frozen=True)
class Call:
    """One authorization moto decided: which role, which action on which resource, and the answer."""

    role: str
    action: str
    resource: str
    allowed: bool


@dataclass
class Stack:
    """The stack in moto: buckets, streams, queues and the secret named as the template names them, and each
    function's role with exactly its template policies (not the bucket policies: see
    test_what_moto_does_not_enforce)."""

    template: Template
    sessions: dict[str, boto3.Session]
    roles: dict[str, str]
    calls: list[Call] = field(default_factory=list)

    def name(self, logical_id: str) -> str:
        return str(self.template.resolve({"Ref": logical_id}))

    def client(self, function: str, service: str) -> Any:
        return self.sessions[function].client(service, region_name=REGION)

    def denied(self, function: str) -> list[tuple[str, str]]:
        return [
            (c.action, c.resource) for c in self.calls if c.role == self.roles[function] and not c.allowed
        ]

    @contextmanager
    def running(self, function: str, **variables: str) -> Iterator[ModuleType]:
        """The function's app module, cold-started (config, clients, model) and called with its environment
        (`variables` changed) and its role's credentials, IAM enforced."""
        credentials = self.sessions[function].get_credentials()
        env = {
            **self.template.function_environment(function),
            **variables,
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token,
            "AWS_DEFAULT_REGION": REGION,
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        with (
            mock.patch.dict(os.environ, env),
            mock.patch.object(boto3, "DEFAULT_SESSION", None),
            enable_iam_authentication(),
        ):
            yield load_app(APPS[function])

    def attempt(self, function: str, service: str, operation: str, **params: Any) -> str:
        """One call as the function's role, IAM enforced: "denied" (by moto's IAM check), "allowed", or the
        error code of another failure."""
        client, before = self.client(function, service), len(self.denied(function))
        with enable_iam_authentication():
            try:
                getattr(client, operation)(**params)
            except ClientError as error:
                code = str(error.response["Error"]["Code"])
                return "denied" if len(self.denied(function)) > before else code
        return "allowed"

    def unmatched(self, function: str) -> set[str]:
        """`<Sid> <resource>` of each resource of the function's Allow statements that no allowed call of
        its role matched (statements the code never calls left out)."""
        calls = [c for c in self.calls if c.role == self.roles[function] and c.allowed]
        return {
            f"{statement['Sid']} {resource}"
            for document in self.template.role_policies(function)
            for statement in _as_list(document["Statement"])
            if statement["Effect"] == "Allow" and statement["Sid"] not in NOT_CALLED_BY_THE_CODE[function]
            for resource in _as_list(statement["Resource"])
            if not any(_matches(statement["Action"], resource, call) for call in calls)
        }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(actions: Any, resource: str, call: Call) -> bool:
    return any(fnmatchcase(call.action, a) for a in _as_list(actions)) and fnmatchcase(
        call.resource, resource
    )


def load_app(path: str) -> ModuleType:
    """A fresh import of a handler's module: a Lambda cold start."""
    name = f"{path.replace('/', '_').removesuffix('.py')}_under_iam"
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop(name, None)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------ the stack in moto
def _stream_arn(response: Any) -> str:
    """moto authorizes Kinesis calls on Resource "*": this names the stream, as AWS does."""
    arn, name = response._get_param("StreamARN"), response._get_param("StreamName")
    return str(arn or f"arn:aws:kinesis:{response.region}:{response.current_account}:stream/{name}")


def _secret_arn(response: Any) -> str:
    """The same for Secrets Manager: the secret's ARN (whether the call names it by name or ARN)."""
    try:
        return str(response.backend.describe_secret(response._get_param("SecretId")).arn)
    except Exception:  # no such secret: the call fails on its own
        return "*"


# moto names an action by the service's signing name, IAM by its own prefix (CloudWatch signs as "monitoring")
IAM_PREFIXES = {"monitoring": "cloudwatch"}


def _recording(calls: list[Call]) -> Any:
    """moto's IAM check, recording each decision, with the action under its IAM name."""
    original = IAMRequestBase.check_action_permitted

    def check_action_permitted(self: IAMRequestBase, resource: str) -> None:
        service, _, operation = self._action.partition(":")
        self._action = f"{IAM_PREFIXES.get(service, service)}:{operation}"
        role = self._access_key.arn.split("/")[1]  # arn:aws:sts::<account>:assumed-role/<role>/<session>
        try:
            original(self, resource)
        except Exception:
            calls.append(Call(role, self._action, resource, False))
            raise
        calls.append(Call(role, self._action, resource, True))

    return check_action_permitted


def _create_resources(document: dict[str, Any]) -> dict[str, str]:
    """Every bucket, stream, queue and secret of the template, as CloudFormation would name them; the refs
    (Ref, GetAtt) the template's policies and environments resolve with."""
    refs = {"AWS::StackName": STACK_NAME, **PARAMETERS}
    template = Template(document, refs)
    s3, kinesis, sqs = (boto3.client(s, region_name=REGION) for s in ("s3", "kinesis", "sqs"))
    for logical_id, properties in template.resources("AWS::S3::Bucket").items():
        name = template.resolve(properties["BucketName"])
        s3.create_bucket(Bucket=name)
        if properties.get("VersioningConfiguration", {}).get("Status") == "Enabled":
            s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        refs |= {logical_id: name, f"{logical_id}.Arn": f"arn:aws:s3:::{name}"}
    for logical_id, properties in template.resources("AWS::Kinesis::Stream").items():
        name = template.resolve(properties["Name"])
        kinesis.create_stream(StreamName=name, ShardCount=1)
        arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        refs |= {logical_id: name, f"{logical_id}.Arn": arn}
    for logical_id, properties in template.resources("AWS::SQS::Queue").items():
        name = template.resolve(properties["QueueName"])
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        refs |= {logical_id: url, f"{logical_id}.Arn": arn, f"{logical_id}.QueueName": name}
    for logical_id, properties in template.resources("AWS::SNS::Topic").items():
        name = template.resolve(properties["TopicName"])
        refs[logical_id] = boto3.client("sns", region_name=REGION).create_topic(Name=name)["TopicArn"]
    for logical_id, properties in template.resources("AWS::SecretsManager::Secret").items():
        name = template.resolve(properties["Name"])
        key = "k" * properties["GenerateSecretString"]["PasswordLength"]
        refs[logical_id] = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=name, SecretString=key
        )["ARN"]
    return refs


def _create_role(template: Template, function: str) -> tuple[str, boto3.Session]:
    """The function's role, named as CloudFormation names it (<stack>-<LogicalId>-<suffix>), with exactly the
    template's policies; a session of it, as the Lambda runtime's credentials."""
    iam = boto3.client("iam", region_name=REGION)
    name = f"{STACK_NAME}-{template.role_logical_id(function)}-MOTO"
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"]
    for i, document in enumerate(template.role_policies(function)):
        iam.put_role_policy(RoleName=name, PolicyName=f"policy-{i}", PolicyDocument=json.dumps(document))
    for policy_arn in template.managed_policy_arns(function):
        iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=arn, RoleSessionName=function)[
        "Credentials"
    ]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    return name, session


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    admin = {"AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "admin", "AWS_DEFAULT_REGION": REGION}
    for key, value in {**admin, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    calls: list[Call] = []
    monkeypatch.setattr(IAMRequestBase, "check_action_permitted", _recording(calls))
    monkeypatch.setattr(KinesisResponse, "_determine_resource", _stream_arn, raising=False)
    monkeypatch.setattr(SecretsManagerResponse, "_determine_resource", _secret_arn, raising=False)
    with mock_aws():  # IAM is enforced only inside Stack.running / Stack.attempt: set-up runs as admin
        template = Template.load()
        refs = _create_resources(dict(template.document))
        roles, sessions = {}, {}
        for function in APPS:
            roles[function], sessions[function] = _create_role(Template(template.document, refs), function)
            refs[f"{template.role_logical_id(function)}.Arn"] = (
                f"arn:aws:iam::123456789012:role/{roles[function]}"
            )
        built = Template(template.document, refs)
        yield Stack(built, sessions, roles, calls)


# ------------------------------------------------------------------------------------ traffic
@dataclass
class Day:
    """A day of real rides served by the predict function, and the prediction id each good ride got."""

    rides: list[Ride]
    prediction_ids: dict[int, str]


def publish_champion(stack: Stack, with_profile: bool = False) -> ModelPointer:
    """The live model as the training side publishes it (its principal's policy is not the template's: as
    admin); a reference profile for the monitor."""
    bundle = tiny_bundle()
    pointer = publish(None, CHAMPION, bundle)
    profile = reference_profile_dict(valid_rows(month_columns("2021-01"))) if with_profile else {}
    store = S3ObjectStore(stack.name("ModelsBucket"), boto3.client("s3", region_name=REGION))
    publish_version(store, pointer, bundle, json.dumps(profile).encode())
    publish_live(store, pointer)
    return pointer


def serve(stack: Stack, end: datetime, days: int = 1) -> Day:
    """`days` of real rides picked up before `end` (and two bad records), in Kinesis batches of the
    template's BatchSize, each arriving at its pickup, through the predict function."""
    rides = mixed_in(
        real_rides(MONTH, RIDES_A_DAY * days, seed=0, id_base=1, end=end),
        [bad_record(0, {"ride": {"trip_distance": "far"}}), bad_record(-1, b"\xff not json")],
        seed=0,
    )
    size = int(stack.template.parameter("BatchSize"))
    with stack.running("PredictFunction") as app:
        for first in range(0, len(rides), size):
            records = [
                lambda_record(SHARD, 10**20 + first + k, None, ride.payload, _arrival(ride, end))
                for k, ride in enumerate(rides[first : first + size])
            ]
            answer = app.lambda_handler({"Records": records}, LambdaContext())
            assert answer == {"batchItemFailures": []}, answer
    return Day(rides, read_prediction_ids(stack))


def latest_at(moment: datetime, hour: int, minute: int) -> datetime:
    """The latest time of day hour:minute UTC at or before `moment`: how many pickup hours the gate's
    holdout (the latest rides) spans depends on the hours before the rides' end, so the end is fixed
    in the day, not left to the wall clock."""
    at = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at <= moment else at - timedelta(days=1)


def _arrival(ride: Ride, end: datetime) -> float:
    if not ride.good:
        return (end - timedelta(hours=1)).timestamp()
    return (ride.dropoff_utc() - timedelta(minutes=ride.duration or 0.0)).timestamp()


def read_prediction_ids(stack: Stack) -> dict[int, str]:
    """Ride id -> prediction id, as the clients read them on the predictions stream."""
    kinesis, stream = boto3.client("kinesis", region_name=REGION), stack.name("PredictionsStream")
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")
    given: dict[int, str] = {}
    position = iterator["ShardIterator"]
    while position:
        page = kinesis.get_records(ShardIterator=position, Limit=10_000)
        for record in page["Records"]:
            prediction = json.loads(record["Data"])["prediction"]
            given[int(prediction["ride_id"])] = prediction["prediction_id"]
        position = page["NextShardIterator"] if page["Records"] else None
    return given


def report_actuals(stack: Stack, day: Day) -> int:
    """Every good ride's actual duration, reported at its dropoff hour through the actuals function's
    service (its real adapters on its role's S3 client; the clock is the report's); how many accepted."""
    clock = [datetime.now(UTC)]
    config = ActualsConfig.from_env(stack.template.function_environment("ActualsFunction"))
    with enable_iam_authentication():
        service = build_actuals(config, stack.client("ActualsFunction", "s3"), now=lambda: clock[0])
        by_hour: dict[datetime, list[Ride]] = {}
        for ride in day.rides:
            if ride.good:
                by_hour.setdefault(floor_hour(ride.dropoff_utc()), []).append(ride)
        accepted = 0
        for seq, (hour, rides) in enumerate(sorted(by_hour.items())):
            clock[0] = hour + timedelta(minutes=30)
            records = [
                lambda_record(SHARD, 10**6 * (seq + 1) + k, _actual_line(day, r), None, clock[0].timestamp())
                for k, r in enumerate(rides)
            ]
            outcome = service.process_batch(records)
            assert not outcome.retry, outcome.retry
            accepted += outcome.accepted
    return accepted


def _actual_line(day: Day, ride: Ride) -> dict[str, Any]:
    return {"prediction_id": day.prediction_ids[int(ride.ride_id)], "duration_minutes": ride.duration}


def keys(bucket: str, prefix: str) -> list[str]:
    s3 = boto3.client("s3", region_name=REGION)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


# ------------------------------------------------------------------------------------ the proofs
def test_the_predict_function_serves_a_day_with_its_policies_and_no_more(stack: Stack) -> None:
    publish_champion(stack)
    end = floor_hour(datetime.now(UTC)) - timedelta(hours=1)
    day = serve(stack, end)
    with stack.running("PredictFunction", MODEL_VERSION_PIN=CHAMPION) as app:  # a pinned cold start
        assert app.SERVICE is not None
    assert stack.denied("PredictFunction") == []
    assert len(day.prediction_ids) == RIDES_A_DAY
    capture, rejected = stack.name("CaptureBucket"), stack.name("RejectedBucket")
    assert keys(capture, "captures/") and keys(rejected, "rejected/")
    assert stack.unmatched("PredictFunction") == set()

    excess = {
        "write actuals": ("put_object", capture, "actuals/dt=2023-03-06/hour=14/x.jsonl"),
        "write the monitor's state": ("put_object", capture, MONITOR_STATE_KEY),
        "write a report": ("put_object", capture, "reports/x/drift_report.json"),
        "read actuals": ("get_object", capture, "actuals/dt=2023-03-06/hour=14/x.jsonl"),
        "delete a capture": ("delete_object", capture, keys(capture, "captures/")[0]),
        "move the live pointer": ("put_object", stack.name("ModelsBucket"), LIVE_POINTER_KEY),
        "write a rejected actual": ("put_object", rejected, "rejected-actuals/x.json"),
    }
    assert _refused(stack, "PredictFunction", excess) == {what: "denied" for what in excess}
    rides_stream = stack.name("RidesStream")  # a loop: predictions written back as rides
    record = {"Data": b"{}", "PartitionKey": "1"}
    put = stack.attempt(
        "PredictFunction", "kinesis", "put_records", StreamName=rides_stream, Records=[record]
    )
    assert put == "denied"


@pytest.mark.parametrize("stream", ["ActualsStream", "PredictionsStream"])
def test_the_predict_role_reads_no_stream_but_the_rides(stack: Stack, stream: str) -> None:
    """SAM's role for a Kinesis event would carry AWSLambdaKinesisExecutionRole (Resource "*"): the
    labels and the function's own output would be readable. The template's explicit role is not."""
    answer = stack.attempt(
        "PredictFunction",
        "kinesis",
        "get_shard_iterator",
        StreamName=stack.name(stream),
        ShardId=SHARD,
        ShardIteratorType="TRIM_HORIZON",
    )
    assert answer == "denied", f"the predict role may read {stream}: {answer}"


def test_the_ride_function_answers_one_ride_with_its_policies_and_no_more(stack: Stack) -> None:
    publish_champion(stack)
    ride = {"ride": {"PULocationID": 130, "DOLocationID": 205, "trip_distance": 3.66}, "ride_id": 256}
    with stack.running("PredictRideFunction") as app:
        answer = app.lambda_handler(ride, LambdaContext())
        forged = app.lambda_handler({"Records": [lambda_record(SHARD, 1, ride, None, 0.0)]}, LambdaContext())
    with stack.running("PredictRideFunction", MODEL_VERSION_PIN=CHAMPION) as app:  # a pinned cold start
        assert app.SERVICE is not None
    assert "prediction" in answer
    assert forged["error"] == "invalid ride"  # a batch is not a ride: nothing served, nothing captured
    assert stack.denied("PredictRideFunction") == []
    capture = stack.name("CaptureBucket")
    assert [k.rsplit("/", 1)[1] for k in keys(capture, "captures/")] == ["direct_req-42.json.gz"]
    assert stack.unmatched("PredictRideFunction") == set()
    excess = {
        "write a stream batch's capture": (
            "put_object",
            capture,
            f"captures/dt=2023-03-06/hour=14/{SHARD}_1.json.gz",
        ),
        "write a rejected ride": ("put_object", stack.name("RejectedBucket"), "rejected/x.json"),
        "move the live pointer": ("put_object", stack.name("ModelsBucket"), LIVE_POINTER_KEY),
    }
    assert _refused(stack, "PredictRideFunction", excess) == {what: "denied" for what in excess}
    secret = stack.attempt(
        "PredictRideFunction", "secretsmanager", "get_secret_value", SecretId=stack.name("PredictionIdSecret")
    )
    put = stack.attempt(
        "PredictRideFunction",
        "kinesis",
        "put_records",
        StreamName=stack.name("PredictionsStream"),
        Records=[{"Data": b"{}", "PartitionKey": "1"}],
    )
    assert (secret, put) == ("denied", "denied")


def test_the_actuals_function_ingests_with_its_policies_and_no_more(stack: Stack) -> None:
    publish_champion(stack)
    day = serve(stack, floor_hour(datetime.now(UTC)) - timedelta(hours=1))
    lines = [_actual_line(day, r) for r in day.rides[:300] if r.good]
    lines.append({"prediction_id": "2023030614-" + "0" * 32, "duration_minutes": 12.0})  # names no ride
    with stack.running("ActualsFunction") as app:
        records = [
            lambda_record(SHARD, 5000 + k, line, None, datetime.now(UTC).timestamp())
            for k, line in enumerate(lines)
        ]
        assert app.lambda_handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    assert stack.denied("ActualsFunction") == []
    capture = stack.name("CaptureBucket")
    assert keys(capture, "actuals/") and keys(stack.name("RejectedBucket"), "rejected-actuals/")
    assert stack.unmatched("ActualsFunction") == set()

    excess = {
        "write a capture": ("put_object", capture, "captures/dt=2023-03-06/hour=14/x.json.gz"),
        "delete an actual": ("delete_object", capture, keys(capture, "actuals/")[0]),
        "write a report": ("put_object", capture, "reports/x/drift_report.json"),
        "write a rejected ride": ("put_object", stack.name("RejectedBucket"), "rejected/x.json"),
        "read the models": ("get_object", stack.name("ModelsBucket"), LIVE_POINTER_KEY),
    }
    assert _refused(stack, "ActualsFunction", excess) == {what: "denied" for what in excess}


def test_the_monitor_evaluates_a_window_with_its_policies_and_no_more(stack: Stack) -> None:
    publish_champion(stack, with_profile=True)
    now = datetime.now(UTC)
    day = serve(stack, floor_hour(now) - timedelta(hours=1))
    assert report_actuals(stack, day) > 0
    # an operator's backfill of the day up to now (rejected rides are keyed by the hour they were
    # processed: this hour), then the first scheduled run (no state yet; the backfill's report in its
    # history), then the next (its state read back)
    backfill = {
        "window_start": utc_iso(floor_hour(now) - timedelta(hours=23)),
        "window_end": utc_iso(floor_hour(now) + timedelta(hours=1)),
    }
    with stack.running("MonitorFunction") as app:
        backfilled = app.lambda_handler(backfill, LambdaContext())
        first = app.lambda_handler({"source": "aws.events"}, LambdaContext())
        again = app.lambda_handler({"source": "aws.events"}, LambdaContext())
        capture = stack.name("CaptureBucket")
        s3 = boto3.client("s3", region_name=REGION)
        s3.put_object(Bucket=capture, Key=MONITOR_STATE_KEY, Body=b"{not json")  # a state it cannot read
        restarted = app.lambda_handler({"source": "aws.events"}, LambdaContext())
    assert backfilled["versions"] == first["versions"] == {CHAMPION: "ok"}
    assert first["prediction_count"] > 1000
    assert len(first["evaluated"]) == 1 and again["evaluated"] == []
    assert restarted["evaluated"] and keys(capture, UNREADABLE_STATE_PREFIX) != []  # kept aside, then on
    assert stack.denied("MonitorFunction") == []
    report = json.loads(s3.get_object(Bucket=capture, Key=first["report_key"])["Body"].read())
    assert report["errors"] == 0 and report["actuals"]["accepted"] > 1000
    assert stack.unmatched("MonitorFunction") == set()

    excess = {
        "delete a capture": ("delete_object", capture, keys(capture, "captures/")[0]),
        "delete an actual": ("delete_object", capture, keys(capture, "actuals/")[0]),
        "write a capture": ("put_object", capture, "captures/dt=2023-03-06/hour=14/x.json.gz"),
        "write an actual": ("put_object", capture, "actuals/dt=2023-03-06/hour=14/x.jsonl"),
        "delete a report": ("delete_object", capture, first["report_key"]),
        "move the live pointer": ("put_object", stack.name("ModelsBucket"), LIVE_POINTER_KEY),
        "read a bundle": ("get_object", stack.name("ModelsBucket"), bundle_key(DEFAULT_MODEL_NAME, CHAMPION)),
    }
    assert _refused(stack, "MonitorFunction", excess) == {what: "denied" for what in excess}
    lifecycle = {"Bucket": capture, "LifecycleConfiguration": {"Rules": []}}
    assert (
        stack.attempt("MonitorFunction", "s3", "put_bucket_lifecycle_configuration", **lifecycle) == "denied"
    )


def test_the_loop_retrains_publishes_and_judges_with_its_policies_and_no_more(stack: Stack) -> None:
    publish_champion(stack)
    s3 = boto3.client("s3", region_name=REGION)
    models, capture = stack.name("ModelsBucket"), stack.name("CaptureBucket")
    trusted = evaluation_set.from_month(str(ROOT / "data/green_tripdata_2023-02.parquet"))
    evaluation_set.publish(S3Store(models, s3), *trusted)  # by the training side
    day = serve(stack, latest_at(datetime.now(UTC) - timedelta(minutes=90), hour=10, minute=15), days=2)
    assert report_actuals(stack, day) > 4000
    alarm = stack.template.function_environment("RetrainFunction")["RETRAIN_ALARMS"]
    put_alarm_in_alarm(alarm)
    started = datetime.now(UTC) - timedelta(hours=1)
    crashed = {
        "owner": "lambda:timed-out",
        "token": "0" * 32,
        "acquired_at": utc_iso(started),
        "expires_at": utc_iso(started + timedelta(minutes=16)),
    }
    s3.put_object(Bucket=models, Key=LOOP_LOCK_KEY, Body=json.dumps(crashed))  # a run that timed out
    notification = {"AlarmName": alarm, "NewStateValue": "ALARM", "NewStateReason": "drift"}
    check = {"action": "rollback_check", "reason": "an operator checks the promotion"}
    with stack.running("RetrainFunction") as app:
        alarmed = app.lambda_handler(
            {"Records": [{"Sns": {"Message": json.dumps(notification)}}]}, LambdaContext()
        )
        judged = app.lambda_handler(check, LambdaContext())
    (decision,) = alarmed["decisions"]
    assert decision["kind"] == "promoted", decision["verdict"]
    assert [d["kind"] for d in judged["decisions"]] == ["rollback_kept"], judged  # nothing served by it yet
    assert stack.denied("RetrainFunction") == []
    live = ModelPointer.from_json(s3.get_object(Bucket=models, Key=LIVE_POINTER_KEY)["Body"].read())
    assert live.version != CHAMPION
    lock = s3.get_object(Bucket=models, Key=LOOP_LOCK_KEY)["Body"].read()
    assert lock_holder(lock, datetime.now(UTC)) is None  # the crashed run's lock taken over, then released
    assert stack.unmatched("RetrainFunction") == set()

    excess = {
        "delete a bundle": ("delete_object", models, bundle_key(DEFAULT_MODEL_NAME, CHAMPION)),
        "delete the live pointer": ("delete_object", models, LIVE_POINTER_KEY),
        "delete the loop's state": ("delete_object", models, LOOP_STATE_KEY),
        "write the evaluation set": ("put_object", models, EVALUATION_POINTER_KEY),
        "write a capture": ("put_object", capture, "captures/dt=2023-03-06/hour=14/x.json.gz"),
        "write an actual": ("put_object", capture, "actuals/dt=2023-03-06/hour=14/x.jsonl"),
        "write another model's bundle": ("put_object", models, bundle_key("another-model", "1")),
    }
    assert _refused(stack, "RetrainFunction", excess) == {what: "denied" for what in excess}
    configurations: dict[str, dict[str, Any]] = {
        "put_bucket_lifecycle_configuration": {"LifecycleConfiguration": {"Rules": []}},
        "put_bucket_policy": {"Policy": "{}"},
        "put_bucket_versioning": {"VersioningConfiguration": {"Status": "Suspended"}},
    }
    for operation, params in configurations.items():
        assert stack.attempt("RetrainFunction", "s3", operation, Bucket=models, **params) == "denied"


def test_what_moto_does_not_enforce(stack: Stack) -> None:
    """The limits of the proofs above (tests/unit/test_iam_template.py checks these on the template instead).
    moto evaluates no condition of an identity policy (PutMetricData outside the namespace is let through);
    it reads a bucket policy's statements for object calls without their conditions and principals, so the
    stack's conditioned Denies would refuse every caller (the predict function its own captures) and are
    left out of the stack above; and it answers a missing key with NoSuchKey to a principal without
    s3:ListBucket, where S3 answers 403. Should moto change one of these, this fails: prove it above."""
    metric = {"MetricName": "Anything", "Value": 1.0}
    assert (
        stack.attempt(
            "MonitorFunction", "cloudwatch", "put_metric_data", Namespace="NotOurs", MetricData=[metric]
        )
        == "allowed"
    )
    capture = stack.name("CaptureBucket")
    policy = stack.template.resources("AWS::S3::BucketPolicy")["CaptureBucketPolicy"]["PolicyDocument"]
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_bucket_policy(Bucket=capture, Policy=json.dumps(stack.template.resolve(policy)))
    own_capture = {"Bucket": capture, "Key": "captures/dt=2023-03-06/hour=14/x.json.gz", "Body": b"{}"}
    assert stack.attempt("PredictFunction", "s3", "put_object", **own_capture) not in ("allowed", "denied")
    s3.delete_bucket_policy(Bucket=capture)
    assert stack.attempt("PredictFunction", "s3", "put_object", **own_capture) == "allowed"
    assert (
        stack.attempt(
            "PredictFunction",
            "s3",
            "get_object",
            Bucket=stack.name("ModelsBucket"),
            Key="serving/versions/none.json",
        )
        == "NoSuchKey"
    )


def _refused(stack: Stack, function: str, calls: dict[str, tuple[str, str, str]]) -> dict[str, str]:
    answers = {}
    for what, (operation, bucket, key) in calls.items():
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if operation == "put_object":
            params["Body"] = b"{}"
        answers[what] = stack.attempt(function, "s3", operation, **params)
    return answers
