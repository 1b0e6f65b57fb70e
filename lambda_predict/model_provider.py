"""The model in use: loaded at cold start from the pointer, re-checked at most every TTL seconds,
swapped atomically (one immutable `LoadedModel`; an invocation takes it once and keeps it).
A pointer or bundle that cannot be read is counted in ModelReadFailed (template.yaml:
ModelReadFailedAlarm): a hot swap keeps the loaded model, a cold start fails with the reason.

A new pointer is followed only to a bundle that loads and passes trip_core.smoke's smoke test. A
bundle that does not is refused: logged and counted in BundleRefused (template.yaml: BundleRefusedAlarm);
a hot swap keeps the loaded model, a cold start fails with the reason. The refused pointer is remembered,
so later checks count it again (the alarm stays up while the pointer names it) without re-reading it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambda_predict.ports import BundleLoader, ModelSource, Predictor
from trip_core.bundle import BundleError
from trip_core.contracts import version_pointer_key
from trip_core.observability import count_now, logger
from trip_core.plan import NO_PLAN, PlanError, TrafficPlan, in_canary, plan_of
from trip_core.pointer import ModelPointer
from trip_core.smoke import smoke_test

BUNDLE_REFUSED_METRIC = "BundleRefused"
MODEL_READ_FAILED_METRIC = "ModelReadFailed"


class ModelLoadError(RuntimeError):
    """No usable model could be loaded (pointer or bundle missing or unreadable, or the bundle refused)."""


def emit_bundle_refused(pointer: ModelPointer, reason: str) -> None:
    count_now(BUNDLE_REFUSED_METRIC)


def emit_model_read_failed(reason: str) -> None:
    """ModelReadFailed = 1 (template.yaml: ModelReadFailedAlarm): the pointer or its bundle could not be
    read. A warm function keeps serving the model it has, so without this count a pointer taken away
    would be seen by nobody until the next cold start fails."""
    count_now(MODEL_READ_FAILED_METRIC)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Predictor
    pointer: ModelPointer


@dataclass(frozen=True)
class Serving:
    """What serves an invocation: the live model, and the plan's challengers that loaded and passed the
    smoke test (a challenger that did not is left out: the live model answers its rides)."""

    live: LoadedModel
    plan: TrafficPlan = NO_PLAN
    shadow: LoadedModel | None = None
    canary: LoadedModel | None = None

    def models(self) -> tuple[LoadedModel, ...]:
        return tuple(m for m in (self.live, self.shadow, self.canary) if m is not None)

    def in_canary(self, prediction_id: str) -> bool:
        return self.canary is not None and in_canary(prediction_id, self.plan)


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
        self._serving: Serving | None = None
        self._checked_at = 0.0
        self._refused: dict[tuple[str, str], str] = {}  # (version, bundle sha256) -> reason

    def load_initial(self) -> LoadedModel:
        """Cold start: load or fail with a message that says what is missing (a challenger that cannot be
        loaded does not fail it)."""
        pointer, document = self._read_pointer(self._pointer_key)
        live = self._fetch(pointer, known={})
        self._serving = self._with_challengers(live, document, previous=None)
        self._checked_at = self._clock()
        logger.info(
            "model loaded",
            extra={"model_name": live.name, "model_version": live.version, "pinned": self._pinned},
        )
        return live

    def current(self) -> LoadedModel:
        """The live model for this invocation."""
        return self.serving().live

    def serving(self) -> Serving:
        """The models for this invocation; re-reads the pointer after each TTL (never when pinned)."""
        serving = self._serving
        if serving is None:
            self.load_initial()
            assert self._serving is not None
            return self._serving
        if self._pinned or self._clock() - self._checked_at < self._ttl:
            return serving
        self._checked_at = self._clock()  # also after a failure: at most one check per TTL
        known = {m.version: m for m in serving.models()}
        try:
            pointer, document = self._read_pointer(self._pointer_key)
            live = self._fetch(pointer, known)
        except Exception as exc:  # ModelLoadError, or what a pointer no check foresaw: never the batch's
            if not isinstance(exc, ModelLoadError):
                self._read_failed(f"model refresh failed: {exc!r}")
            logger.warning("model refresh failed; keeping the loaded version", extra={"error": str(exc)})
            return serving
        if live is not serving.live:
            logger.info(
                "model swapped", extra={"from_version": serving.live.version, "model_version": live.version}
            )
        fresh = self._with_challengers(live, document, serving)
        self._serving = fresh
        return fresh

    def _with_challengers(
        self, live: LoadedModel, document: dict[str, Any], previous: Serving | None
    ) -> Serving:
        if self._pinned:
            return Serving(live)
        try:
            plan = plan_of(document, live.version)
        except PlanError as exc:
            self._read_failed(f"the live pointer's traffic plan is refused: {exc}")
            logger.error("traffic plan refused; the live model answers every ride", extra={"error": str(exc)})
            return Serving(live)
        known = {m.version: m for m in previous.models()} if previous is not None else {}
        loaded: dict[str, LoadedModel] = {}
        for version in plan.challengers():
            try:
                loaded[version] = self._challenger(version, known)
            except ModelLoadError as exc:
                logger.error(
                    "challenger not loaded; the live model answers its rides",
                    extra={"model_version": version, "error": str(exc)},
                )
        serving = Serving(
            live,
            plan,
            loaded.get(plan.shadow) if plan.shadow else None,
            loaded.get(plan.canary) if plan.canary else None,
        )
        if (previous.plan if previous is not None else NO_PLAN) != plan:
            logger.info("traffic plan", extra={"plan": plan.to_dict(), "live_version": live.version})
        return serving

    def _challenger(self, version: str, known: dict[str, LoadedModel]) -> LoadedModel:
        key = version_pointer_key(version)
        pointer, _ = self._read_pointer(key)
        if pointer.version != version:
            reason = f"{key} names version {pointer.version}, not {version}"
            raise self._refuse(pointer, reason)
        return self._fetch(pointer, known)

    def _read_pointer(self, key: str) -> tuple[ModelPointer, dict[str, Any]]:
        try:
            document = json.loads(self._source.read(key))
            return ModelPointer.from_dict(document), document
        except Exception as exc:
            raise self._read_failed(f"cannot read model pointer s3 key {key!r}: {exc}") from exc

    def _fetch(self, pointer: ModelPointer, known: dict[str, LoadedModel]) -> LoadedModel:
        """The pointer's model: one of `known` when its bundle is the same, else loaded and smoke-tested."""
        current = known.get(pointer.version)
        if current is not None and current.pointer.bundle_sha256 == pointer.bundle_sha256:
            return current
        refused = self._refused.get((pointer.version, pointer.bundle_sha256))
        if refused is not None:
            raise self._refuse(pointer, refused)
        try:
            data = self._source.read(pointer.bundle_key)
        except BundleError as exc:  # the object itself is not a bundle (too large to be one)
            raise self._refuse(pointer, str(exc)) from exc
        except Exception as exc:
            raise self._read_failed(
                f"cannot read bundle {pointer.bundle_key!r} of model version {pointer.version}: {exc}"
            ) from exc
        try:
            predictor = self._load(data, pointer.bundle_sha256)
            smoke_test(predictor)
        except Exception as exc:
            raise self._refuse(pointer, str(exc)) from exc
        return LoadedModel(predictor.model_name, pointer.version, predictor, pointer)

    def _read_failed(self, reason: str) -> ModelLoadError:
        """Count a pointer or bundle that could not be read: the error to raise."""
        self._on_read_failed(reason)
        return ModelLoadError(reason)

    def _refuse(self, pointer: ModelPointer, reason: str) -> ModelLoadError:
        """Log and count a refused bundle, remember its pointer: the error to raise."""
        self._refused[(pointer.version, pointer.bundle_sha256)] = reason
        serving = self._serving
        logger.error(
            "bundle refused",
            extra={
                "model_version": pointer.version,
                "bundle_key": pointer.bundle_key,
                "reason": reason,
                "serving_version": None if serving is None else serving.live.version,
            },
        )
        self._on_refused(pointer, reason)
        return ModelLoadError(f"bundle of model version {pointer.version} is refused: {reason}")
