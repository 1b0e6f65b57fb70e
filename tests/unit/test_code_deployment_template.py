"""Code releases of the predict functions (template.yaml, parameter CodeDeployment): through CodeDeploy
behind their release alias, rolled back on their errors alarm, or at `none` (the default, the LocalStack
stack) with no CodeDeploy resource at all; proven on what the SAM translator makes of the template
(infra/sam/translate.py, in .venvs/sam). And the dashboard's rollout widgets: per model version, on the
names the code publishes."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.decode import cfn_yaml

from infra.replay.template import Template
from lambda_monitor.service import metrics_of
from lambda_predict.handler import count_for_version

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM_PYTHON = ROOT / ".venvs" / "sam" / "bin" / "python"  # make sam-venv
TRANSLATE = ROOT / "infra" / "sam" / "translate.py"
CANARY = "Canary10Percent5Minutes"
# each predict function and the alarm on its AWS/Lambda Errors that rolls its release back
RELEASED = {"PredictFunction": "PredictErrorsAlarm", "PredictRideFunction": "PredictRideErrorsAlarm"}
CODEDEPLOY = {"AWS::CodeDeploy::Application", "AWS::CodeDeploy::DeploymentGroup"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(TEMPLATE)))


def translate(*parameters: str, path: Path = TEMPLATE) -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        pytest.skip("the SAM translator lives in .venvs/sam: make sam-venv")
    done = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATE), str(path), *parameters],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def at_none() -> dict[str, Any]:
    return translate()  # the parameter's default


@pytest.fixture(scope="module")
def at_canary() -> dict[str, Any]:
    return translate(f"CodeDeployment={CANARY}")


def of_type(translated: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in translated["Resources"].items() if r["Type"] == kind}


def alias_of(translated: dict[str, Any], function: str) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (name, r)
        for name, r in of_type(translated, "AWS::Lambda::Alias").items()
        if r["Properties"]["FunctionName"] == {"Ref": function}
    ]
    return found


def test_code_deployment_defaults_to_none_and_every_other_type_turns_codedeploy_on(
    template: dict[str, Any],
) -> None:
    parameter = template["Parameters"]["CodeDeployment"]
    assert parameter["Default"] == "none"
    enabled = template["Mappings"]["CodeDeployments"]
    assert set(enabled) == set(parameter["AllowedValues"])
    assert {value: row["Enabled"] for value, row in enabled.items()} == {
        value: "false" if value == "none" else "true" for value in parameter["AllowedValues"]
    }
    for function, alarm in RELEASED.items():
        properties = template["Resources"][function]["Properties"]
        assert properties["AutoPublishAlias"] == "release"
        assert properties["AutoPublishAliasAllProperties"] is True  # else a changed Timeout never reaches it
        assert properties["DeploymentPreference"] == {
            "Enabled": {"Fn::FindInMap": ["CodeDeployments", {"Ref": "CodeDeployment"}, "Enabled"]},
            "Type": {"Ref": "CodeDeployment"},
            "Alarms": [{"Ref": alarm}],
        }
        errors = template["Resources"][alarm]["Properties"]
        assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
        # FunctionName alone: every version's errors, the canary's among them
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]


def test_at_none_there_is_no_codedeploy_and_the_aliases_move_at_once(at_none: dict[str, Any]) -> None:
    kinds = Counter(r["Type"] for r in at_none["Resources"].values())
    assert not CODEDEPLOY & set(kinds) and "CodeDeployServiceRole" not in at_none["Resources"]
    assert (kinds["AWS::Lambda::Alias"], kinds["AWS::Lambda::Version"]) == (2, 2)
    for function in RELEASED:
        _, alias = alias_of(at_none, function)
        assert "UpdatePolicy" not in alias and alias["Properties"]["Name"] == "release"
    assert at_none["Outputs"]["CodeDeploymentEnabled"]["Value"]["Fn::FindInMap"][0] == "CodeDeployments"


def test_a_canary_release_shifts_each_alias_through_codedeploy_and_rolls_back_on_its_errors_alarm(
    at_canary: dict[str, Any],
) -> None:
    (application,) = of_type(at_canary, "AWS::CodeDeploy::Application")
    groups = of_type(at_canary, "AWS::CodeDeploy::DeploymentGroup")
    assert set(groups) == {f"{function}DeploymentGroup" for function in RELEASED}
    for function, alarm in RELEASED.items():
        group = groups[f"{function}DeploymentGroup"]["Properties"]
        assert group["DeploymentConfigName"] == {
            "Fn::Sub": ["CodeDeployDefault.Lambda${ConfigName}", {"ConfigName": CANARY}]
        }
        assert group["AlarmConfiguration"] == {"Alarms": [{"Name": {"Ref": alarm}}], "Enabled": True}
        assert "DEPLOYMENT_STOP_ON_ALARM" in group["AutoRollbackConfiguration"]["Events"]
        assert group["ApplicationName"] == {"Ref": application}
        _, alias = alias_of(at_canary, function)
        assert alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"] == {
            "Ref": f"{function}DeploymentGroup"
        }


def test_the_rides_stream_invokes_the_release_alias_either_way(
    at_none: dict[str, Any], at_canary: dict[str, Any]
) -> None:
    for translated in (at_none, at_canary):
        name, _ = alias_of(translated, "PredictFunction")
        mapping = of_type(translated, "AWS::Lambda::EventSourceMapping")["PredictFunctionRides"]
        assert mapping["Properties"]["FunctionName"] == {"Ref": name}  # the event "Rides"
        assert translated["Outputs"]["PredictRideFunctionAliasArn"]["Value"] == {
            "Ref": alias_of(translated, "PredictRideFunction")[0]
        }


def test_both_translations_are_cfn_lint_clean(at_none: dict[str, Any], at_canary: dict[str, Any]) -> None:
    for translated in (at_none, at_canary):
        assert [str(match) for match in lint(json.dumps(translated))] == []  # make lint's rules


def test_a_condition_cannot_switch_codedeploy_off(tmp_path: Path) -> None:
    """Why a mapping: SAM reads Enabled while it transforms, when no Condition is evaluated yet; an !If
    reads as true, and the stack at none would need CodeDeploy (LocalStack's community edition has none)."""
    enabled = "Enabled: !FindInMap [CodeDeployments, !Ref CodeDeployment, Enabled]"
    text = TEMPLATE.read_text()
    assert text.count(enabled) == len(RELEASED)
    variant = tmp_path / "template.yaml"
    variant.write_text(text.replace(enabled, "Enabled: !If [HasAlarmEmail, true, false]"))  # false here
    assert len(of_type(translate(path=variant), "AWS::CodeDeploy::DeploymentGroup")) == len(RELEASED)


# ---------------------------------------------------------------- the dashboard's rollout widgets


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


def test_the_dashboard_shows_each_lambda_version_behind_the_release_alias(template: dict[str, Any]) -> None:
    body = dashboard(template)
    expressions = searches(widget(body, "Code release:"))
    assert {schema(e)[2] for e in expressions} == {"Errors", "Invocations"}
    for expression in expressions:
        alias_dimensions = frozenset({"ExecutedVersion", "FunctionName", "Resource"})  # Lambda's, per version
        assert schema(expression)[:2] == ("AWS/Lambda", alias_dimensions)
        assert all(f'FunctionName="<{function}>"' in expression for function in RELEASED)
    ids = [m[0]["id"] for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]
           if isinstance(m[0], dict)]  # fmt: skip
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z][a-zA-Z0-9_]*", i) for i in ids)
