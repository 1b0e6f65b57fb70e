"""One Powertools setup (Logger, Metrics, Tracer) shared by both Lambdas.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set in template.yaml); the defaults serve tests and local runs.

Tracing: Powertools' `Tracer()` imports and configures the X-Ray SDK even when tracing is off
(~0.2 s of cold start). With tracing off by Powertools' own rule (POWERTOOLS_TRACE_DISABLED, or not
running in Lambda, or SAM local) `tracer` is a no-op stand-in with the same decorators; in Lambda
it is the real Tracer, patching botocore only (the functions' one traced dependency; `patch_all`
would also import and patch every other library X-Ray knows).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.shared import constants
from aws_lambda_powertools.shared.functions import resolve_truthy_env_var_choice

from trip_core.contracts import METRICS_NAMESPACE

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
TRACED_MODULES = ("botocore",)


def tracing_enabled(env: dict[str, str] | None = None) -> bool:
    """Powertools' rule (Tracer._is_tracer_disabled): on in Lambda unless POWERTOOLS_TRACE_DISABLED."""
    env = dict(os.environ) if env is None else env
    if resolve_truthy_env_var_choice(env=env.get(constants.TRACER_DISABLED_ENV, "false")):
        return False
    in_lambda = bool(env.get(constants.LAMBDA_TASK_ROOT_ENV))
    return in_lambda and not env.get(constants.SAM_LOCAL_ENV) and not env.get(constants.CHALICE_LOCAL_ENV)


class DisabledTracer:
    """What a disabled Powertools Tracer does (nothing), without importing the X-Ray SDK."""

    disabled = True

    def capture_lambda_handler(
        self,
        lambda_handler: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        return lambda_handler if lambda_handler is not None else _identity

    def capture_method(
        self,
        method: Callable[..., Any] | None = None,
        capture_response: bool | None = None,
        capture_error: bool | None = None,
    ) -> Any:
        return method if method is not None else _identity

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str | None = None) -> None:
        return None

    def patch(self, modules: Any = None) -> None:
        return None


def _identity(function: Callable[..., Any]) -> Callable[..., Any]:
    return function


def _make_tracer() -> Tracer:
    if tracing_enabled():
        return Tracer(patch_modules=TRACED_MODULES)
    return cast(Tracer, DisabledTracer())


logger = Logger()
metrics = Metrics(namespace=NAMESPACE)
tracer = _make_tracer()


def count_now(name: str) -> None:
    """`name` = 1 under the service dimension alone (what its alarm watches), written at once rather than
    with the invocation's metrics: a cold start that fails has no invocation to flush them."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE):
        pass
