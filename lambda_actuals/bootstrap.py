"""Cold start: config from the environment, the S3 client and adapters — or a clear failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from lambda_actuals.adapters import S3Bucket
from lambda_actuals.config import ActualsConfig
from lambda_actuals.service import ActualsService


def build_service(
    config: ActualsConfig, s3: Any, now: Callable[[], datetime] | None = None
) -> ActualsService:
    return ActualsService(
        S3Bucket(s3, config.capture_bucket, "application/x-ndjson"),
        S3Bucket(s3, config.rejected_bucket, "application/json"),
        now=now,
    )


def service_from_env(env: Mapping[str, str] | None = None) -> ActualsService:
    import botocore.session

    config = ActualsConfig.from_env(os.environ if env is None else env)
    return build_service(config, botocore.session.get_session().create_client("s3"))
