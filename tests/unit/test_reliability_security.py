"""Security checks of issue 8 that can fail: the template (IAM, buckets, logs), the repository (no
account ids, no secrets) and the rejected-rides path (no payload in the logs beyond a bounded excerpt).

The template is read with cfn-lint's CloudFormation-tag-aware loader (`!Ref`, `!GetAtt`, `!Sub` ...).
`make lint` runs cfn-lint and checkov on the same file.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from lambda_predict.handler import handle_batch
from tests.unit.test_predict_service import World, event, good, kinesis_record, world  # noqa: F401
from trip_core.capture import decode_rejected
from trip_core.rides import MAX_REASON_VALUE_CHARS

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


# ------------------------------------------------------------------------------------------ IAM


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every IAM statement anywhere in a (sub)template: inline policies, SAM `Statement`s, bucket policies."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Statement":
                yield from (s for s in _as_list(value) if isinstance(s, dict))
            else:
                yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def wildcard_grants(node: Any) -> list[dict[str, Any]]:
    """Allow statements with a wildcard action (`*`, `svc:*`) on Resource `*`; any NotAction/NotResource."""
    bad = []
    for statement in statements(node):
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            bad.append(statement)
            continue
        actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
        resources_ = _as_list(statement.get("Resource", []))
        wild_action = any(a == "*" or a.endswith(":*") for a in actions)
        if wild_action and "*" in resources_:
            bad.append(statement)
    return bad


# SAM policy templates in use and what they grant: all scoped to one named bucket/queue, except
# CloudWatchPutMetricPolicy (cloudwatch:PutMetricData, an action without resource-level permissions).
SCOPED_SAM_POLICIES = {
    "S3ReadPolicy",
    "S3WritePolicy",
    "S3CrudPolicy",
    "SQSSendMessagePolicy",
    "CloudWatchPutMetricPolicy",
}


def test_no_wildcard_action_on_every_resource(template: dict[str, Any]) -> None:
    assert wildcard_grants(template) == []
    for name, function in resources(template, "AWS::Serverless::Function").items():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, str):  # a managed policy name/ARN (e.g. AdministratorAccess)
                pytest.fail(f"{name}: managed policy {policy!r}; use scoped statements")
            unknown = set(policy) - SCOPED_SAM_POLICIES - {"Statement"}
            assert not unknown, f"{name}: unreviewed SAM policy template(s) {unknown}"
    for name, role in resources(template, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), name


def test_the_wildcard_check_catches_a_wildcard() -> None:
    """The check above can fail: a planted `s3:*` on `*` and an `Action: "*"` are found."""
    planted = {
        "Policies": [
            {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]},
            {"Statement": {"Effect": "Allow", "Action": ["kinesis:PutRecords", "*"], "Resource": ["*"]}},
            {"Statement": [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]},  # a Deny is fine
            {"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"}]},
        ]
    }
    assert len(wildcard_grants(planted)) == 2


# -------------------------------------------------------------------------------------- buckets


def test_buckets_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    buckets = resources(template, "AWS::S3::Bucket")
    assert set(buckets) == {"ModelsBucket", "CaptureBucket", "RejectedBucket"}
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in resources(template, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        rules = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rules and all(
            r["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms") for r in rules
        ), name
        block = props["PublicAccessBlockConfiguration"]
        assert all(
            block.get(k) is True
            for k in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets")
        ), name
        assert props["OwnershipControls"]["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced", name
        # TLS only: Deny s3:* to everyone when aws:SecureTransport is false, on the bucket and its objects
        assert name in policies, f"{name} has no bucket policy"
        denies = [
            s
            for s in _as_list(policies[name]["Statement"])
            if s["Effect"] == "Deny"
            and s["Principal"] == "*"
            and "s3:*" in _as_list(s["Action"])
            and str(s["Condition"]["Bool"]["aws:SecureTransport"]).lower() == "false"
        ]
        assert denies, f"{name}: no TLS-only statement"
        targets = json.dumps(_as_list(denies[0]["Resource"]), default=str)
        assert f"{name}.Arn" in targets or name in targets
        assert "/*" in targets, f"{name}: the TLS rule does not cover the objects"


def test_streams_and_queue_encrypted(template: dict[str, Any]) -> None:
    for name, stream in resources(template, "AWS::Kinesis::Stream").items():
        assert stream["Properties"]["StreamEncryption"]["EncryptionType"] == "KMS", name
    for name, queue in resources(template, "AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), name


def test_functions_do_not_log_events_and_logs_expire(template: dict[str, Any]) -> None:
    functions = resources(template, "AWS::Serverless::Function")
    env_globals = template["Globals"]["Function"]["Environment"]["Variables"]
    for name, function in functions.items():
        env = {**env_globals, **function["Properties"].get("Environment", {}).get("Variables", {})}
        assert str(env.get("POWERTOOLS_LOGGER_LOG_EVENT", "false")).lower() == "false", name
        assert str(env.get("LOG_LEVEL", "INFO")) != "DEBUG", name
    groups = resources(template, "AWS::Logs::LogGroup")
    assert len(groups) == len(functions)
    assert all("RetentionInDays" in g["Properties"] for g in groups.values())


def test_checkov_skips_are_justified(template: dict[str, Any]) -> None:
    """Every checkov finding not fixed is skipped in the resource's Metadata with a reason."""
    skips = 0
    for name, resource in template["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), (name, skip)
            assert len(skip.get("comment", "")) >= 40, f"{name} {skip['id']}: no real justification"
            skips += 1
    assert skips > 0


# ----------------------------------------------------------------------------------- repository

# 12-digit AWS account ids that may appear: LocalStack's, and the documentation examples.
ALLOWED_ACCOUNT_IDS = {"000000000000", "123456789012", "111122223333", "444455556666"}
ACCOUNT_ID = re.compile(
    r"arn:aws[\w-]*:[\w-]*:[\w-]*:(\d{12}):"  # in an ARN
    r"|(?i:account[_ -]?id)\W{1,4}(\d{12})\b"  # account_id = ..., "AccountId": "..."
    r"|\b(\d{12})\.dkr\.ecr\."  # ECR registry host
    r"|sqs\.[\w-]+\.amazonaws\.com/(\d{12})/"  # SQS queue URL
)
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")
SECRET_KEY = re.compile(r"(?i)aws.{0,20}secret.{0,20}?['\"=:\s]{1,4}([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")
ALLOWED_KEYS = {"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}  # AWS documentation


def tracked_text_files() -> Iterator[tuple[str, str]]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    for raw in names:
        path = ROOT / raw.decode()
        if not raw or not path.is_file() or path.stat().st_size > 5_000_000:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary (parquet, npz)
            continue
        yield raw.decode(), data.decode("utf-8", errors="replace")


def find_secrets(text: str) -> list[str]:
    found = []
    for match in ACCOUNT_ID.finditer(text):
        account = next(g for g in match.groups() if g)
        if account not in ALLOWED_ACCOUNT_IDS:
            found.append(f"account id {account}")
    found += [f"access key id {m}" for m in ACCESS_KEY_ID.findall(text) if m not in ALLOWED_KEYS]
    found += [f"secret key {m[:4]}..." for m in SECRET_KEY.findall(text) if m not in ALLOWED_KEYS]
    return found


def test_no_account_ids_or_secrets_in_tracked_files() -> None:
    problems = {path: found for path, text in tracked_text_files() if (found := find_secrets(text))}
    assert problems == {}


def test_the_secret_scan_finds_planted_ones() -> None:
    planted = (
        f"arn:aws:iam::{'98765' + '4321098'}:role/x\n"  # built, so this file does not hold them
        f'"AccountId": "{"21098" + "7654321"}"\n'
        "AKIA" + "Q" * 16 + "\n"
        "aws_secret_access_key = " + "a1B2" * 10 + "\n"
        "arn:aws:lambda:us-east-1:000000000000:function:ok  arn:aws:sts::123456789012:ok\n"
    )
    assert len(find_secrets(planted)) == 4


# ------------------------------------------------------------------------- rejected-ride logging


BIG = 200_000
REST = b', "DOLocationID": 2, "trip_distance": 1}}'
BIG_PAYLOADS = {
    "not JSON": b"\x01" + b"A" * BIG,
    "huge string ride_id": json.dumps(good("R" * BIG)).encode(),
    "huge pickup_datetime": json.dumps(
        {**good(1), "ride": {**good(1)["ride"], "pickup_datetime": "2" * BIG}}
    ).encode(),
    "4000-digit zone id": (
        b'{"ride_id": 1, "ride": {"PULocationID": 1'
        + b"7" * 4000
        + b', "DOLocationID": 2, "trip_distance": 1}}'
    ),
    "4000-digit float zone": (
        b'{"ride_id": 1, "ride": {"PULocationID": 1.5'
        + b"7" * 4000
        + b', "DOLocationID": 2, "trip_distance": 1}}'
    ),
    "big extra field": json.dumps({**good(1, -1.0), "notes": "N" * BIG}).encode(),
    "deep nesting": b"[" * 50_000 + b"]" * 50_000,
}
MAX_LOG_BYTES_PER_REJECTION = 1024


@pytest.mark.parametrize("case", list(BIG_PAYLOADS))
def test_a_rejection_logs_a_bounded_excerpt_only(
    world: World,  # noqa: F811
    log_stream: io.StringIO,
    case: str,
) -> None:
    raw = BIG_PAYLOADS[case]
    response = handle_batch(event(kinesis_record(7, None, raw=raw)), None, world.service)
    assert response["batchItemFailures"] == []
    (rejection,) = decode_rejected(next(iter(world.rejected.objects.values())))
    assert base64.b64decode(rejection.raw_base64) == raw  # the store keeps the whole payload ...
    for reason in rejection.reasons:  # ... but the reasons quote at most a short excerpt
        assert len(reason.reason) <= MAX_REASON_VALUE_CHARS + 64, reason
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    rejected_lines = [line for line in lines if line["message"] == "ride rejected"]
    assert len(rejected_lines) == 1
    text = log_stream.getvalue()
    assert len(text.encode()) <= MAX_LOG_BYTES_PER_REJECTION + 512, len(text)  # + the "batch processed" line
    assert rejection.raw_base64[:64] not in text
    for chunk in (b"A" * 100, b"R" * 100, b"2" * 100, b"7" * 100, b"N" * 100):
        assert chunk.decode() not in text
