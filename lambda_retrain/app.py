"""Retrain Lambda: thin handler over lambda_retrain.loop.handle (SNS alarm notifications, or a direct invoke).

Direct: {"action": "retrain" | "rollback_check", "reason": "...", "skip_cooldown": false,
         "force_promote": false, "params": {"max_iter": 30}}
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lambda_retrain.aws import S3Store
from lambda_retrain.config import RetrainConfig
from lambda_retrain.loop import handle
from lambda_retrain.mlflow_rest import MlflowRest
from lambda_retrain.ports import Ports
from trip_core.observability import logger

CONFIG = RetrainConfig.from_env()  # fails the cold start when misconfigured
PORTS = Ports(
    models=S3Store(CONFIG.models_bucket),
    capture=S3Store(CONFIG.capture_bucket),
    tracker=None
    if CONFIG.mlflow_tracking_uri is None
    else MlflowRest(CONFIG.mlflow_tracking_uri, CONFIG.mlflow_experiment),
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    actor = f"lambda:{getattr(context, 'function_name', 'retrain')}/{getattr(context, 'aws_request_id', '-')}"
    summary = handle(event, PORTS, CONFIG, datetime.now(UTC), actor)
    logger.info("retrain run done", extra={"decisions": [d.get("kind") for d in summary["decisions"]]})
    return summary
