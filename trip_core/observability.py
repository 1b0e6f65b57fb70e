"""One Powertools setup (Logger, Metrics, Tracer) shared by both Lambdas.

Service name and metrics namespace come from POWERTOOLS_SERVICE_NAME and
POWERTOOLS_METRICS_NAMESPACE (set in template.yaml); the defaults serve tests and local runs.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TripDuration")

logger = Logger()
metrics = Metrics(namespace=METRICS_NAMESPACE)
tracer = Tracer()
