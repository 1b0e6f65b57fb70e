"""Issue 14's second hostile review (of 68b8400): each test was a confirmed defect, now held."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from lambda_predict.handler import handle_batch, handle_ride
from lambda_predict.model_provider import ModelProvider
from tests.doubles.predict import broken_bundle
from tests.unit.test_predict_service import event, failures, good, kinesis_record, make_world
from trip_core.bundle import BundleError, load_bundle
from trip_core.smoke import smoke_test

ROOT = Path(__file__).parents[2]


class _CfnLoader(yaml.SafeLoader):
    pass


_CfnLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _template() -> dict[str, Any]:
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=_CfnLoader)


# --------------------------------------------------------------------------------------- build (high)


def test_sam_build_has_a_make_rule_for_every_makefile_function() -> None:
    """SAM builds every `BuildMethod: makefile` function on its own (makefile builds are never
    deduplicated) with `make build-<LogicalId>` in its CodeUri: PredictRideFunction had no rule."""
    missing = []
    for name, resource in _template()["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        if (resource.get("Metadata") or {}).get("BuildMethod") != "makefile":
            continue
        code = ROOT / resource["Properties"]["CodeUri"]
        done = subprocess.run(
            ["make", "-n", "-C", str(code), f"build-{name}", "ARTIFACTS_DIR=/nonexistent"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            missing.append((name, done.stderr.strip().splitlines()[-1:]))
    assert missing == []


# --------------------------------------------------------------------- malformed pointer (medium)


def test_hot_swap_to_a_pointer_with_a_non_text_version_keeps_the_loaded_model() -> None:
    """serving() caught only ModelLoadError; a pointer whose version is a JSON array made _fetch raise
    TypeError: every batch a function error. Pointer fields are type-checked, and any refresh failure
    keeps the loaded model (counted in ModelReadFailed)."""
    world = make_world()
    clock = [0.0]
    provider = ModelProvider(
        world.models, "serving/live.json", load_bundle, ttl_seconds=60, clock=lambda: clock[0]
    )
    provider.load_initial()
    world.service.models = provider
    assert failures(handle_batch(event(kinesis_record(1, good(1))), None, world.service)) == []
    document = json.loads(world.models.objects["serving/live.json"])
    world.models.objects["serving/live.json"] = json.dumps({**document, "version": ["4"]}).encode()
    clock[0] = 120.0
    response = handle_batch(event(kinesis_record(2, good(2))), None, world.service)
    assert failures(response) == []


# ------------------------------------------------------------------- bundle walk time (medium)


class _TooSlow(BaseException):  # not Exception: smoke_test catches those
    pass


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def _raise(*_: object) -> None:
        raise _TooSlow(f"over {seconds} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_cyclic_bundle_is_refused_or_smoke_tested_quickly() -> None:
    """Depth was bounded by the node count only: a 60 KB bundle whose two reachable nodes point at each
    other, padded to 2M nodes with depth 2M, loaded and its smoke test walked 2M steps (~24 s), past
    Lambda's init limit. A bundle that is not a forest, or deeper than MAX_DEPTH, is refused."""
    n = 2_000_000
    left = np.zeros(n, dtype=np.int32)
    left[0] = 1
    bundle = broken_bundle(
        feature=np.zeros(n, dtype=np.int32),
        threshold=np.zeros(n),
        missing_left=np.zeros(n, dtype=bool),
        left=left,
        right=left.copy(),
        value=np.zeros(n),
        roots=np.array([0], dtype=np.int32),
        depth=np.array(n, dtype=np.int64),
    )
    assert len(bundle) < 100_000
    with _time_limit(3.0):
        try:
            smoke_test(load_bundle(bundle))
        except BundleError:
            return  # refused, in time: what should happen


# ------------------------------------------------------- silent loss on the one-ride function (medium)


def test_a_one_ride_capture_that_fails_raises_an_alarm(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """handle_ride answered the caller when its capture write failed and counted it only in the
    invocation's `Errors` (dimensions service, model_version), which no alarm watches: an S3 outage lost
    every direct ride's capture silently. It counts CaptureFailed under the service alone now."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "trip-duration-predict")  # as template.yaml sets it
    world = make_world()
    world.captures.down = True
    capsys.readouterr()
    answer = handle_ride(good("direct-1"), None, world.service)
    assert "error" not in answer and world.captures.objects == {}
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [document] = [d for d in emitted if "CaptureFailed" in d]
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert document["service"] == "trip-duration-predict"
    [alarm] = [
        r["Properties"]
        for r in _template()["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == "CaptureFailed"
    ]
    assert [(d["Name"], d["Value"]) for d in alarm["Dimensions"]] == [("service", "trip-duration-predict")]


# --------------------------------------------------------------- int sequence numbers (low)


def test_an_integer_sequence_number_is_refused_not_dropped() -> None:
    """batch_problem accepted an int sequenceNumber; the retry set is keyed by text, so a record whose
    delivery failed was dropped from batchItemFailures silently. Kinesis sends text: anything else is
    refused whole, naming the field."""
    world = make_world()
    record = kinesis_record(7, good(7))
    record["kinesis"]["sequenceNumber"] = 7
    response = handle_batch(event(record), None, world.service)
    assert response["reasons"] == [
        {"field": "Records[0].kinesis.sequenceNumber", "reason": "missing or not a text of digits"}
    ]
    assert world.stream.records == []


# -------------------------------------------------- JSON parsers left with json.loads (low)


def test_replay_failures_reads_a_deeply_nested_body_as_malformed() -> None:
    """A failures-queue message nested deeply raised RecursionError out of replay_queue."""
    from infra.replay_failures.failure import MalformedFailure, failed_range

    with pytest.raises(MalformedFailure):
        failed_range("[" * 100_000)


def test_a_reference_profile_too_deep_or_infinite_is_a_value_error() -> None:
    """RecursionError (and int(Infinity): OverflowError) escaped read_profile, failing every monitor run
    instead of marking the version not analysed."""
    from trip_core.profile import DEFAULT_SLICING, PROFILE_SCHEMA, SLICINGS, read_profile

    with pytest.raises(ValueError):
        read_profile(b"[" * 100_000)
    endless = {"schema": PROFILE_SCHEMA, "slicing": DEFAULT_SLICING, "columns": {}, "n_rows": float("inf")}
    with pytest.raises(ValueError, match="malformed reference profile"):
        read_profile({**endless, "n_slices": SLICINGS[DEFAULT_SLICING][0]})
