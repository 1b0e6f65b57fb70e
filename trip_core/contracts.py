"""The facts every part of the service shares, defined once: the S3 layout, time formats, the target's and
inputs' bounds, which input feeds which feature, model and alias names. Training, the three functions,
the harness and the tests import them from here; docs/architecture.md describes the same layout.

Standard library only: the prediction function imports it at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

# ------------------------------------------------------------------------------------ names
DEFAULT_MODEL_NAME = "trip-duration"
DEFAULT_EXPERIMENT = "trip-duration"
PRODUCTION_ALIAS = "production"
METRICS_NAMESPACE = "TripDuration"

# ------------------------------------------------------------------------------------ bounds
# The target: training keeps rides of this length, the monitor and the loop judge on the same domain.
MIN_DURATION_MINUTES = 1.0
MAX_DURATION_MINUTES = 60.0
# The app's distance estimate: serving rejects rides outside, training drops them, so the model never
# sees inputs serving would refuse.
MIN_TRIP_DISTANCE_MILES = 0.0
MAX_TRIP_DISTANCE_MILES = 100.0
# A registered bundle must reproduce the fitted model to within this, on every validation row.
PARITY_TOLERANCE_MINUTES = 1e-3

# A plausible pickup lies in [arrival - the stack's maximum pickup age (DEFAULT_MAX_PICKUP_AGE, below),
# arrival + MAX_PICKUP_LEAD]: its record's Kinesis arrival time, or the invoke time, on the New York wall
# clock; outside it the ride is rejected with its reason (docs/architecture.md, "Input ride"). Ahead: a
# client clock off by hours is tolerated; a pickup days ahead would be captured in a partition no window
# reads yet (and one past year 9999 in UTC cannot be named at all).
MAX_PICKUP_LEAD = timedelta(days=1)
# A record's Kinesis arrival time after now + MAX_ARRIVAL_SKEW was written by hand, not by a stream: its
# pickup is judged against now instead (an earlier one may be a replay of old records, and is kept).
MAX_ARRIVAL_SKEW = timedelta(minutes=5)

# No ride takes a day. An actual duration a client reports outside (0, MAX_RIDE_MINUTES] (or not finite)
# is impossible: the actuals function and the monitor reject it with its reason and never average it in
# (docs/architecture.md, "Actuals"). A model's answer outside [0, MAX_RIDE_MINUTES] is broken for that
# ride, which is rejected with the value (a model may rightly answer a little outside the trained range).
MAX_RIDE_MINUTES = 24 * 60.0
# Every answer given is the model's rounded to this many decimals: the predictions stream's, the capture's and
# batch scoring's (training.score) are the same number.
PREDICTION_DECIMALS = 2

# ------------------------------------------------------------------------------------ event time
# The monitor's windows are defined by pickup time (event time), so a replay at any speed, a backfill
# and live traffic give the same verdicts. A window [end - MONITOR_WINDOW, end) is evaluated every
# MONITOR_STEP, once LATE_ALLOWANCE has passed after its end: captures are partitioned by pickup hour,
# actuals by the hour they were reported, and actuals reported up to end + LATE_ALLOWANCE count.
MONITOR_WINDOW = timedelta(hours=24)
MONITOR_STEP = timedelta(hours=1)
LATE_ALLOWANCE = timedelta(hours=1)
# CloudWatch refuses datapoints older than this: a backfill of an older window publishes no metrics, and
# the schedule catches up only the windows it could still publish (older ones are reported as skipped).
METRIC_MAX_AGE = timedelta(days=14)
# Behind, by default (a stack sets its own with MAX_PICKUP_AGE_DAYS): rides a client queued while offline
# and the scenarios' real rides, moved by whole weeks to end when they are sent, are within it; a ride
# picked up longer ago could count in no alarm (its window's datapoints are refused), and a pickup in year
# 1 or 1970 is a broken clock, not a ride.
DEFAULT_MAX_PICKUP_AGE = METRIC_MAX_AGE
# The most a stack may set (a backfill of historical months as they were): year 1 stays out of reach.
MAX_PICKUP_AGE_LIMIT = timedelta(days=3653)
# An actual reported for a window names a known ride when that ride was captured with a pickup in
# [window start - this, window end + LATE_ALLOWANCE): it was picked up at most MAX_RIDE_MINUTES before.
ACTUALS_RIDE_LOOKBACK = timedelta(minutes=MAX_RIDE_MINUTES)
# The retrain loop gathers its labelled rides backwards from now in pickup-time ranges; the first (and
# shortest) is this long: every range also reads the captures of ACTUALS_RIDE_LOOKBACK before it.
RETRAIN_FIRST_RANGE = timedelta(hours=24)

# ------------------------------------------------------------------------------------ inputs -> features
# Which input of a ride each monitored feature is computed from: a ride whose input is invalid has
# every feature it feeds marked missing, not guessed.
FEATURE_INPUTS: dict[str, str] = {
    "PULocationID": "PULocationID",
    "DOLocationID": "DOLocationID",
    "trip_distance": "trip_distance",
}


# ------------------------------------------------------------------------------------ input ride
# The TLC files' pickup column (green taxis): the ride's `pickup_datetime` on the wire.
TLC_PICKUP_COLUMN = "lpep_pickup_datetime"


@dataclass(frozen=True, slots=True)
class RideRequest:
    """One ride as a client sends it (docs/architecture.md, "Input ride"): build rides here, not by hand.

    `pickup_datetime` is New York local time (naive, as in the TLC files); None leaves it out of the
    payload, and serving then uses the arrival or invoke time.
    """

    ride_id: int | str
    pu_location_id: int
    do_location_id: int
    trip_distance: float
    pickup_datetime: datetime | None = None

    def to_payload(self) -> dict[str, Any]:
        """The wire JSON object: `{"ride": {...}, "ride_id": ...}`."""
        ride: dict[str, Any] = {
            "PULocationID": self.pu_location_id,
            "DOLocationID": self.do_location_id,
            "trip_distance": self.trip_distance,
        }
        if self.pickup_datetime is not None:
            ride["pickup_datetime"] = self.pickup_datetime.isoformat(timespec="seconds")
        return {"ride": ride, "ride_id": self.ride_id}

    @classmethod
    def from_row(cls, ride_id: int | str, row: Any) -> RideRequest:
        """From a TLC row with attribute access (`DataFrame.itertuples()`, or a pandas Series)."""
        return cls(
            ride_id=ride_id,
            pu_location_id=int(row.PULocationID),
            do_location_id=int(row.DOLocationID),
            trip_distance=float(row.trip_distance),
            pickup_datetime=getattr(row, TLC_PICKUP_COLUMN),
        )


# ------------------------------------------------------------------------------------ prediction ids
# Every prediction carries an id the service issued (docs/architecture.md, "Prediction ids"): the UTC
# pickup hour of its ride, a dash, PREDICTION_ID_TOKEN_HEX hex digits only the service can compute (a
# keyed hash of the rides stream record, or random for a direct invoke). Actuals name it; the hour says
# which capture partition holds it, so the actuals function checks an id by reading one hour.
PREDICTION_ID_HOUR_FORMAT = "%Y%m%d%H"
PREDICTION_ID_TOKEN_HEX = 32
_PREDICTION_ID_HOUR_DIGITS = 10
_HEX_DIGITS = frozenset("0123456789abcdef")


def prediction_id(pickup_hour: datetime, token: str) -> str:
    """`2023030614-<token>`: the id of a prediction whose ride was picked up in that UTC hour."""
    return f"{floor_hour(pickup_hour):{PREDICTION_ID_HOUR_FORMAT}}-{token}"


def prediction_id_hour(text: object) -> datetime | None:
    """The UTC pickup hour a prediction id names (aware), or None when `text` is not a prediction id."""
    if not isinstance(text, str) or len(text) != _PREDICTION_ID_HOUR_DIGITS + 1 + PREDICTION_ID_TOKEN_HEX:
        return None
    hour, dash, token = text.partition("-")
    if not (
        dash and hour.isdigit() and len(hour) == _PREDICTION_ID_HOUR_DIGITS and set(token) <= _HEX_DIGITS
    ):
        return None
    try:
        return datetime.strptime(hour, PREDICTION_ID_HOUR_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ time
def floor_hour(moment: datetime) -> datetime:
    """The UTC hour a moment lies in (aware)."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(minute=0, second=0, microsecond=0)


def utc_hours(start: datetime, end: datetime) -> list[datetime]:
    """The UTC hours (truncated, aware) overlapping [start, end): the partitions a time range lists."""
    hour, hours = floor_hour(start), []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours


def utc_iso(moment: datetime) -> str:
    """`2023-03-06T14:30:02Z`, or with milliseconds if the moment has them; naive moments are UTC."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_utc(text: str) -> datetime:
    """An ISO 8601 time (`Z` or an offset; naive = UTC) as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def hour_partition(moment: datetime) -> str:
    """`dt=2023-03-06/hour=14`: the UTC hour folder of captures, rejected rides and actuals."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return f"dt={moment:%Y-%m-%d}/hour={moment:%H}"


def hour_prefix(prefix: str, moment: datetime) -> str:
    """`<prefix>dt=YYYY-MM-DD/hour=HH/`: what to list for one UTC hour of captures, rejected rides or
    actuals."""
    return f"{prefix}{hour_partition(moment)}/"


def hour_prefixes(prefix: str, start: datetime, end: datetime) -> list[str]:
    """The hour prefixes of every UTC hour overlapping [start, end): what a time range lists."""
    return [hour_prefix(prefix, hour) for hour in utc_hours(start, end)]


def day_prefix(prefix: str, day: date) -> str:
    """`<prefix>dt=YYYY-MM-DD/`: what to list for one UTC day of any hourly partitioning."""
    return f"{prefix}dt={day:%Y-%m-%d}/"


# ------------------------------------------------------------------------------------ S3: models bucket
LIVE_POINTER_KEY = "serving/live.json"
VERSION_POINTERS_PREFIX = "serving/versions/"
MODELS_PREFIX = "models/"  # models/<model_name>/<version>/<file>
BUNDLE_FILENAME = "bundle.npz"
PROFILE_FILENAME = "reference_profile.json"
TRAINING_ROWS_FILENAME = "training_rows.npz"  # what a version was fitted on: the loop mixes it in
LOOP_AUDIT_PREFIX = "loop/audit/"
LOOP_STATE_KEY = "loop/state.json"
LOOP_LOCK_KEY = "loop/lock.json"


# Versions the loop publishes when the stack has no MLflow: never a number, so never one of MLflow's
LOOP_VERSION_PREFIX = "loop-"


def loop_version(moment: datetime) -> str:
    return f"{LOOP_VERSION_PREFIX}{moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"


# The trusted yardstick (training.evaluation_set): a month of TLC trip records, published by the training
# side only; the pointer names the current one with its sha256.
EVALUATION_PREFIX = "evaluation/"
EVALUATION_POINTER_KEY = f"{EVALUATION_PREFIX}current.json"


def evaluation_key(month: str) -> str:
    return f"{EVALUATION_PREFIX}{month}.npz"


def version_pointer_key(version: str) -> str:
    return f"{VERSION_POINTERS_PREFIX}{version}.json"


def bundle_key(model_name: str, version: str) -> str:
    return f"{MODELS_PREFIX}{model_name}/{version}/{BUNDLE_FILENAME}"


def profile_key(model_name: str, version: str) -> str:
    return f"{MODELS_PREFIX}{model_name}/{version}/{PROFILE_FILENAME}"


# A direct invoke's `params` (training.model.ModelParams overrides): type and inclusive bounds of each
MODEL_PARAM_BOUNDS: dict[str, tuple[type, float, float]] = {
    "max_iter": (int, 1, 2000),
    "learning_rate": (float, 1e-3, 1.0),
    "max_leaf_nodes": (int, 2, 1024),
    "min_samples_leaf": (int, 1, 10_000),
    "l2_regularization": (float, 0.0, 1e4),
    "encoder_folds": (int, 2, 20),
    "random_state": (int, 0, 2**31 - 1),
}


# What a serving bundle (an npz: one zip member per array) may be; trip_core.bundle checks the object's
# size and its members' declared sizes before it decompresses anything (a zip bomb is refused unread).
# The largest model MODEL_PARAM_BOUNDS let a retrain fit stays under the bound
# (tests/unit/test_bundle.py computes its size); deflate never makes a bundle larger than its arrays.
MAX_BUNDLE_UNCOMPRESSED_BYTES = 256 * 2**20
MAX_BUNDLE_BYTES = MAX_BUNDLE_UNCOMPRESSED_BYTES
MAX_BUNDLE_MEMBERS = 32  # the format's members, with room to grow (tests/unit/test_bundle.py)


def training_rows_key(model_name: str, version: str) -> str:
    return f"{MODELS_PREFIX}{model_name}/{version}/{TRAINING_ROWS_FILENAME}"


# ------------------------------------------------------------------------------------ S3: capture bucket
CAPTURE_PREFIX = "captures/"
ACTUALS_PREFIX = "actuals/"
REPORTS_PREFIX = "reports/"
BUNDLE_ARTIFACT = f"bundle/{BUNDLE_FILENAME}"  # MLflow artifact paths of a run
PROFILE_ARTIFACT = f"profile/{PROFILE_FILENAME}"
MONITOR_STATE_KEY = "monitor/state.json"
# Where a monitor/state.json the monitor cannot read is kept, as it was, when the monitor starts afresh
UNREADABLE_STATE_PREFIX = "monitor/unreadable-state/"

# ------------------------------------------------------------------------------------ S3: rejected bucket
REJECTED_PREFIX = "rejected/"
REJECTED_ACTUALS_PREFIX = "rejected-actuals/"  # apart from rides: the monitor's RejectedShare counts rides


def _safe(part: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in part)


def batch_name(shard_id: str, first_sequence_number: str) -> str:
    """An object of one Kinesis batch is named by its shard and first sequence number: a retried batch
    overwrites its own objects."""
    return f"{_safe(shard_id)}_{_safe(first_sequence_number)}"


def capture_key(pickup_hour: datetime, shard_id: str, first_sequence_number: str, arm: str = "") -> str:
    """One object per batch and UTC pickup hour (event time), and per arm of the traffic plan: the live
    model's rides have no suffix, a canary's `_<arm>`."""
    name = batch_name(shard_id, first_sequence_number) + (f"_{_safe(arm)}" if arm else "")
    return f"{CAPTURE_PREFIX}{hour_partition(pickup_hour)}/{name}.json.gz"


def rejected_key(arrived_at: datetime, shard_id: str, sequence_number: str) -> str:
    """A batch's rejected rides, named by the first of them (its arrival hour, shard and sequence number):
    a retry or a replay that rejects it again rewrites the object instead of adding one."""
    name = batch_name(shard_id, sequence_number)
    return f"{REJECTED_PREFIX}{hour_partition(arrived_at)}/{name}.json"


def rejected_actuals_key(reported_at: datetime, shard_id: str, first_sequence_number: str) -> str:
    name = batch_name(shard_id, first_sequence_number)
    return f"{REJECTED_ACTUALS_PREFIX}{hour_partition(reported_at)}/{name}.json"


def actuals_key(reported_at: datetime, name: str) -> str:
    """Where accepted actual durations are: the UTC hour they were reported in, JSON lines; the actuals
    function names an object by its batch (`batch_name`)."""
    return f"{ACTUALS_PREFIX}{hour_partition(reported_at)}/{_safe(name)}.jsonl"


def unreadable_state_key(moment: datetime) -> str:
    return f"{UNREADABLE_STATE_PREFIX}{utc_iso(moment)}"


def report_key(window_end: datetime, extension: str) -> str:
    return f"{REPORTS_PREFIX}{utc_iso(window_end)}/drift_report.{extension}"
