"""The serving pointer: what training publishes on promotion and the prediction Lambda reads.

A JSON object at one well-known S3 key (default `serving/live.json` in the models bucket); every
registered version also gets `serving/versions/<version>.json`, which an env var can pin and which
rollback points back to. Reading it needs no MLflow, only S3. The live pointer may also carry the traffic
plan (trip_core.plan): the challengers serving beside it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from trip_core import jsontext


@dataclass(frozen=True)
class ModelPointer:
    model_name: str
    version: str
    bundle_key: str  # S3 key of the single-file serving bundle, in the models bucket
    bundle_sha256: str
    profile_key: str  # S3 key of the reference profile JSON of this version
    validation_rmse: float
    validation_mae: float
    run_id: str
    published_at: str  # ISO 8601, UTC

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ModelPointer:
        return cls.from_dict(jsontext.loads(text))

    @classmethod
    def from_dict(cls, data: Any) -> ModelPointer:
        if not isinstance(data, dict):
            raise ValueError("model pointer must be a JSON object")
        missing = [name for name in cls.__dataclass_fields__ if name not in data]
        if missing:
            raise ValueError(f"model pointer lacks field(s) {', '.join(missing)}")
        for name, field in cls.__dataclass_fields__.items():
            value = data[name]
            expected = (int, float) if field.type in ("float", float) else (str,)
            if isinstance(value, bool) or not isinstance(value, expected):
                raise ValueError(
                    f"model pointer field {name} must be a {field.type}, got {type(value).__name__}"
                )
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})
