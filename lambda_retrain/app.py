"""Retrain Lambda: thin handler over lambda_retrain.loop.handle (SNS alarm notifications, or a direct invoke).

Direct: {"action": "retrain" | "rollback_check", "reason": "...", "skip_cooldown": false,
         "force_promote": false (only with ALLOW_FORCE_PROMOTE), "params": {"max_iter": 30}}
     or {"action": "approve" | "reject" | "rollback", "version": "12", "reason": "..."}
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from lambda_retrain.aws import CloudWatchAlarms, S3Store, SnsNotifier, secret_json
from lambda_retrain.config import RetrainConfig
from lambda_retrain.loop import handle
from lambda_retrain.mlflow_rest import MlflowRest, authorization, env_credentials
from lambda_retrain.ports import Ports
from trip_core.observability import logger


def tracker(config: RetrainConfig) -> MlflowRest | None:
    """MLflow with its credentials: the stack's secret (read once, here), else the mlflow env names."""
    if config.mlflow_tracking_uri is None:
        return None
    arn = config.mlflow_auth_secret_arn
    credentials = secret_json(arn) if arn else env_credentials(os.environ)
    return MlflowRest(config.mlflow_tracking_uri, config.mlflow_experiment, authorization(credentials))


CONFIG = RetrainConfig.from_env()  # fails the cold start when misconfigured
PORTS = Ports(
    models=S3Store(CONFIG.models_bucket),
    capture=S3Store(CONFIG.capture_bucket),
    alarms=CloudWatchAlarms(),
    tracker=tracker(CONFIG),
    notifier=None if CONFIG.rollout_topic_arn is None else SnsNotifier(CONFIG.rollout_topic_arn),
)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    actor = f"lambda:{getattr(context, 'function_name', 'retrain')}/{getattr(context, 'aws_request_id', '-')}"
    summary = handle(event, PORTS, CONFIG, datetime.now(UTC), actor)
    logger.info("retrain run done", extra={"decisions": [d.get("kind") for d in summary["decisions"]]})
    return summary
