"""The template's side of the loop's trust: who may publish to the alarm topic (IAM is not enforced by
LocalStack community, so it is checked here), what the retrain function may do, and its parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from lambda_retrain.config import RetrainConfig

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


STACK_ALARMS = {
    "Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}"
    ":alarm:trip-duration-${Stage}-*"
}


def test_only_this_stacks_cloudwatch_alarms_publish_to_the_alarm_topic(template: dict[str, Any]) -> None:
    policy = template["Resources"]["AlarmTopicPolicy"]["Properties"]
    assert policy["Topics"] == [{"Ref": "AlarmTopic"}]
    allow, deny = policy["PolicyDocument"]["Statement"]
    assert allow["Effect"] == "Allow" and allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert allow["Action"] == deny["Action"] == "sns:Publish"
    assert allow["Resource"] == deny["Resource"] == {"Ref": "AlarmTopic"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert allow["Condition"]["ArnLike"] == {"aws:SourceArn": STACK_ALARMS}
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"ArnNotLike": {"aws:SourceArn": STACK_ALARMS}}
    names = [
        r["Properties"]["AlarmName"]["Fn::Sub"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and {"Ref": "AlarmTopic"} in r["Properties"]["AlarmActions"]
    ]
    assert names and all(name.startswith("trip-duration-${Stage}-") for name in names)  # the allowed ARNs


def statements(function: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in function["Properties"]["Policies"] for s in policy.get("Statement", [])]


def test_the_retrain_function_may_describe_alarms_and_read_only_its_mlflow_secret(
    template: dict[str, Any],
) -> None:
    function = template["Resources"]["RetrainFunction"]
    by_action = {s["Action"]: s for s in statements(function)}
    assert by_action["cloudwatch:DescribeAlarms"]["Effect"] == "Allow"
    secret = by_action["secretsmanager:GetSecretValue"]["Resource"]["Fn::If"]
    assert secret[:2] == ["HasMlflowAuthSecret", {"Ref": "MlflowAuthSecretArn"}]
    env = function["Properties"]["Environment"]["Variables"]
    assert env["ALLOW_FORCE_PROMOTE"] == {"Ref": "AllowForcePromote"}
    assert env["MLFLOW_AUTH_SECRET_ARN"] == {"Ref": "MlflowAuthSecretArn"}


def test_force_promote_is_off_unless_the_stack_says_so(template: dict[str, Any]) -> None:
    parameter = template["Parameters"]["AllowForcePromote"]
    assert parameter["Default"] == "false" and parameter["AllowedValues"] == ["true", "false"]
    assert RetrainConfig.allow_force_promote is False
