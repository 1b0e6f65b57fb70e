"""template.yaml through the SAM translator (aws-sam-translator, in .venvs/sam: make sam-venv) with the given
parameter values, offline: the CloudFormation template the stack would be made of, as JSON on stdout.

    .venvs/sam/bin/python infra/sam/translate.py [template.yaml] [Name=value ...]

tests/unit/test_code_deployment_template.py runs it with CodeDeployment at its default and at a canary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


class NoManagedPolicies:
    """The functions name their own roles: no managed policy name is looked up in IAM."""

    def load(self) -> dict[str, str]:
        return {}


def main(argv: list[str]) -> int:
    paths = [a for a in argv if "=" not in a]
    parameters: dict[str, Any] = dict(a.split("=", 1) for a in argv if "=" in a)
    template = yaml_parse(Path(paths[0] if paths else TEMPLATE).read_text())
    for logical_id, resource in template.get("Resources", {}).items():  # what sam package uploads
        properties = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function" and "s3://" not in str(properties["CodeUri"]):
            properties["CodeUri"] = f"s3://packaged/{logical_id}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # AWS::Region and the partition, offline
    output = transform(template, parameters, NoManagedPolicies())
    json.dump(output, sys.stdout, indent=1, sort_keys=True, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
