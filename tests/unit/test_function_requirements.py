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
RUNTIME_PROVIDED = {"boto3", "botocore"}  # in the python3.11 Lambda runtime
DISTRIBUTION_MODULE = {"aws-lambda-powertools": "aws_lambda_powertools", "scikit-learn": "sklearn"}
RETRAIN_TRAINING_CORE = ("model.py", "export.py", "gate.py", "publish.py", "metrics.py")


def shipped_files(function: str) -> list[Path]:
    """The Python files that go into the function's zip (its folder and trip_core; for the retrain
    function also the training core its Makefile copies)."""
    folder = ROOT / function
    files = [p for p in folder.rglob("*.py") if "trip_core" not in p.parts and "training" not in p.parts]
    files += list((ROOT / "trip_core").glob("*.py"))
    if function == "lambda_retrain":
        files += [ROOT / "training" / name for name in RETRAIN_TRAINING_CORE]
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


@pytest.mark.parametrize("function", ["lambda_predict", "lambda_monitor", "lambda_retrain"])
def test_every_imported_third_party_module_is_required(function: str) -> None:
    local = {"trip_core", "training", "predict_service", "monitor_service", "lambda_retrain", "app"}
    imported = third_party_imports(shipped_files(function), local)
    missing = imported - required_modules(function) - RUNTIME_PROVIDED
    assert not missing, f"{function}/requirements.txt lacks {sorted(missing)}"
