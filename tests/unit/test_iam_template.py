"""Least privilege on the template, where moto cannot prove it (tests/integration/test_least_privilege.py runs
the functions under these policies and says what moto leaves out): every S3 grant is a key prefix of
trip_core.contracts, so the two cannot drift; conditions (PutMetricData's namespace, s3:prefix); the bucket
policies (who may write serving/ and models/); S3's 403 for a missing key to a principal that may not list.

The policies are read as the moto proof reads them (infra/replay/template.py, intrinsics resolved), with each
bucket named by its logical id."""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import cache
from typing import Any

import pytest

from infra.replay.template import Template
from trip_core.contracts import (
    ACTUALS_PREFIX,
    BUNDLE_FILENAME,
    CAPTURE_PREFIX,
    DEFAULT_MODEL_NAME,
    EVALUATION_POINTER_KEY,
    EVALUATION_PREFIX,
    LIVE_POINTER_KEY,
    LOOP_AUDIT_PREFIX,
    LOOP_LOCK_KEY,
    LOOP_STATE_KEY,
    METRICS_NAMESPACE,
    MODELS_PREFIX,
    MONITOR_STATE_KEY,
    PROFILE_FILENAME,
    REJECTED_ACTUALS_PREFIX,
    REJECTED_PREFIX,
    REPORTS_PREFIX,
    UNREADABLE_STATE_PREFIX,
    VERSION_POINTERS_PREFIX,
    bundle_key,
)

STACK_NAME = "trip-duration-dev"
FUNCTIONS = (
    "PredictFunction",
    "PredictRideFunction",
    "ActualsFunction",
    "MonitorFunction",
    "RetrainFunction",
)
ANY = "(any prefix)"  # a ListBucket without an s3:prefix condition
TRAINER = "arn:aws:iam::123456789012:role/trip-duration-trainer"

# (action, bucket, key pattern or ListBucket's s3:prefix), from the contracts
GRANTS = {
    "PredictFunction": {
        ("s3:GetObject", "ModelsBucket", LIVE_POINTER_KEY),
        ("s3:GetObject", "ModelsBucket", f"{VERSION_POINTERS_PREFIX}*"),
        ("s3:GetObject", "ModelsBucket", f"{MODELS_PREFIX}*/{BUNDLE_FILENAME}"),
        ("s3:PutObject", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:PutObject", "RejectedBucket", f"{REJECTED_PREFIX}*"),
    },
    "PredictRideFunction": {
        ("s3:GetObject", "ModelsBucket", LIVE_POINTER_KEY),
        ("s3:GetObject", "ModelsBucket", f"{VERSION_POINTERS_PREFIX}*"),
        ("s3:GetObject", "ModelsBucket", f"{MODELS_PREFIX}*/{BUNDLE_FILENAME}"),
        ("s3:PutObject", "CaptureBucket", f"{CAPTURE_PREFIX}*/direct_*"),
    },
    "ActualsFunction": {
        ("s3:GetObject", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:ListBucket", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:PutObject", "CaptureBucket", f"{ACTUALS_PREFIX}*"),
        ("s3:PutObject", "RejectedBucket", f"{REJECTED_ACTUALS_PREFIX}*"),
    },
    "MonitorFunction": {
        ("s3:GetObject", "ModelsBucket", f"{VERSION_POINTERS_PREFIX}*"),
        ("s3:GetObject", "ModelsBucket", f"{MODELS_PREFIX}*/{PROFILE_FILENAME}"),
        ("s3:ListBucket", "ModelsBucket", ANY),
        ("s3:GetObject", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:GetObject", "CaptureBucket", f"{ACTUALS_PREFIX}*"),
        ("s3:GetObject", "CaptureBucket", f"{REPORTS_PREFIX}*"),
        ("s3:GetObject", "CaptureBucket", MONITOR_STATE_KEY),
        ("s3:PutObject", "CaptureBucket", f"{REPORTS_PREFIX}*"),
        ("s3:PutObject", "CaptureBucket", MONITOR_STATE_KEY),
        ("s3:PutObject", "CaptureBucket", f"{UNREADABLE_STATE_PREFIX}*"),
        ("s3:ListBucket", "CaptureBucket", ANY),
        ("s3:GetObject", "RejectedBucket", f"{REJECTED_PREFIX}*"),
        ("s3:ListBucket", "RejectedBucket", f"{REJECTED_PREFIX}*"),
    },
    "RetrainFunction": {
        *(
            ("s3:GetObject", "ModelsBucket", key)
            for key in (LIVE_POINTER_KEY, f"{VERSION_POINTERS_PREFIX}*", f"{MODELS_PREFIX}*")
        ),
        *(
            (action, "ModelsBucket", key)
            for action in ("s3:GetObject", "s3:PutObject")
            for key in (f"{LOOP_AUDIT_PREFIX}*", LOOP_STATE_KEY, LOOP_LOCK_KEY)
        ),
        ("s3:GetObject", "ModelsBucket", f"{EVALUATION_PREFIX}*"),
        ("s3:PutObject", "ModelsBucket", f"{MODELS_PREFIX}{DEFAULT_MODEL_NAME}/*"),
        ("s3:PutObject", "ModelsBucket", f"{VERSION_POINTERS_PREFIX}*"),
        ("s3:PutObject", "ModelsBucket", LIVE_POINTER_KEY),
        ("s3:ListBucket", "ModelsBucket", ANY),
        ("s3:GetObject", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:GetObject", "CaptureBucket", f"{ACTUALS_PREFIX}*"),
        ("s3:ListBucket", "CaptureBucket", f"{CAPTURE_PREFIX}*"),
        ("s3:ListBucket", "CaptureBucket", f"{ACTUALS_PREFIX}*"),
    },
}
# Buckets where the code reads a missing key as "absent" (NoSuchKey / 404) rather than after listing it:
# S3 says 404 only to a principal with s3:ListBucket there, not limited to a prefix (the key is not listed)
READS_MISSING_KEYS = {
    "PredictFunction": set(),  # a missing pointer or bundle is an error either way
    "PredictRideFunction": set(),
    "ActualsFunction": set(),  # reads only keys it has just listed
    "MonitorFunction": {"CaptureBucket", "ModelsBucket"},  # monitor/state.json, a version's pointer
    "RetrainFunction": {"ModelsBucket"},  # loop state, lock, audit names, pointers, training rows
}


def stack_template(**parameters: str) -> Template:
    """template.yaml resolved with every resource named by its logical id (buckets: arn:aws:s3:::<id>)."""
    document = Template.load().document
    refs: dict[str, str] = {"AWS::StackName": STACK_NAME, **parameters}
    arns = {"AWS::S3::Bucket": lambda i: f"arn:aws:s3:::{i}", "AWS::IAM::Role": cloudformation_role_arn}
    for logical_id, resource in document["Resources"].items():
        arn = arns.get(resource["Type"], lambda i: f"arn:{i}")(logical_id)
        refs |= {logical_id: logical_id, f"{logical_id}.Arn": arn, f"{logical_id}.QueueName": logical_id}
    return Template(document, refs)


@pytest.fixture(scope="module")
def template() -> Template:
    return stack_template()


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(template: Template, function: str) -> list[dict[str, Any]]:
    return [s for d in template.role_policies(function) for s in _as_list(d["Statement"])]


def s3_grants(template: Template, function: str) -> set[tuple[str, str, str]]:
    grants = set()
    for statement in statements(template, function):
        assert statement["Effect"] == "Allow", statement  # identity policies only allow
        for action in _as_list(statement["Action"]):
            if not action.startswith("s3:"):
                continue
            for resource in _as_list(statement["Resource"]):
                bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
                if action == "s3:ListBucket":
                    assert not key, statement
                    prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix", ANY)
                    grants |= {(action, bucket, prefix) for prefix in _as_list(prefixes)}
                else:
                    grants.add((action, bucket, key))
    return grants


def cloudformation_role_arn(logical_id: str) -> str:
    """The ARN CloudFormation gives a role, SAM's or the template's: <stack>-<LogicalId>-<suffix>."""
    return f"arn:aws:iam::123456789012:role/{STACK_NAME}-{logical_id}-1A2B3C"


@cache
def _as_written() -> Template:
    return Template.load()


def role_arn(function: str) -> str:
    return cloudformation_role_arn(_as_written().role_logical_id(function))


def bucket_denies(template: Template, bucket: str, principal: str, action: str, key: str) -> bool:
    """The bucket's policy denies `principal` the action on the key, on a request over TLS (the only
    condition keys the stack's bucket policies use: aws:PrincipalArn, aws:SecureTransport)."""
    (policy,) = [
        p for p in template.resources("AWS::S3::BucketPolicy").values() if p["Bucket"] == {"Ref": bucket}
    ]
    resource = f"arn:aws:s3:::{bucket}/{key}"
    for statement in _as_list(template.resolve(policy["PolicyDocument"])["Statement"]):
        if statement["Effect"] != "Deny" or statement["Principal"] != "*":
            continue
        if not any(fnmatchcase(action, a) for a in _as_list(statement["Action"])):
            continue
        if any(fnmatchcase(resource, r) for r in _as_list(statement["Resource"])) and all(
            _holds(operator, key_, values, principal)
            for operator, pairs in statement.get("Condition", {}).items()
            for key_, values in pairs.items()
        ):
            return True
    return False


def _holds(operator: str, key: str, values: Any, principal: str) -> bool:
    if key == "aws:SecureTransport":
        return operator == "Bool" and str(values).lower() == "true"
    assert key == "aws:PrincipalArn", f"condition key {key} is not evaluated here"
    like = any(fnmatchcase(principal, v) if "Like" in operator else principal == v for v in _as_list(values))
    return not like if "Not" in operator else like


def writers(template: Template, bucket: str, key: str, principals: dict[str, str]) -> set[str]:
    """Of `principals` (name -> ARN), who may PutObject the key: the functions by their role's policy and the
    bucket policy, other principals (their own policies are not the stack's) by the bucket policy alone."""
    allowed = set()
    for name, arn in principals.items():
        grants = s3_grants(template, name) if name in FUNCTIONS else {("s3:PutObject", bucket, "*")}
        identity = any(
            (a, b) == ("s3:PutObject", bucket) and fnmatchcase(key, pattern) for a, b, pattern in grants
        )
        if identity and not bucket_denies(template, bucket, arn, "s3:PutObject", key):
            allowed.add(name)
    return allowed


PRINCIPALS = {
    **{f: role_arn(f) for f in FUNCTIONS},
    "trainer": TRAINER,
    "an admin": "arn:aws:iam::123456789012:role/Admin",
}


def test_every_s3_grant_is_a_prefix_of_the_contracts(template: Template) -> None:
    for function in FUNCTIONS:
        assert s3_grants(template, function) == GRANTS[function], function
    parameters = template.document["Parameters"]
    assert parameters["ModelPointerKey"]["Default"] == LIVE_POINTER_KEY
    assert parameters["ModelName"]["Default"] == DEFAULT_MODEL_NAME


def test_the_prefix_check_finds_a_drifted_prefix() -> None:
    """It can fail: a template granting the monitor `report/` (a typo) is not the contracts'."""
    template = stack_template()  # its own copy of the document
    for policy in template.document["Resources"]["MonitorFunction"]["Properties"]["Policies"]:
        for statement in policy["Statement"]:
            if statement["Sid"] == "WriteReportsAndState":
                statement["Resource"] = [{"Fn::Sub": "${CaptureBucket.Arn}/report/*"}]
    assert ("s3:PutObject", "CaptureBucket", "report/*") in s3_grants(template, "MonitorFunction")
    assert s3_grants(template, "MonitorFunction") != GRANTS["MonitorFunction"]


def test_no_function_deletes_and_no_bucket_is_reconfigured(template: Template) -> None:
    s3_actions = {
        action
        for function in FUNCTIONS
        for statement in statements(template, function)
        for action in _as_list(statement["Action"])
        if action.startswith("s3:")
    }
    assert s3_actions == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}  # the lock is released by a put
    for function in FUNCTIONS:  # what SAM adds grants no S3 (basic execution, X-Ray, the stream's reader)
        assert all("S3" not in arn for arn in template.managed_policy_arns(function)), function


def test_a_missing_key_is_a_404_where_the_code_reads_it_as_absent(template: Template) -> None:
    for function in FUNCTIONS:
        listable = {
            b for a, b, prefix in s3_grants(template, function) if a == "s3:ListBucket" and prefix == ANY
        }
        assert listable == READS_MISSING_KEYS[function], function


def test_metrics_only_in_the_stacks_namespace(template: Template) -> None:
    publishers = {}
    for function in FUNCTIONS:
        for statement in statements(template, function):
            if "cloudwatch:PutMetricData" in _as_list(statement["Action"]):
                publishers[function] = statement.get("Condition")
    assert publishers == {"MonitorFunction": {"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}}}
    assert template.function_environment("MonitorFunction")["METRICS_NAMESPACE"] == METRICS_NAMESPACE
    assert (
        template.function_environment("PredictFunction")["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE
    )


@pytest.mark.parametrize("trainer", ["", TRAINER])
def test_only_the_loop_and_the_training_principal_publish_models(trainer: str) -> None:
    template = stack_template(TrainingPrincipalArn=trainer)
    publishers = {"RetrainFunction", *(["trainer"] if trainer else [])}
    for key in (LIVE_POINTER_KEY, f"{VERSION_POINTERS_PREFIX}7.json", bundle_key(DEFAULT_MODEL_NAME, "7")):
        assert writers(template, "ModelsBucket", key, PRINCIPALS) == publishers, key
    # a version's objects: deleted by no one else either (the retrain role's own policy allows no delete)
    for principal, denied in (
        (PRINCIPALS["an admin"], True),
        (PRINCIPALS["MonitorFunction"], True),
        (TRAINER, not trainer),
    ):
        for action in ("s3:DeleteObject", "s3:DeleteObjectVersion"):
            key = bundle_key(DEFAULT_MODEL_NAME, "1")
            assert bucket_denies(template, "ModelsBucket", principal, action, key) == denied, (
                principal,
                action,
            )


def test_each_prefix_has_its_one_writer(template: Template) -> None:
    for bucket, key, writer in (
        ("CaptureBucket", f"{CAPTURE_PREFIX}dt=2023-03-06/hour=14/x.json.gz", "PredictFunction"),
        ("CaptureBucket", f"{ACTUALS_PREFIX}dt=2023-03-06/hour=14/x.jsonl", "ActualsFunction"),
        ("CaptureBucket", f"{REPORTS_PREFIX}2023-03-06T14:00:00Z/drift_report.json", "MonitorFunction"),
        ("CaptureBucket", MONITOR_STATE_KEY, "MonitorFunction"),
        ("RejectedBucket", f"{REJECTED_PREFIX}x.json", "PredictFunction"),
        ("RejectedBucket", f"{REJECTED_ACTUALS_PREFIX}x.json", "ActualsFunction"),
        ("ModelsBucket", LOOP_STATE_KEY, "RetrainFunction"),
    ):
        functions = {f: role_arn(f) for f in FUNCTIONS}
        assert writers(template, bucket, key, functions) == {writer}, key
    direct = f"{CAPTURE_PREFIX}dt=2023-03-06/hour=14/direct_req-1.json.gz"
    functions = {f: role_arn(f) for f in FUNCTIONS}
    assert writers(template, "CaptureBucket", direct, functions) == {"PredictFunction", "PredictRideFunction"}
    assert writers(template, "ModelsBucket", EVALUATION_POINTER_KEY, functions) == set()


# What a managed policy may give a role: logs and traces, never data (SAM's role for a Kinesis event would
# add AWSLambdaKinesisExecutionRole, which reads every stream of the account)
HARMLESS_MANAGED = {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_managed_policy_gives_a_function_data(template: Template, function: str) -> None:
    managed = {arn.split(":policy/", 1)[1] for arn in template.managed_policy_arns(function)}
    assert managed <= HARMLESS_MANAGED, managed - HARMLESS_MANAGED
