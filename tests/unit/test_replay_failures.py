"""`make replay-failures` without AWS: the on-failure record read field by field, the event it re-drives,
a range read whole or not, the partial batch response; and the template's side: an alarm on the
predict failures queue that the retrain function does not act on, every stack output the tool reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from infra.replay.template import Template
from infra.replay_failures.failure import FailedRange, MalformedFailure, failed_range
from infra.replay_failures.ports import StreamRecord
from infra.replay_failures.service import (
    TARGETS,
    MessageReport,
    Outcome,
    failing_sequence_numbers,
    lambda_event,
    missing,
)
from lambda_retrain.config import RetrainConfig
from lambda_retrain.triggers import alarm_trigger

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
RECORD = json.loads((EVENTS / "kinesis_failure_record.json").read_text())
RANGE = FailedRange(
    "arn:aws:kinesis:us-east-1:123456789012:stream/rides", "shardId-000000000000", "10", "14", 5
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return dict(cfn_yaml.load(str(ROOT / "template.yaml")))


def test_the_documented_on_failure_record_gives_its_range() -> None:
    failed = failed_range(json.dumps(RECORD))
    info = RECORD["KinesisBatchInfo"]
    assert (failed.stream_arn, failed.shard_id, failed.start, failed.end, failed.batch_size) == (
        info["streamArn"],
        info["shardId"],
        info["startSequenceNumber"],
        info["endSequenceNumber"],
        100,
    )
    assert failed.condition == "RetryAttemptsExhausted"
    assert failed.contains(info["startSequenceNumber"]) and not failed.contains(
        str(int(info["endSequenceNumber"]) + 1)
    )
    assert (
        info["startSequenceNumber"] in failed.describe()
        and info["approximateArrivalOfFirstRecord"] in failed.describe()
    )


def test_localstacks_record_without_a_request_context_is_read() -> None:
    """LocalStack leaves requestContext out when the function answered without an error payload."""
    record = {key: value for key, value in RECORD.items() if key != "requestContext"}
    assert failed_range(json.dumps(record)).condition == ""


def _with(**info: Any) -> str:
    return json.dumps({**RECORD, "KinesisBatchInfo": {**RECORD["KinesisBatchInfo"], **info}})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("{not json", "body"),
        (json.dumps({"requestContext": {}, "DDBStreamBatchInfo": {}}), "KinesisBatchInfo"),
        (json.dumps([1, 2]), "KinesisBatchInfo"),
        (_with(shardId=""), "KinesisBatchInfo.shardId"),
        (_with(streamArn=None), "KinesisBatchInfo.streamArn"),
        (_with(startSequenceNumber="0123"), "KinesisBatchInfo.startSequenceNumber"),
        (_with(endSequenceNumber="12e3"), "KinesisBatchInfo.endSequenceNumber"),
        (_with(startSequenceNumber="20", endSequenceNumber="19"), "KinesisBatchInfo.endSequenceNumber"),
        (_with(batchSize=True), "KinesisBatchInfo.batchSize"),
        (_with(batchSize=0), "KinesisBatchInfo.batchSize"),
        (_with(batchSize="100"), "KinesisBatchInfo.batchSize"),
    ],
)
def test_a_message_it_cannot_act_on_names_the_field(body: str, field: str) -> None:
    with pytest.raises(MalformedFailure) as refused:
        failed_range(body)
    assert refused.value.field == field and refused.value.reason


def test_the_re_driven_event_has_every_key_lambda_gives_a_record() -> None:
    golden = json.loads((EVENTS / "kinesis_batch.json").read_text())["Records"][0]
    record = StreamRecord("11", "256", b'{"ride_id": 256}', 1678113002.5)
    [event] = lambda_event(RANGE, [record])["Records"]
    assert set(golden) - set(event) == {"invokeIdentityArn"}  # no function reads it
    assert set(event["kinesis"]) == set(golden["kinesis"])
    assert event["eventID"] == "shardId-000000000000:11"  # the shard the prediction id and capture key name
    assert (event["eventSourceARN"], event["awsRegion"]) == (RANGE.stream_arn, "us-east-1")
    assert (event["kinesis"]["data"], event["kinesis"]["approximateArrivalTimestamp"]) == (
        "eyJyaWRlX2lkIjogMjU2fQ==",
        1678113002.5,
    )


def _records(*sequence_numbers: int) -> list[StreamRecord]:
    return [StreamRecord(str(s), "p", b"{}", 1.0) for s in sequence_numbers]


@pytest.mark.parametrize(
    ("sequence_numbers", "why"),
    [
        ((10, 11, 12, 13, 14), ""),
        ((), "none of its records"),
        ((12, 13, 14), "its first records are gone: the shard now begins at 12"),
        ((10, 11, 12), "read 3 records up to 12"),
    ],
)
def test_only_a_whole_range_is_re_driven(sequence_numbers: tuple[int, ...], why: str) -> None:
    gap = missing(RANGE, _records(*sequence_numbers))
    assert gap.startswith(why) and bool(gap) == bool(why)


@pytest.mark.parametrize(
    ("answer", "failing"),
    [
        (None, []),
        ({}, []),
        ({"batchItemFailures": []}, []),
        ({"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "14"}]}, ["12", "14"]),
    ],
)
def test_the_partial_batch_response_is_read_as_lambda_reads_it(answer: Any, failing: list[str]) -> None:
    assert failing_sequence_numbers(answer) == failing


@pytest.mark.parametrize(
    "answer", ["ok", {"batchItemFailures": [{"itemIdentifier": ""}]}, {"batchItemFailures": 3}]
)
def test_an_answer_that_is_no_partial_batch_response_is_an_error(answer: Any) -> None:
    with pytest.raises(ValueError, match="not a partial batch response"):
        failing_sequence_numbers(answer)


def test_the_predict_failures_queue_has_a_depth_alarm_like_the_actuals_one(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    alarm, actuals = (
        resources[name]["Properties"] for name in ("PredictFailuresAlarm", "ActualsFailuresAlarm")
    )
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["PredictFailuresQueue", "QueueName"]}}
    ]
    same = ("Namespace", "MetricName", "Statistic", "Threshold", "ComparisonOperator", "AlarmActions")
    assert {key: alarm[key] for key in same} == {key: actuals[key] for key in same}
    assert (alarm["MetricName"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible",
        1,
        "GreaterThanOrEqualToThreshold",
    )
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_retrain_function_does_not_act_on_the_failures_alarm() -> None:
    """It is subscribed to the alarm topic: a predict-failures notification must not start a retrain."""
    stack = Template.load(refs={"ModelsBucket": "models", "CaptureBucket": "capture"})
    config = RetrainConfig.from_env(stack.function_environment("RetrainFunction"))
    name = stack.resolve({"Fn::Sub": "trip-duration-${Stage}-predict-failures"})
    assert config.retrain_alarms and name not in config.retrain_alarms + config.rollback_alarms
    notification = {"Sns": {"Message": json.dumps({"AlarmName": name, "NewStateValue": "ALARM"})}}
    assert alarm_trigger(notification, config) is None


def test_every_stack_output_the_tool_reads_exists(template: dict[str, Any]) -> None:
    outputs = set(template["Outputs"])
    for target in TARGETS.values():
        assert {
            target.queue_output,
            target.function_output,
            target.stream_arn_output,
            "RejectedBucketName",
        } <= outputs
        assert target.alias_output is None or target.alias_output in outputs
    assert "PredictFailuresAlarmName" in outputs


def test_the_replay_invokes_the_release_alias_where_the_stack_has_one() -> None:
    predict = TARGETS["predict"]
    name = {"PredictFunctionName": "td-predict"}
    assert predict.function(name) == "td-predict"  # the LocalStack stack: no alias
    alias = "arn:aws:lambda:us-east-1:1:function:td-predict:release"
    assert predict.function({**name, "PredictFunctionAliasArn": alias}) == alias


def test_a_lost_range_is_reported_loudly() -> None:
    line = MessageReport(Outcome.LOST, RANGE, 3, detail=missing(RANGE, _records(12, 13, 14))).line()
    assert line.startswith("LOST: shardId-000000000000 sequence 10 .. 14") and "message kept" in line
