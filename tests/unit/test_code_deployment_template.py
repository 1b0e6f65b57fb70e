"""Code releases of the predict functions (template.yaml, parameter CodeDeployment): through CodeDeploy
behind their release alias, rolled back on their errors alarm, or at `none` (the default, the LocalStack
stack) with no CodeDeploy resource at all; proven on what the SAM translator makes of the template
(infra/sam/translate.py, in .venvs/sam), which is also what infra/deploy_local.sh deploys to LocalStack."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.decode import cfn_yaml

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


def version_ids(translated: dict[str, Any]) -> set[str]:
    return set(of_type(translated, "AWS::Lambda::Version"))


def test_new_code_or_a_new_property_publishes_a_version_and_a_parameter_alone_does_not(
    at_none: dict[str, Any], tmp_path: Path
) -> None:
    """New code is a new package key (sam package names it by its hash); SAM hashes a parameter's
    reference, not its value (aws/serverless-application-model#1640): docs/architecture.md states it."""
    text = TEMPLATE.read_text()
    assert text.count("CodeUri: lambda_predict/") == len(RELEASED)
    new_code = tmp_path / "code.yaml"
    new_code.write_text(text.replace("CodeUri: lambda_predict/", "CodeUri: s3://packaged/new-code.zip"))
    assert not version_ids(translate(path=new_code)) & version_ids(at_none)
    stream_timeout = "Handler: lambda_predict.app.lambda_handler\n      MemorySize: 1024\n      Timeout: 60\n"
    assert text.count(stream_timeout) == 1
    new_timeout = tmp_path / "timeout.yaml"
    new_timeout.write_text(text.replace(stream_timeout, stream_timeout.replace("60", "30")))
    changed = version_ids(translate(path=new_timeout)) - version_ids(at_none)
    assert [name.startswith("PredictFunctionVersion") for name in changed] == [True]
    assert version_ids(translate("PointerTtlSeconds=5")) == version_ids(at_none)


def test_the_local_stack_deploys_the_functions_without_the_release_alias(tmp_path: Path) -> None:
    """infra/deploy_local.sh deploys infra/sam/local_template.py's output: LocalStack's transform never
    answers for a function with AutoPublishAlias, and its alias cannot be updated."""
    done = subprocess.run(
        [str(SAM_PYTHON), str(ROOT / "infra" / "sam" / "local_template.py"), str(TEMPLATE)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    local = tmp_path / "local.json"
    local.write_text(done.stdout)
    translated = translate(path=local)
    kinds = set(r["Type"] for r in translated["Resources"].values())
    assert not kinds & (CODEDEPLOY | {"AWS::Lambda::Alias", "AWS::Lambda::Version"})
    mapping = of_type(translated, "AWS::Lambda::EventSourceMapping")["PredictFunctionRides"]
    assert mapping["Properties"]["FunctionName"] == {"Ref": "PredictFunction"}
    aliases = {"PredictFunctionAliasArn", "PredictRideFunctionAliasArn"}
    assert set(translated["Outputs"]) == set(translate()["Outputs"]) - aliases
    assert [str(match) for match in lint(json.dumps(translated))] == []
