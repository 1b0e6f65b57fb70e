"""Cold start: config from the environment, botocore clients and adapters, the model — or a clear failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime
from secrets import token_bytes
from typing import Any

from lambda_predict.adapters import KinesisPredictionSink, S3BlobStore, S3ModelSource, read_secret
from lambda_predict.config import PredictConfig
from lambda_predict.model_provider import ModelProvider
from lambda_predict.prediction_ids import MIN_KEY_BYTES, PredictionIds
from lambda_predict.service import PredictService
from trip_core.bundle import load_bundle


def build_service(
    config: PredictConfig,
    s3: Any,
    kinesis: Any,
    secrets: Any,
    now: Callable[[], datetime] | None = None,
    keyed: bool = True,
) -> PredictService:
    """Wire the service with boto3 clients, read the prediction id key and load the model (raises
    ModelLoadError); `now` is the clock of its captures (the wall clock unless a replay brings its
    simulated one). Not `keyed`: the one-ride function, whose ids are random, is given no key."""
    models = ModelProvider(
        S3ModelSource(s3, config.models_bucket),
        config.pointer_key,
        load_bundle,
        ttl_seconds=config.pointer_ttl_seconds,
        pinned=config.pinned,
    )
    models.load_initial()
    return PredictService(
        models,
        KinesisPredictionSink(kinesis, config.predictions_stream),
        S3BlobStore(s3, config.capture_bucket, "application/json", content_encoding="gzip"),
        S3BlobStore(s3, config.rejected_bucket, "application/json"),
        PredictionIds(
            read_secret(secrets, config.prediction_id_secret) if keyed else token_bytes(MIN_KEY_BYTES)
        ),
        now=now,
        max_pickup_age=config.max_pickup_age,
    )


def aws_clients() -> tuple[Any, Any, Any]:
    """S3, Kinesis and Secrets Manager clients from one botocore session (boto3's resource layer is not
    needed: skipping its import and its default session saves ~30 ms of cold start)."""
    import botocore.session

    session = botocore.session.get_session()
    return (
        session.create_client("s3"),
        session.create_client("kinesis"),
        session.create_client("secretsmanager"),
    )


def service_from_env(env: Mapping[str, str] | None = None, keyed: bool = True) -> PredictService:
    config = PredictConfig.from_env(os.environ if env is None else env)
    return build_service(config, *aws_clients(), keyed=keyed)
