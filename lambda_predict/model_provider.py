"""The model in use: loaded at cold start from the pointer, re-checked at most every TTL seconds,
swapped atomically (one immutable `LoadedModel`; an invocation takes it once and keeps it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from lambda_predict.ports import BundleLoader, ModelSource, Predictor
from trip_core.observability import logger
from trip_core.pointer import ModelPointer


class ModelLoadError(RuntimeError):
    """No usable model could be loaded (pointer or bundle missing, unreadable or failing its checksum)."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Predictor
    pointer: ModelPointer


class ModelProvider:
    def __init__(
        self,
        source: ModelSource,
        pointer_key: str,
        load: BundleLoader,
        ttl_seconds: float,
        pinned: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._pointer_key = pointer_key
        self._load = load
        self._ttl = ttl_seconds
        self._pinned = pinned
        self._clock = clock
        self._model: LoadedModel | None = None
        self._checked_at = 0.0

    def load_initial(self) -> LoadedModel:
        """Cold start: load or fail with a message that says what is missing."""
        self._model = self._fetch(current=None)
        self._checked_at = self._clock()
        logger.info(
            "model loaded",
            extra={
                "model_name": self._model.name,
                "model_version": self._model.version,
                "pinned": self._pinned,
            },
        )
        return self._model

    def current(self) -> LoadedModel:
        """The model for this invocation; re-reads the pointer when the TTL has passed (never when pinned)."""
        model = self._model
        if model is None:
            return self.load_initial()
        if self._pinned or self._clock() - self._checked_at < self._ttl:
            return model
        self._checked_at = self._clock()  # also after a failure: at most one check per TTL
        try:
            fresh = self._fetch(current=model)
        except ModelLoadError as exc:
            logger.warning("model refresh failed; keeping the loaded version", extra={"error": str(exc)})
            return model
        if fresh is not model:
            logger.info(
                "model swapped", extra={"from_version": model.version, "model_version": fresh.version}
            )
            self._model = fresh
        return fresh

    def _fetch(self, current: LoadedModel | None) -> LoadedModel:
        key = self._pointer_key
        try:
            pointer = ModelPointer.from_json(self._source.read(key))
        except Exception as exc:
            raise ModelLoadError(f"cannot read model pointer s3 key {key!r}: {exc}") from exc
        if (
            current is not None
            and current.version == pointer.version
            and current.pointer.bundle_sha256 == pointer.bundle_sha256
        ):
            return current
        try:
            data = self._source.read(pointer.bundle_key)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot read bundle {pointer.bundle_key!r} of model version {pointer.version}: {exc}"
            ) from exc
        try:
            predictor = self._load(data, pointer.bundle_sha256)
        except Exception as exc:
            raise ModelLoadError(f"bundle of model version {pointer.version} is unusable: {exc}") from exc
        return LoadedModel(predictor.model_name, pointer.version, predictor, pointer)
