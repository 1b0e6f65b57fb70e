"""The template's actuals path: only the actuals function can write actuals/ (LocalStack does not enforce
IAM, so this is where it is proven), the predict function writes captures/ only, and the function is
wired like the predict function (partial batch responses, bisect, an on-failure queue, alarms)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from tests.unit.test_reliability_security import _as_list

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
BUCKET = "${CaptureBucket.Arn}"
SAM_BUCKET_WRITES = {"S3WritePolicy", "S3CrudPolicy"}  # SAM policy templates that write a whole bucket
PUT = "s3:PutObject"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def _text(value: Any) -> str:
    """A resource as its !Sub text: `${CaptureBucket.Arn}/captures/*`."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        return str(value["Fn::Sub"])
    if "Fn::GetAtt" in value:
        return "${" + ".".join(_as_list(value["Fn::GetAtt"])) + "}"
    return "${" + str(value.get("Ref")) + "}"


def _allows(statement: dict[str, Any], action: str, resource: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = [a for a in _as_list(statement.get("Action", [])) if isinstance(a, str)]
    acted = any(fnmatchcase(action, a) for a in actions)
    return acted and any(fnmatchcase(resource, _text(r)) for r in _as_list(statement.get("Resource", [])))


def _identity_policies(template: dict[str, Any]) -> dict[str, list[Any]]:
    """Role logical id -> its policies (SAM functions without `Role` get `<Function>Role`)."""
    roles: dict[str, list[Any]] = {}
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and "Role" not in properties:
            roles[f"{name}Role"] = properties.get("Policies", [])
        elif resource["Type"] == "AWS::IAM::Role":
            roles[name] = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    return roles


def _identity_allows(policies: list[Any], key: str) -> bool:
    resource = f"{BUCKET}/{key}"
    for policy in policies:
        for template_name in SAM_BUCKET_WRITES & set(policy):
            if policy[template_name]["BucketName"] == {"Ref": "CaptureBucket"}:
                return True
        if any(_allows(s, PUT, resource) for s in _as_list(policy.get("Statement", []))):
            return True
    return False


def _denied(template: dict[str, Any], role: str, key: str) -> bool:
    """The capture bucket's policy denies `role` a PutObject of `key` (a Deny with a condition other than
    the named-role exception counts as no Deny: the writers found are then too many, never too few)."""
    statements = template["Resources"]["CaptureBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    for statement in statements:
        if statement["Effect"] != "Deny" or PUT not in _as_list(statement["Action"]):
            continue
        if not any(fnmatchcase(f"{BUCKET}/{key}", _text(r)) for r in _as_list(statement["Resource"])):
            continue
        condition = statement.get("Condition", {})
        excepted = {**condition.get("ArnNotEquals", {}), **condition.get("ArnNotLike", {})}.get(
            "aws:PrincipalArn"
        )
        if excepted is not None and not names_role(excepted, role):
            return True
    return False


def names_role(arn: Any, role: str) -> bool:
    """`arn` is the role's: its GetAtt, or the pattern of the name CloudFormation gives SAM's implicit
    role (<stack>-<LogicalId>-<suffix>), or a list holding one of those."""
    if isinstance(arn, list):
        return any(names_role(one, role) for one in arn)
    return arn == {"Fn::GetAtt": [role, "Arn"]} or _text(arn).endswith(f"${{AWS::StackName}}-{role}-*")


def _writers(template: dict[str, Any], key: str) -> set[str]:
    return {
        role
        for role, policies in _identity_policies(template).items()
        if _identity_allows(policies, key) and not _denied(template, role, key)
    }


def test_only_the_actuals_function_can_write_actuals(template: dict[str, Any]) -> None:
    assert _writers(template, "actuals/dt=2023-03-06/hour=14/shardId-1_2.jsonl") == {"ActualsFunctionRole"}
    assert template["Resources"]["ActualsFunction"]["Properties"]["Role"] == {
        "Fn::GetAtt": ["ActualsFunctionRole", "Arn"]
    }


def test_the_predict_function_writes_captures_only(template: dict[str, Any]) -> None:
    predict = _identity_policies(template)["PredictFunctionRole"]
    assert _identity_allows(predict, "captures/dt=2023-03-06/hour=14/shardId-1_2.json.gz")
    assert not _identity_allows(predict, "actuals/dt=2023-03-06/hour=14/x.jsonl")
    assert not _identity_allows(predict, "reports/x/drift_report.json")
    assert "PredictFunctionRole" in _writers(template, "captures/dt=2023-03-06/hour=14/x.json.gz")


def test_the_check_finds_a_second_writer() -> None:
    """The checks above can fail: a bucket-wide write of another function is found, and without the
    bucket policy's Deny the monitor (S3CrudPolicy on the capture bucket) could write actuals."""
    planted = {
        "Resources": {
            "CaptureBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {"PolicyDocument": {"Statement": []}},
            },
            "Other": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Policies": [{"S3WritePolicy": {"BucketName": {"Ref": "CaptureBucket"}}}]},
            },
        }
    }
    assert _writers(planted, "actuals/x.jsonl") == {"OtherRole"}


def test_the_actuals_function_is_wired_like_the_predict_function(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    event = resources["ActualsFunction"]["Properties"]["Events"]["Actuals"]["Properties"]
    assert event["Stream"] == {"Fn::GetAtt": ["ActualsStream", "Arn"]}
    assert (
        event["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and event["BisectBatchOnFunctionError"]
    )
    assert event["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["ActualsFailuresQueue", "Arn"]
    }
    watched = {
        str(a["Properties"].get("Dimensions")) for a in resources.values() if a["Type"].endswith("Alarm")
    }
    assert any("ActualsFunction" in d for d in watched) and any("ActualsFailuresQueue" in d for d in watched)


def test_the_prediction_id_key_is_a_generated_secret_only_the_predict_function_reads(
    template: dict[str, Any],
) -> None:
    secret = template["Resources"]["PredictionIdSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret" and secret["Properties"]["GenerateSecretString"]
    predict = template["Resources"]["PredictFunction"]["Properties"]
    assert predict["Environment"]["Variables"]["PREDICTION_ID_SECRET_ARN"] == {"Ref": "PredictionIdSecret"}
    readers = {
        role
        for role, policies in _identity_policies(template).items()
        for policy in policies
        for statement in _as_list(policy.get("Statement", []))
        if _allows(statement, "secretsmanager:GetSecretValue", "${PredictionIdSecret}")
    }
    assert readers == {"PredictFunctionRole"}
