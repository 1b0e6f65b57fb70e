"""template.yaml read once: parameter defaults, intrinsic functions resolved, the CloudWatch alarm rules and a
function's environment, so the replay runs with the deployed configuration and judges with its alarms."""

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
            if function.startswith("Fn::"):
                raise Unresolved(f"{function} is not evaluated by the replay")
        if isinstance(value, Mapping):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

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
