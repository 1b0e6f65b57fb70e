"""Review of issue 14 (branch i14-review), point 5 on moto with IAM enforced: the predict role's managed
AWSLambdaKinesisExecutionRole (SAM attaches it for the Kinesis event, Resource "*") lets the predict
function read every stream of the account, the actuals (labels) and its own predictions included. The
actuals function's explicit role shows the intended scope (ReadTheActualsStream on its stream only);
Stack.unmatched checks inline statements only, so the managed policy's excess is never seen."""

from __future__ import annotations

import pytest

from tests.integration.test_least_privilege import SHARD, Stack, stack  # noqa: F401 (fixture)


@pytest.mark.parametrize("stream", ["ActualsStream", "PredictionsStream"])
def test_the_predict_role_cannot_read_streams_other_than_the_rides(stack: Stack, stream: str) -> None:  # noqa: F811
    answer = stack.attempt(
        "PredictFunction",
        "kinesis",
        "get_shard_iterator",
        StreamName=stack.name(stream),
        ShardId=SHARD,
        ShardIteratorType="TRIM_HORIZON",
    )
    assert answer == "denied", f"the predict role may read {stream}: {answer}"
