"""trip_core.observability: the X-Ray SDK only when tracing is on (Powertools' rule), same decorators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trip_core.observability import DisabledTracer, tracing_enabled

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("env", "enabled"),
    [
        ({}, False),  # not in Lambda
        ({"LAMBDA_TASK_ROOT": "/var/task"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"}, False),
    ],
)
def test_tracing_follows_powertools_rule(env: dict[str, str], enabled: bool) -> None:
    assert tracing_enabled(env) is enabled


def test_disabled_tracer_decorates_both_ways() -> None:
    tracer = DisabledTracer()

    @tracer.capture_lambda_handler
    def bare(event: int, context: object) -> int:
        return event + 1

    @tracer.capture_lambda_handler(capture_response=False)
    def called(event: int, context: object) -> int:
        return event + 2

    @tracer.capture_method
    def method(x: int) -> int:
        return x * 2

    assert (bare(1, None), called(1, None), method(3)) == (2, 3, 6)
    tracer.put_annotation("k", "v")
    tracer.put_metadata("k", {"v": 1})


@pytest.mark.parametrize(
    ("env", "xray_loaded"),
    [({"POWERTOOLS_TRACE_DISABLED": "true"}, False), ({"LAMBDA_TASK_ROOT": str(ROOT)}, True)],
)
def test_xray_sdk_imported_only_when_tracing(env: dict[str, str], xray_loaded: bool) -> None:
    code = (
        "import sys; from trip_core.observability import tracer; "
        "print(type(tracer).__name__, 'aws_xray_sdk.core' in sys.modules)"
    )
    base = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    expected = "Tracer True" if xray_loaded else "DisabledTracer False"
    assert out.stdout.strip() == expected
