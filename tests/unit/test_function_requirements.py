"""Every third-party module a function's zip imports is in that function's requirements.txt.

sam build installs only requirements.txt; a module the code imports but the file lacks fails only at
cold start in the cloud (seen once: orjson added to trip_core, missing from the monitor's zip).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_PROVIDED = {"boto3", "botocore"}  # in the python Lambda runtimes
DISTRIBUTION_MODULE = {"aws-lambda-powertools": "aws_lambda_powertools", "scikit-learn": "sklearn"}
FUNCTIONS = ["lambda_predict", "lambda_monitor", "lambda_actuals", "lambda_retrain"]


def shipped_packages(function: str) -> list[str]:
    """The packages the one build rule (infra/function.mk) puts in the function's zip."""
    for line in (ROOT / "infra" / "function.mk").read_text().splitlines():
        words = line.split()
        if words and words[0] == "$(FUNCTION_BUILD)" and words[-1] == function:
            return ["trip_core", *words[2:]]
    raise AssertionError(f"infra/function.mk builds no zip for {function}")


def shipped_files(function: str) -> list[Path]:
    """The modules a cold start may import. Lazy imports inside functions are not followed: those are
    the deliberate ones of paths the Lambda does not take (pandas and mlflow in training's CLI)."""
    files: list[Path] = []
    for package in shipped_packages(function):
        files += (ROOT / package).rglob("*.py")
    if function == "lambda_retrain":  # the CLIs and MLflow client of training are not on its import path
        off_path = {"train.py", "tracking.py", "data.py", "evaluate.py", "score.py"}
        files = [p for p in files if p.name not in off_path]
    return files


def third_party_imports(files: list[Path], local: set[str]) -> set[str]:
    """Module-level imports (what a cold start runs); imports inside functions are the deliberate lazy
    ones of paths the Lambda does not take (pandas for MLflow logging, infra for the local CLI)."""
    found: set[str] = set()
    for path in files:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found.update(name.split(".")[0] for name in names)
    return {m for m in found if m not in sys.stdlib_module_names and m not in local and m != "__future__"}


def required_modules(function: str) -> set[str]:
    modules = set()
    for line in (ROOT / function / "requirements.txt").read_text().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)", line.split("#")[0])
        if match:
            name = match.group(1).lower()
            modules.add(DISTRIBUTION_MODULE.get(name, name.replace("-", "_")))
    return modules


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_imported_third_party_module_is_required(function: str) -> None:
    local = {"trip_core", "training", *FUNCTIONS}
    imported = third_party_imports(shipped_files(function), local)
    missing = imported - required_modules(function) - RUNTIME_PROVIDED
    assert not missing, f"{function}/requirements.txt lacks {sorted(missing)}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_zip_carries_no_test_double_and_no_tool(function: str) -> None:
    assert not {"tests", "infra", "benchmarks"} & set(shipped_packages(function))


def test_one_python_for_the_venv_the_local_lambdas_and_the_runtime() -> None:
    runtimes = set(re.findall(r"Runtime: python(3\.\d+)", (ROOT / "template.yaml").read_text()))
    pinned = re.search(r"^PROJECT_PYTHON=(3\.\d+)\.\d+$", (ROOT / "infra/venvs.sh").read_text(), re.M)
    assert pinned, "infra/venvs.sh pins no PROJECT_PYTHON"
    assert runtimes == {pinned.group(1)} == {f"{sys.version_info.major}.{sys.version_info.minor}"}


TRACED = {"lambda_predict": True, "lambda_monitor": True, "lambda_actuals": True, "lambda_retrain": False}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_traced_functions_ship_the_xray_sdk(function: str) -> None:
    """With tracing on, Powertools imports the X-Ray SDK at cold start in Lambda (the local executor turns
    tracing off): a traced zip must carry it; an untraced function must tell Powertools so."""
    template = (ROOT / "template.yaml").read_text()
    resource = template[template.index(f"Handler: {function}.app.lambda_handler") :].split("\n  Retrain")[0]
    requirements = (ROOT / function / "requirements.txt").read_text()
    if TRACED[function]:
        assert re.search(r"^aws-lambda-powertools\[tracer\]==", requirements, re.M), requirements
    else:
        assert 'POWERTOOLS_TRACE_DISABLED: "true"' in resource and "Tracing: PassThrough" in template
