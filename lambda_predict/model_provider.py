"""The model in use: loaded at cold start from the pointer, re-checked at most every TTL seconds,
swapped atomically (one immutable `LoadedModel`; an invocation takes it once and keeps it).
A pointer or bundle that cannot be read is counted in ModelReadFailed (template.yaml:
ModelReadFailedAlarm): a hot swap keeps the loaded model, a cold start fails with the reason.

A new pointer is followed only to a bundle that loads and passes trip_core.smoke's smoke test. A
bundle that does not is refused: logged and counted in BundleRefused (template.yaml: BundleRefusedAlarm);
a hot swap keeps the loaded model, a cold start fails with the reason. The refused pointer is remembered,
so later checks count it again (the alarm stays up while the pointer names it) without re-reading it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from lambda_predict.ports import BundleLoader, ModelSource, Predictor
from trip_core.bundle import BundleError
from trip_core.observability import NAMESPACE, logger
from trip_core.pointer import ModelPointer
from trip_core.smoke import smoke_test

BUNDLE_REFUSED_METRIC = "BundleRefused"
MODEL_READ_FAILED_METRIC = "ModelReadFailed"


class ModelLoadError(RuntimeError):
    """No usable model could be loaded (pointer or bundle missing or unreadable, or the bundle refused)."""


def _count_now(name: str) -> None:
    """`name` = 1, written at once rather than with the invocation's metrics: a cold start that fails
    has no invocation to flush them."""
    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=NAMESPACE):
        pass


def emit_bundle_refused(pointer: ModelPointer, reason: str) -> None:
    _count_now(BUNDLE_REFUSED_METRIC)


def emit_model_read_failed(reason: str) -> None:
    """ModelReadFailed = 1 (template.yaml: ModelReadFailedAlarm): the pointer or its bundle could not be
    read. A warm function keeps serving the model it has, so without this count a pointer taken away
    would be seen by nobody until the next cold start fails."""
    _count_now(MODEL_READ_FAILED_METRIC)


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
        on_refused: Callable[[ModelPointer, str], None] = emit_bundle_refused,
        on_read_failed: Callable[[str], None] = emit_model_read_failed,
    ) -> None:
        self._source = source
        self._pointer_key = pointer_key
        self._load = load
        self._ttl = ttl_seconds
        self._pinned = pinned
        self._clock = clock
        self._on_refused = on_refused
        self._on_read_failed = on_read_failed
        self._model: LoadedModel | None = None
        self._checked_at = 0.0
        self._refused: tuple[str, str, str] | None = None  # version, bundle sha256, reason

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
            raise self._read_failed(f"cannot read model pointer s3 key {key!r}: {exc}") from exc
        if (
            current is not None
            and current.version == pointer.version
            and current.pointer.bundle_sha256 == pointer.bundle_sha256
        ):
            return current
        if self._refused is not None and self._refused[:2] == (pointer.version, pointer.bundle_sha256):
            raise self._refuse(pointer, self._refused[2], current)
        try:
            data = self._source.read(pointer.bundle_key)
        except BundleError as exc:  # the object itself is not a bundle (too large to be one)
            raise self._refuse(pointer, str(exc), current) from exc
        except Exception as exc:
            raise self._read_failed(
                f"cannot read bundle {pointer.bundle_key!r} of model version {pointer.version}: {exc}"
            ) from exc
        try:
            predictor = self._load(data, pointer.bundle_sha256)
            smoke_test(predictor)
        except Exception as exc:
            raise self._refuse(pointer, str(exc), current) from exc
        return LoadedModel(predictor.model_name, pointer.version, predictor, pointer)

    def _read_failed(self, reason: str) -> ModelLoadError:
        """Count a pointer or bundle that could not be read: the error to raise."""
        self._on_read_failed(reason)
        return ModelLoadError(reason)

    def _refuse(self, pointer: ModelPointer, reason: str, current: LoadedModel | None) -> ModelLoadError:
        """Log and count a refused bundle, remember its pointer: the error to raise."""
        self._refused = (pointer.version, pointer.bundle_sha256, reason)
        logger.error(
            "bundle refused",
            extra={
                "model_version": pointer.version,
                "bundle_key": pointer.bundle_key,
                "reason": reason,
                "serving_version": None if current is None else current.version,
            },
        )
        self._on_refused(pointer, reason)
        return ModelLoadError(f"bundle of model version {pointer.version} is refused: {reason}")
