"""The one wait of the harness: call until truthy, with a deadline (no bare sleeps in scenarios)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable


class PollTimeout(AssertionError):
    """An AssertionError, so a test that waited in vain fails (not errors) with what it waited for."""


def poll[T](
    fn: Callable[[], T | None], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> T:
    """Call fn until it returns something truthy; PollTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise PollTimeout(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r:.300})")


def wait_quietly(fn: Callable[[], object], timeout: float, interval: float = 0.5) -> None:
    """poll, but a timeout is no error: for scenarios that then report what came out and what did not."""
    with contextlib.suppress(PollTimeout):
        poll(fn, timeout=timeout, interval=interval)
