"""The dashboard's rollout widgets (template.yaml Dashboard): per model version, on the names the code
publishes, valid JSON once CloudFormation has substituted the body."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from infra.replay.template import Template
from lambda_monitor.service import metrics_of
from lambda_predict.handler import count_for_version

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
RELEASED = ("PredictFunction", "PredictRideFunction")  # behind the release alias (CodeDeployment)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def dashboard(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body as CloudWatch gets it: parameters at their defaults, resources by name."""
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]
    names = set(re.findall(r"\$\{([^}!]+)\}", body["Fn::Sub"]))
    replay = Template(template)
    refs = {name: f"<{name}>" for name in names if name not in replay.values}
    return dict(json.loads(Template(template, refs).resolve(body)))


def searches(widget: dict[str, Any]) -> list[str]:
    return [m[0]["expression"] for m in widget["properties"]["metrics"] if isinstance(m[0], dict)]


def widget(body: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = [w for w in body["widgets"] if w["properties"].get("title", "").startswith(title)]
    return found


def schema(expression: str) -> tuple[str, frozenset[str], str]:
    """SEARCH('{Namespace,dims...} MetricName="..."' ...) -> (namespace, dimension names, metric name)."""
    found = re.match(r"SEARCH\('\{([^}]*)\} MetricName=\"(\w+)\"", expression)
    assert found, expression
    namespace, *dimensions = found.group(1).split(",")
    return namespace, frozenset(dimensions), found.group(2)


def monitor_published() -> set[tuple[str, frozenset[str]]]:
    """What the monitor publishes per model version for a window with labelled rides."""
    quality = {"out_of_domain_share": 0.0, "published": True, "in_domain": 40,
               "mae": 3.0, "rmse": 4.0, "mae_ratio": 1.1, "rmse_ratio": 1.0}  # fmt: skip
    drift: dict[str, Any] = {"drift_share": 0.0, "dataset_drift": False, "prediction": None, "features": {}}
    report = {
        "errors": 0, "generated_at": "2023-03-07T06:00:00Z",
        "metrics": {"published": True, "timestamp": "2023-03-07T05:00:00Z"},
        "prediction_count": 80, "rejected": {"share": 0.0},
        "actuals": {"rejected": {}, "conflicting_rides": 0},
        "versions": {v: {"prediction_count": 40, "status": "ok", "missing_share": 0.0, "drift": drift,
                         "quality": quality} for v in ("1", "2")},
        "canary": {"mae_ratio": 1.5},
    }  # fmt: skip
    return {(d.name, frozenset(name for name, _ in d.dimensions)) for d in metrics_of(report)}


def predict_published(capsys: pytest.CaptureFixture[str]) -> set[tuple[str, frozenset[str]]]:
    """The predict functions' per-version count (EMF on stdout)."""
    capsys.readouterr()
    count_for_version("Predictions", 3, "2")
    found = set()
    for line in capsys.readouterr().out.splitlines():
        for metric_set in json.loads(line)["_aws"]["CloudWatchMetrics"]:
            for metric in metric_set["Metrics"]:
                found |= {(metric["Name"], frozenset(d)) for d in metric_set["Dimensions"]}
    return found


def test_the_dashboard_shows_each_model_version_of_a_rollout_on_what_the_code_publishes(
    template: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trip-duration-predict")  # as template.yaml sets it
    body = dashboard(template)  # valid JSON once CloudFormation has substituted it
    published = {("TripDuration", *m) for m in monitor_published() | predict_published(capsys)}
    shown = [
        schema(e)
        for title in ("Rollout: MAE per model version", "Rollout: predictions per model version")
        for e in searches(widget(body, title))
    ]
    assert {(namespace, metric) for namespace, _, metric in shown} == {
        ("TripDuration", "MAE"), ("TripDuration", "MAERatio"),
        ("TripDuration", "Predictions"), ("TripDuration", "PredictionCount"),
    }  # fmt: skip
    for namespace, dimensions, metric in shown:  # a SEARCH schema names the whole dimension set
        assert (namespace, metric, dimensions) in published, (metric, dimensions)
    canary = widget(body, "Rollout: the canary's MAE")["properties"]
    assert canary["metrics"] == [["TripDuration", "CanaryMAERatio"]]
    assert ("TripDuration", "CanaryMAERatio", frozenset()) in published
    threshold = template["Parameters"]["CanaryMAERatioThreshold"]["Default"]
    assert canary["annotations"]["horizontal"][0]["value"] == threshold


def test_every_dashboard_expression_has_a_unique_valid_id(template: dict[str, Any]) -> None:
    body = dashboard(template)
    ids = [m[0]["id"] for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]
           if isinstance(m[0], dict)]  # fmt: skip
    assert ids and len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][a-zA-Z0-9_]*", i) for i in ids)


def test_the_dashboard_shows_each_lambda_version_behind_the_release_alias(template: dict[str, Any]) -> None:
    expressions = searches(widget(dashboard(template), "Code release:"))
    assert {schema(e)[2] for e in expressions} == {"Errors", "Invocations"}
    for expression in expressions:
        alias_dimensions = frozenset({"ExecutedVersion", "FunctionName", "Resource"})  # Lambda's, per version
        assert schema(expression)[:2] == ("AWS/Lambda", alias_dimensions)
        assert all(f'FunctionName="<{function}>"' in expression for function in RELEASED)
