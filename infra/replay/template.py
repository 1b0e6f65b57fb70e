"""template.yaml read once: parameter defaults, intrinsic functions resolved, the CloudWatch alarm rules, a
function's environment and its role's policies, so the replay runs with the deployed configuration and judges
with its alarms, and tests/integration/test_least_privilege.py runs each function under its own policies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
PSEUDO_PARAMETERS = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
_SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
POLICY_VERSION = "2012-10-17"
# What SAM attaches to the role it creates for a function (aws-sam-translator): the basic execution policy,
# X-Ray's unless Tracing is unset or Disabled (PassThrough included), the read policy of each pull event
# source, and sqs:SendMessage to an event's on-failure queue
SAM_BASIC_POLICY = "service-role/AWSLambdaBasicExecutionRole"
SAM_TRACING_POLICY = "AWSXrayWriteOnlyAccess"
SAM_PULL_EVENT_POLICIES = {
    "Kinesis": "service-role/AWSLambdaKinesisExecutionRole",
    "SQS": "service-role/AWSLambdaSQSQueueExecutionRole",
    "DynamoDB": "service-role/AWSLambdaDynamoDBExecutionRole",
}


class Unresolved(ValueError):
    """An intrinsic function the replay cannot evaluate (a resource attribute, a condition)."""


@dataclass(frozen=True)
class AlarmRule:
    """One AWS::CloudWatch::Alarm on a single metric, its properties resolved."""

    name: str
    namespace: str
    metric: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period_seconds: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str


class Template:
    def __init__(self, document: Mapping[str, Any], refs: Mapping[str, str] | None = None) -> None:
        """`refs`: what a `Ref` of a resource stands for (e.g. the replay's bucket names)."""
        self.document = document
        defaults = {name: p.get("Default") for name, p in document.get("Parameters", {}).items()}
        self.values: dict[str, Any] = {**PSEUDO_PARAMETERS, **defaults, **(refs or {})}

    @classmethod
    def load(cls, path: Path = TEMPLATE, refs: Mapping[str, str] | None = None) -> Template:
        return cls(dict(cfn_yaml.load(str(path))), refs)

    def parameter(self, name: str) -> Any:
        return self.values[name]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Mapping) and len(value) == 1:
            ((function, argument),) = value.items()
            if function == "Ref":
                return self._ref(str(argument))
            if function == "Fn::Sub" and isinstance(argument, str):
                return _SUB_VARIABLE.sub(lambda match: str(self._ref(match.group(1))), argument)
            if function == "Fn::GetAtt":  # a resource attribute the caller gave in `refs`: "Bucket.Arn"
                return self._ref(argument if isinstance(argument, str) else ".".join(argument))
            if function == "Fn::If":
                name, when_true, when_false = argument
                return self.resolve(when_true if self.condition(name) else when_false)
            if function.startswith("Fn::"):
                raise Unresolved(f"{function} is not evaluated by the replay")
        if isinstance(value, Mapping):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def condition(self, name: str) -> bool:
        return self._holds(self.document["Conditions"][name])

    def _holds(self, node: Any) -> bool:
        ((function, argument),) = node.items()
        if function == "Condition":
            return self.condition(str(argument))
        if function == "Fn::Equals":
            left, right = (str(self.resolve(item)) for item in argument)
            return left == right
        if function == "Fn::Not":
            return not self._holds(argument[0])
        if function == "Fn::And":
            return all(self._holds(item) for item in argument)
        if function == "Fn::Or":
            return any(self._holds(item) for item in argument)
        raise Unresolved(f"condition function {function} is not evaluated")

    def _ref(self, name: str) -> Any:
        if name not in self.values:
            raise Unresolved(f"Ref {name} has no value in the replay")
        return self.values[name]

    def resources(self, kind: str) -> dict[str, Mapping[str, Any]]:
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.document.get("Resources", {}).items()
            if resource.get("Type") == kind
        }

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment (Globals first), every variable the replay can resolve."""
        globals_ = self.document.get("Globals", {}).get("Function", {}).get("Environment", {})
        own = self.resources("AWS::Serverless::Function")[logical_id].get("Environment", {})
        env: dict[str, str] = {}
        for name, value in {**globals_.get("Variables", {}), **own.get("Variables", {})}.items():
            try:
                env[name] = str(self.resolve(value))
            except Unresolved:
                continue
        return env

    def alarm_rules(self, namespace: str) -> list[AlarmRule]:
        """The alarms on one metric of `namespace` (metric-math alarms are not in the replay's scope)."""
        return [
            self._rule(properties)
            for properties in self.resources("AWS::CloudWatch::Alarm").values()
            if properties.get("Namespace") == namespace and "MetricName" in properties
        ]

    def _rule(self, properties: Mapping[str, Any]) -> AlarmRule:
        """Only the properties the evaluation needs are resolved (actions name resources it has none of)."""

        def get(name: str, default: Any = None) -> Any:
            return self.resolve(properties[name]) if name in properties else default

        evaluation_periods = int(get("EvaluationPeriods"))
        return AlarmRule(
            name=str(get("AlarmName")),
            namespace=str(get("Namespace")),
            metric=str(get("MetricName")),
            dimensions=tuple(sorted((str(d["Name"]), str(d["Value"])) for d in get("Dimensions", []))),
            statistic=str(get("Statistic")),
            period_seconds=int(get("Period")),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=int(get("DatapointsToAlarm", evaluation_periods)),
            threshold=float(get("Threshold")),
            comparison=str(get("ComparisonOperator")),
            treat_missing_data=str(get("TreatMissingData", "missing")),
        )

    def role_logical_id(self, function: str) -> str:
        """The function's role: its `Role` (a GetAtt of an AWS::IAM::Role), or `<Function>Role`, the one
        SAM creates."""
        role = self.resources("AWS::Serverless::Function")[function].get("Role")
        if role is None:
            return f"{function}Role"
        if not (isinstance(role, Mapping) and "Fn::GetAtt" in role):
            raise Unresolved(f"{function}: Role {role!r} is not a GetAtt of a role of the template")
        return str(_as_list(role["Fn::GetAtt"])[0].split(".")[0])

    def role_policies(self, function: str) -> list[dict[str, Any]]:
        """The inline policy documents of the function's role, resolved. Only statements are read: a SAM
        policy template (S3CrudPolicy ...) or a managed policy in `Policies` is Unresolved, so nothing the
        role is given escapes a reader of the template."""
        role = self.role_logical_id(function)
        explicit = self.resources("AWS::IAM::Role").get(role)
        if explicit is not None:
            return [self.resolve(policy["PolicyDocument"]) for policy in explicit.get("Policies", [])]
        properties = self.resources("AWS::Serverless::Function")[function]
        documents = []
        for policy in properties.get("Policies", []):
            if not (isinstance(policy, Mapping) and set(policy) == {"Statement"}):
                raise Unresolved(f"{function}: {policy!r} is not a list of statements")
            documents.append({"Version": POLICY_VERSION, "Statement": self.resolve(policy["Statement"])})
        for event_id, event in properties.get("Events", {}).items():
            on_failure = event.get("Properties", {}).get("DestinationConfig", {}).get("OnFailure")
            if on_failure is None:
                continue
            if on_failure.get("Type") != "SQS":
                raise Unresolved(f"{function}: on-failure destination {on_failure!r} is not modelled")
            sid = f"{function}{event_id}SQSPolicy"  # SAM's name of the policy
            statement = {"Sid": sid, "Effect": "Allow", "Action": "sqs:SendMessage"}
            statement["Resource"] = self.resolve(on_failure["Destination"])
            documents.append({"Version": POLICY_VERSION, "Statement": [statement]})
        return documents

    def managed_policy_arns(self, function: str) -> list[str]:
        """The AWS managed policies on the function's role: an explicit role's ManagedPolicyArns, or the
        ones SAM attaches to the role it creates."""
        role = self.resources("AWS::IAM::Role").get(self.role_logical_id(function))
        if role is not None:
            return [str(arn) for arn in self.resolve(role.get("ManagedPolicyArns", []))]
        properties = self.resources("AWS::Serverless::Function")[function]
        globals_ = self.document.get("Globals", {}).get("Function", {})
        tracing = properties.get("Tracing", globals_.get("Tracing"))
        traced = tracing is not None and self.resolve(tracing) != "Disabled"
        names = [SAM_BASIC_POLICY, *([SAM_TRACING_POLICY] if traced else [])]
        names += [
            SAM_PULL_EVENT_POLICIES[event["Type"]]
            for event in properties.get("Events", {}).values()
            if event["Type"] in SAM_PULL_EVENT_POLICIES
        ]
        return [f"arn:{self.values['AWS::Partition']}:iam::aws:policy/{name}" for name in names]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
