"""The built template (`sam build` output) as the LocalStack stack deploys it: without the predict functions'
code-release alias (docs/architecture.md, "Code releases"), everything else as built.

    .venvs/sam/bin/python infra/sam/local_template.py BUILT_TEMPLATE > LOCAL_TEMPLATE.json

LocalStack's community edition has no CodeDeploy, its SAM transform never answers CreateChangeSet once a
function has AutoPublishAlias, and its AWS::Lambda::Alias cannot be updated (a new version makes it call
CreateAlias again, the update fails and its rollback deletes the alias). The stack there therefore has the
functions as they were before code releases: the rides stream invokes the function itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from samtranslator.yaml_helper import yaml_parse

RELEASE_PROPERTIES = (
    "AutoPublishAlias",
    "AutoPublishAliasAllProperties",
    "DeploymentPreference",
)


def refers_to_an_alias(value: Any) -> bool:
    return ".Alias" in json.dumps(value)


def without_release_alias(template: dict[str, Any]) -> dict[str, Any]:
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            for name in RELEASE_PROPERTIES:
                resource["Properties"].pop(name, None)
    outputs = template.get("Outputs", {})
    template["Outputs"] = {name: o for name, o in outputs.items() if not refers_to_an_alias(o["Value"])}
    return template


def main(argv: list[str]) -> int:
    template = yaml_parse(Path(argv[0]).read_text())
    json.dump(without_release_alias(template), sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
