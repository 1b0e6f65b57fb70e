"""The one place that knows where LocalStack is: scripts and tests build their AWS clients here.

    from infra.aws import client
    s3 = client("s3")

Endpoint: LOCALSTACK_ENDPOINT (default http://127.0.0.1:4566); region us-east-1 unless
AWS_DEFAULT_REGION says otherwise; LocalStack's dummy credentials.
"""

from __future__ import annotations

import os
from typing import Any

import boto3
from botocore.config import Config

ENDPOINT = os.environ.get("LOCALSTACK_ENDPOINT", "http://127.0.0.1:4566")
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
ACCOUNT_ID = "000000000000"  # LocalStack's default account
STACK_NAME = os.environ.get("STACK_NAME", "trip-duration-local")


def client(service: str, config: Config | None = None, **kwargs: Any) -> Any:
    """A boto3 client for `service` on LocalStack; `config` overrides the defaults (e.g. timeouts)."""
    defaults = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60)
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=defaults.merge(config) if config else defaults,
        **kwargs,
    )


def env() -> dict[str, str]:
    """Environment for a subprocess (AWS CLI, SAM, MLflow, the SDK) that should talk to LocalStack."""
    return {
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }


def stack_outputs(stack_name: str = STACK_NAME, cloudformation: Any | None = None) -> dict[str, str]:
    """Outputs of the deployed stack, by OutputKey (LocalStack's, unless a `cloudformation` client of
    another endpoint is given)."""
    stacks = (cloudformation or client("cloudformation")).describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
