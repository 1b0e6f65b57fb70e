"""The faults of `make chaos`, and the predict function's SDK pointed at the relays for the run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from infra.aws import ENDPOINT, client
from infra.chaos.relay import Relay
from infra.harness.poll import poll
from infra.harness.stack import Stack
from trip_core.contracts import LIVE_POINTER_KEY

RELAYED = {"s3": "AWS_ENDPOINT_URL_S3", "kinesis": "AWS_ENDPOINT_URL_KINESIS"}


@dataclass(frozen=True)
class Fault:
    name: str
    alarms: tuple[str, ...]  # stack outputs naming the alarms that must show it
    take_away: Callable[[], None]
    restore: Callable[[], None]


class PointerOutage:
    """serving/live.json deleted (what a wrong `aws s3 rm` or a bucket policy change does), put back."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.body: bytes | None = None

    def take_away(self) -> None:
        self.body = self.stack.models.get(LIVE_POINTER_KEY)
        assert self.body is not None, "no live pointer to take away"
        client("s3").delete_object(Bucket=self.stack["ModelsBucketName"], Key=LIVE_POINTER_KEY)

    def restore(self) -> None:
        assert self.body is not None
        client("s3").put_object(Bucket=self.stack["ModelsBucketName"], Key=LIVE_POINTER_KEY, Body=self.body)


def faults(stack: Stack, relays: dict[str, Relay]) -> list[Fault]:
    pointer = PointerOutage(stack)
    failures = ("PredictFailuresAlarmName",)
    return [
        Fault("model pointer", ("ModelReadFailedAlarmName",), pointer.take_away, pointer.restore),
        Fault("S3", failures, relays["s3"].cut, relays["s3"].restore),
        Fault("predictions stream", failures, relays["kinesis"].cut, relays["kinesis"].restore),
    ]


def _set_environment(lam: Any, function: str, variables: dict[str, str]) -> None:
    lam.update_function_configuration(FunctionName=function, Environment={"Variables": variables})
    poll(
        lambda: lam.get_function_configuration(FunctionName=function).get("LastUpdateStatus") == "Successful",
        timeout=120,
        what=f"{function} updated",
    )


@contextmanager
def relayed(stack: Stack) -> Iterator[dict[str, Relay]]:
    """The predict function's S3 and Kinesis calls through relays for the block; its own environment
    back afterwards (also when the block fails)."""
    lam, function = client("lambda"), stack["PredictFunctionName"]
    found = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    own = {k: v for k, v in found.items() if k not in RELAYED.values()}  # a run that died left them
    target = urlsplit(ENDPOINT)
    relays = {service: Relay((target.hostname or "127.0.0.1", target.port or 4566)) for service in RELAYED}
    _set_environment(lam, function, own | {RELAYED[s]: r.url for s, r in relays.items()})
    try:
        yield relays
    finally:
        for relay in relays.values():
            relay.restore()
        _set_environment(lam, function, own)
        for relay in relays.values():
            relay.close()
