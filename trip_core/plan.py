"""The traffic plan: which challengers serve beside the live model.

The plan is the `plan` object of the live pointer (`serving/live.json`): one object, one read per TTL as
before, one conditional write to change it; a promotion or a rollback writes a pointer without a plan,
which ends every challenge. Beside the live model the plan names at most

  shadow  a version that scores every ride beside the live model and never answers: both predictions
          are captured, so the comparison on actuals is paired ride by ride;
  canary  a version that answers a share of the rides, in (0, MAX_CANARY_SHARE].

Which rides the canary answers is decided by a hash of the service-issued prediction id salted with the
canary's version: a retried record has the same prediction id and so the same arm and answer, and each
canary gets its own sample. A stream record's id is keyed by the service's secret, so its producer cannot
choose its arm; a one-ride request's id is random, so asking again could: the canary answers stream rides
only (a one-ride request gets the live answer, a shadow's beside it).
A challenger is read from its version pointer (`serving/versions/<version>.json`). A pointer without a
plan, or a plan with neither, costs a batch nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from trip_core.pointer import ModelPointer

PLAN_FIELD = "plan"  # in the live pointer's JSON document
MAX_CANARY_SHARE = 0.5  # a canary answering more than half the rides is a promotion, not a canary
MAX_VERSION_CHARS = 128
_FIELDS = frozenset({"shadow", "canary", "canary_share", "updated_at", "reason"})
_HASH_SCALE = float(2**64)


class PlanError(ValueError):
    """A traffic plan that does not follow its format; the message names the field."""


def _check_version(name: str, version: object) -> None:
    if version is None:
        return
    if not isinstance(version, str) or not version or len(version) > MAX_VERSION_CHARS or "/" in version:
        raise PlanError(
            f"{name} must be a version name (1-{MAX_VERSION_CHARS} chars, no '/'), got {version!r}"
        )


@dataclass(frozen=True)
class TrafficPlan:
    shadow: str | None = None
    canary: str | None = None
    canary_share: float = 0.0
    updated_at: str = ""  # ISO 8601 UTC
    reason: str = ""  # who or what set it, and why (the loop's decision, an operator's command)

    def __post_init__(self) -> None:
        for name in ("shadow", "canary"):
            _check_version(name, getattr(self, name))
        share = self.canary_share
        if isinstance(share, bool) or not isinstance(share, int | float):
            raise PlanError(f"canary_share must be a number, got {share!r}")
        if self.canary is None and share != 0:
            raise PlanError("canary_share without a canary: set canary or drop canary_share")
        if self.canary is not None and not 0 < share <= MAX_CANARY_SHARE:
            raise PlanError(f"canary_share must be in (0, {MAX_CANARY_SHARE}], got {share!r}")
        if self.shadow is not None and self.shadow == self.canary:
            raise PlanError(f"version {self.shadow} cannot be both shadow and canary")

    @property
    def empty(self) -> bool:
        return self.shadow is None and self.canary is None

    def challengers(self) -> tuple[str, ...]:
        return tuple(v for v in (self.shadow, self.canary) if v is not None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "shadow": self.shadow,
            "canary": self.canary,
            "canary_share": self.canary_share,
            "updated_at": self.updated_at,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Any) -> TrafficPlan:
        if not isinstance(data, dict):
            raise PlanError("traffic plan must be a JSON object")
        unknown = sorted(set(data) - _FIELDS)
        if unknown:
            raise PlanError(f"traffic plan has unknown field(s) {', '.join(unknown)}")
        for name in ("updated_at", "reason"):
            if not isinstance(data.get(name, ""), str):
                raise PlanError(f"{name} must be a string")
        return cls(
            shadow=data.get("shadow"),
            canary=data.get("canary"),
            canary_share=data.get("canary_share", 0.0),
            updated_at=data.get("updated_at", ""),
            reason=data.get("reason", ""),
        )


NO_PLAN = TrafficPlan()


def plan_of(document: dict[str, Any], live_version: str) -> TrafficPlan:
    """The plan in a live pointer's parsed document (NO_PLAN when it has none); raises PlanError."""
    raw = document.get(PLAN_FIELD)
    plan = NO_PLAN if raw is None else TrafficPlan.from_dict(raw)
    if live_version in plan.challengers():
        raise PlanError(f"the live version {live_version} cannot also be a challenger")
    return plan


def live_document(pointer: ModelPointer, plan: TrafficPlan) -> bytes:
    """The live pointer's JSON with the plan (without one when the plan is empty)."""
    data: dict[str, Any] = json.loads(pointer.to_json())
    if not plan.empty:
        data[PLAN_FIELD] = plan.to_dict()
    return json.dumps(data, sort_keys=True).encode()


def canary_point(prediction_id: str, canary_version: str) -> float:
    """The ride's point in [0, 1): the canary answers it when the point is below its share."""
    digest = hashlib.blake2b(f"{canary_version}\x00{prediction_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


def in_canary(prediction_id: str, plan: TrafficPlan) -> bool:
    return plan.canary is not None and canary_point(prediction_id, plan.canary) < plan.canary_share
