"""`make help` is how a newcomer finds the targets: every `make <target>` the README names is in it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_target_the_readme_names_is_listed_by_make_help() -> None:
    listed = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    helped = {line.split()[0] for line in listed.stdout.splitlines() if line.strip()}
    named = set(re.findall(r"`make ([a-z][a-z0-9-]*[a-z0-9])\b(?!-)", (ROOT / "README.md").read_text()))
    assert named and named <= helped, f"not in make help: {sorted(named - helped)}"
