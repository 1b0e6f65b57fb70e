"""Fixtures shared by every test level."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from trip_core.observability import logger


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    """What the Powertools logger writes (JSON lines), captured with its own formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(handler)
    try:
        yield stream
    finally:
        std_logger.removeHandler(handler)
