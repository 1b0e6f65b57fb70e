"""`python -m infra.chaos` (make chaos): see the package docstring."""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import infra.chaos
from infra.aws import STACK_NAME, client
from infra.chaos.faults import Fault, faults, relayed
from infra.demo import VALID_MONTH, train_demo_model
from infra.harness.accounting import Traffic
from infra.harness.poll import wait_quietly
from infra.harness.scenario import CONSOLE, OUT, SAY, start_services, warm_up
from infra.harness.stack import Stack, now_s
from infra.harness.streams import PredictionsConsumer, stream_rides
from infra.replay_failures.aws import stack_ports
from infra.replay_failures.service import TARGETS, replay_queue

WATCHED = (
    "PredictFailuresAlarmName",
    "ModelReadFailedAlarmName",
    "PredictErrorsAlarmName",
    "BundleRefusedAlarmName",
    "RidesIteratorAgeAlarmName",
)
TABLE_HEADER = "| fault | s | rides in | predicted | rejected | replayed | lost | captured twice | alarms |"
LEAD_S, TAIL_S = 10.0, 10.0  # rides before the fault and after it is restored
ALARM_WAIT_S = 300.0  # a 60 s alarm on a metric LocalStack publishes every minute: a few periods
CLEAR_WAIT_S = 480.0  # ModelReadFailedAlarm looks back 5 periods


class AlarmWatcher:
    """Samples the watched alarms every few seconds in a thread: which went to ALARM (from another
    state) while it ran, and how long after `mark()` each did."""

    def __init__(self, stack: Stack) -> None:
        self.names = {stack[o]: o for o in WATCHED}
        self.cloudwatch = client("cloudwatch")
        self.state: dict[str, str] = self._states()
        self.raised: dict[str, float] = {}  # stack output -> seconds after the mark
        self.marked = time.monotonic()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _states(self) -> dict[str, str]:
        found = self.cloudwatch.describe_alarms(AlarmNames=list(self.names))["MetricAlarms"]
        return {self.names[a["AlarmName"]]: a["StateValue"] for a in found}

    def start(self) -> AlarmWatcher:
        self.thread.start()
        return self

    def mark(self) -> None:
        self.marked = time.monotonic()

    def _loop(self) -> None:
        while not self.stop_event.wait(3):
            for output, value in self._states().items():
                if value == "ALARM" and self.state.get(output) != "ALARM":
                    self.raised.setdefault(output, round(time.monotonic() - self.marked))
                self.state[output] = value

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=10)


@dataclass
class FaultResult:
    fault: str
    seconds: float
    rides_in: int
    predicted: int
    rejected: int
    replayed: int
    lost: int
    captured_twice: int
    wrongly_rejected: int
    alarms_raised: dict[str, float] = field(default_factory=dict)
    expected_alarms: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.captured_twice == 0
            and self.wrongly_rejected == 0
            and all(a in self.alarms_raised for a in self.expected_alarms)
        )

    def row(self) -> str:
        alarms = ", ".join(f"{a.removesuffix('AlarmName')} +{s:.0f} s" for a, s in self.alarms_raised.items())
        return (
            f"| {self.fault} | {self.seconds:.0f} | {self.rides_in} | {self.predicted} | {self.rejected} | "
            f"{self.replayed} | {self.lost} | {self.captured_twice} | {alarms or 'none'} |"
        )


def wait_clear(stack: Stack, fault: Fault) -> None:
    """Its alarms out of ALARM first, so that the fault's own ALARM is a transition that can be seen."""
    cloudwatch = client("cloudwatch")

    def clear() -> bool:
        alarms = cloudwatch.describe_alarms(AlarmNames=[stack[o] for o in fault.alarms])["MetricAlarms"]
        return all(a["StateValue"] != "ALARM" for a in alarms)

    if not clear():
        SAY(f"   waiting for {', '.join(fault.alarms)} to leave ALARM (up to {CLEAR_WAIT_S:.0f} s)")
        wait_quietly(clear, CLEAR_WAIT_S, interval=5)


def replay(stack: Stack) -> int:
    """make replay-failures, in process: the records it re-drove."""
    ports, stream_arn = stack_ports(TARGETS["predict"], STACK_NAME)
    reports = replay_queue(ports, TARGETS["predict"], stream_arn)
    for report in reports:
        SAY("   replay: " + report.line())
    return sum(r.read for r in reports)


def run_fault(stack: Stack, fault: Fault, seconds: float, rate: float, seed: int) -> FaultResult:
    wait_clear(stack, fault)
    CONSOLE.step(f"fault: {fault.name} taken away for {seconds:.0f} s")
    count = int(rate * (LEAD_S + seconds + TAIL_S))
    traffic = Traffic.real(VALID_MONTH, count, 0.01, seed, id_base=int(time.time()) * 100_000)
    consumer = PredictionsConsumer(stack["PredictionsStreamName"]).start()
    watcher = AlarmWatcher(stack).start()
    start = now_s()
    sent_at: dict[Any, float] = {}
    streamer = threading.Thread(
        target=lambda: sent_at.update(stream_rides(traffic.records, stack["RidesStreamName"], rate)),
        daemon=True,
    )
    streamer.start()
    time.sleep(LEAD_S)
    watcher.mark()
    fault.take_away()
    time.sleep(seconds)
    fault.restore()
    SAY(f"   restored; {len(consumer.received)} predictions out so far")
    streamer.join()
    wait_quietly(lambda: all(a in watcher.raised for a in fault.alarms), ALARM_WAIT_S, interval=2)
    replayed = replay(stack)
    # a batch still being retried when the fault ended reaches the queue late: a second pass finds it
    wait_quietly(lambda: traffic.good_ids <= consumer.received.keys(), 60)
    replayed += replay(stack)
    rejections = traffic.wait_settled(stack, consumer, start, 120)
    watcher.stop()
    tally = traffic.tally(consumer, sent_at, rejections)
    counts = stack.capture_counts_since(start)
    return FaultResult(
        fault.name,
        seconds,
        tally.sent,
        tally.predicted,
        tally.rejected,
        replayed,
        tally.lost,
        sum(n - 1 for ride, n in counts.items() if ride in traffic.good_ids and n > 1),
        tally.wrongly_rejected,
        watcher.raised,
        fault.alarms,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make chaos", description=(infra.chaos.__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--fault-seconds", type=float, default=120, help="each outage's length")
    parser.add_argument("--rate", type=float, default=20, help="rides/s offered")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    stack, _ = start_services()
    if not stack.has_live():
        train_demo_model(stack)
    results = []
    with relayed(stack) as relays:
        warm_up(stack)
        for i, fault in enumerate(faults(stack, relays)):
            results.append(run_fault(stack, fault, args.fault_seconds, args.rate, args.seed + i))
            SAY(json.dumps(asdict(results[-1])))
    separator = "|" + "---|" * (TABLE_HEADER.count("|") - 1)
    table = "\n".join([TABLE_HEADER, separator, *(r.row() for r in results)])
    SAY("\n" + table)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "chaos.md").write_text(table + "\n")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
