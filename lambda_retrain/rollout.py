"""Safe rollout (PROMOTION_POLICY auto or approve): a challenger that passed the gate serves beside the
live model before it serves everyone. The stages, kept in the loop state's `rollout`:

  shadow             the traffic plan's shadow (trip_core.plan): it scores every ride beside the live
                     model and answers none; judged on the labelled rides both scored, ride by ride, by
                     training.decision's rule (champion: the live model's answers, challenger: the
                     shadow's, both as captured)
  canary             (auto, CANARY_SHARE > 0) it answers its share of the rides; judged the same way on
                     the rides it answered (champion: the live model's paired answers)
  awaiting_approval  (approve) the shadow's verdict went to the rollout topic; an operator approves or
                     rejects it by direct invoke (`make approve` / `make reject`), or it expires after
                     APPROVAL_HOURS

A stage decides on the first scheduled check whose comparison is decisive, or on the first after
ROLLOUT_STAGE_HOURS with the evidence there is (as the rollback check judges a promotion once): better ->
the next stage (or live), otherwise the challenger is retired and the plan cleared. An alarm named in
CANARY_ALARMS ends a canary at once. Each step rewrites serving/live.json only if it is still the one it
read (a promotion or rollback in between wins, and ends the rollout), is audited, tags the MLflow version
`loop.stage`, and is told to the rollout topic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import numpy as np

from lambda_retrain.audit import Decision, DecisionKind, read_state, record_base, record_decision, write_state
from lambda_retrain.config import PromotionPolicy, RetrainConfig
from lambda_retrain.labelled import load_labelled
from lambda_retrain.ports import Ports, Tagged
from lambda_retrain.registry import make_live, move_alias, version_pointer
from lambda_retrain.rollback import better_on_evaluation_set, evaluation_set_maes
from lambda_retrain.triggers import Source, Trigger
from training import decision
from training.gate import EVAL_MARGIN
from trip_core.capture import CaptureBatch
from trip_core.contracts import LIVE_POINTER_KEY, MONITOR_WINDOW, parse_utc, utc_iso
from trip_core.observability import logger
from trip_core.plan import NO_PLAN, PlanError, TrafficPlan, live_document, plan_of
from trip_core.pointer import ModelPointer
from trip_core.smoke import load_servable

STATE_FIELD = "rollout"
MAX_TAKE_OUT_TRIES = 3
# The live model answered these rides plausibly; a challenger that has no plausible answer for more of them
# would leave them unanswered once live, whatever its MAE on the others.
MAX_UNANSWERED_SHARE = 0.001
MAX_PROBLEM_CHARS = 300


class Stage(StrEnum):
    SHADOW = "shadow"
    CANARY = "canary"
    AWAITING_APPROVAL = "awaiting_approval"
    LIVE = "live"
    RETIRED = "retired"


@dataclass(frozen=True)
class Serving:
    """serving/live.json as read (its ETag: the condition of the next write) and the rollout it serves."""

    tagged: Tagged
    live: ModelPointer
    plan: TrafficPlan


def active(state: dict[str, Any]) -> dict[str, Any] | None:
    """The running rollout of the loop state; a malformed one is logged and not followed (it would stop
    every check and every retrain), the plan it may have left is cleared by the next start."""
    rollout = state.get(STATE_FIELD)
    if not isinstance(rollout, dict) or rollout.get("stage") not in _RUNNING:
        return None
    try:
        parse_utc(str(rollout["stage_started_at"]))
        if not all(isinstance(rollout[k], str) and rollout[k] for k in ("version", "live_version", "policy")):
            raise TypeError("version, live_version and policy must be texts")
        PromotionPolicy(rollout["policy"])
    except (KeyError, TypeError, ValueError) as exc:
        logger.error("the loop state's rollout is malformed; not followed", extra={"error": repr(exc)})
        return None
    return rollout


_RUNNING = (Stage.SHADOW, Stage.CANARY, Stage.AWAITING_APPROVAL)


def start(
    ports: Ports, config: RetrainConfig, now: datetime, record: dict[str, Any], version: str
) -> Decision:
    """The gate passed `version` (published, not live): it goes into shadow beside the live model."""
    serving = _read_serving(ports)
    running = active(read_state(ports.models))
    problem = None
    if serving is None:
        problem = "no live model to serve beside"
    elif running is not None:
        problem = f"version {running['version']} is in rollout ({running['stage']})"
    if problem is not None or serving is None:
        verdict = f"{record['verdict']}; not put in shadow: {problem}"
        return record_decision(ports, now, DecisionKind.REFUSED, {**record, "verdict": verdict}, version)
    rollout = {
        "version": version,
        "live_version": serving.live.version,
        "policy": str(config.promotion_policy),
        "started_at": utc_iso(now),
    }
    plan = TrafficPlan(shadow=version, updated_at=utc_iso(now), reason=f"rollout of {version}: shadow")
    if not _write_plan(ports, serving, plan):
        verdict = f"{record['verdict']}; not put in shadow: serving/live.json moved meanwhile"
        return record_decision(ports, now, DecisionKind.REFUSED, {**record, "verdict": verdict}, version)
    verdict = f"{record['verdict']}; in shadow beside live {serving.live.version}"
    return _enter(Step(ports, config, now, record, rollout), verdict, Stage.SHADOW)


def check(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> Decision | None:
    """The scheduled (or a direct) look at the running rollout; None: none runs, or it waits quietly."""
    rollout = active(read_state(ports.models))
    if rollout is None:
        return None
    step = Step(ports, config, now, {**record_base(trigger, config, now, actor), **_names(rollout)}, rollout)
    serving = _read_serving(ports)
    if serving is not None and serving.live.version == rollout["version"]:
        return _end(
            step,
            "ended: the challenger is live (serving/live.json moved to it outside the rollout)",
            Stage.LIVE,
        )
    if serving is None or serving.live.version != rollout["live_version"]:
        moved = "gone" if serving is None else f"version {serving.live.version}"
        return _end(step, f"ended: serving/live.json is {moved} now")
    if rollout["stage"] == Stage.AWAITING_APPROVAL:
        return _approval_check(trigger, step, serving)
    return _judge_stage(trigger, step, serving, Stage(rollout["stage"]))


def _judge_stage(trigger: Trigger, step: Step, serving: Serving, stage: Stage) -> Decision | None:
    """A shadow or a canary: decided when its comparison is decisive or its time is up, else it waits.
    A canary alarm in ALARM, or a challenger that leaves rides unanswered or cannot be served, ends it;
    a stage goes on only on evidence."""
    alarming = _canary_alarms_in_alarm(step) if stage == Stage.CANARY else []
    if alarming:
        return _retire(step, serving, f"canary stopped: {', '.join(alarming)} in ALARM")
    evidence = judge(step.ports, step.rollout, stage, step.now)
    step.base["metrics"] = evidence.figures(stage)
    seen = evidence.rides + evidence.unanswered
    if evidence.unanswered > MAX_UNANSWERED_SHARE * seen:
        why = f"{stage}: no plausible answer for {evidence.unanswered} of the {seen} labelled rides"
        return _retire(step, serving, why)
    started = parse_utc(step.rollout["stage_started_at"])
    timed_out = step.now - started >= timedelta(hours=step.config.rollout_stage_hours)
    compared = evidence.compared
    if (compared.outcome == decision.Outcome.NOT_ENOUGH_EVIDENCE or not compared.decisive) and not timed_out:
        return _waits(trigger, step, stage, evidence)
    why = f"{stage}: {evidence.summary(stage)}"
    problem = unservable(step.ports, step.rollout["version"])
    if problem is not None:
        return _retire(step, serving, f"{problem}; {why}")
    if compared.outcome == decision.Outcome.NOT_ENOUGH_EVIDENCE:
        return _retire(step, serving, f"no evidence after {step.config.rollout_stage_hours:g} h; {why}")
    if compared.outcome != decision.Outcome.BETTER:
        backed = None if compared.decisive else _backed(step.ports, step.rollout)
        if backed is None:
            return _retire(step, serving, why)
        why = f"{why}; not decided on the served rides, whose labels clients report, but {backed}"
    return _advance(step, serving, why)


def _waits(trigger: Trigger, step: Step, stage: Stage, evidence: Evidence) -> Decision | None:
    if trigger.source == Source.SCHEDULE:
        logger.info(f"rollout of {step.rollout['version']}: {stage} waits ({evidence.summary(stage)})")
        return None
    record = {**step.base, "verdict": f"{stage}, not decided yet: {evidence.summary(stage)}", "stage": stage}
    return record_decision(step.ports, step.now, DecisionKind.ROLLOUT, record)


def _canary_alarms_in_alarm(step: Step) -> list[str]:
    """CANARY_ALARMS in ALARM now: an alarm notifies once, on its transition, which may have come while
    no canary ran (it was ignored then)."""
    states = step.ports.alarms.states(step.config.canary_alarms) if step.config.canary_alarms else {}
    return sorted(name for name, state in states.items() if state == "ALARM")


def approve(trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str) -> Decision:
    """An operator's approval of the version awaiting it (`trigger.version`); anything else is refused."""
    found = _awaiting(trigger, ports, config, now, actor)
    if isinstance(found, Decision):
        return found
    return _after_approval(*found, f"approved by {actor}: {trigger.reason}")


def reject(trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str) -> Decision:
    found = _awaiting(trigger, ports, config, now, actor)
    if isinstance(found, Decision):
        return found
    return _retire(*found, f"rejected by {actor}: {trigger.reason}")


def stop_canary(trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str) -> Decision:
    """An alarm of CANARY_ALARMS in ALARM: the canary answers no more rides, the challenger is retired."""
    base = record_base(trigger, config, now, actor)
    rollout = active(read_state(ports.models))
    serving = _read_serving(ports)
    reason = f"canary stopped: {trigger.alarm_name} in ALARM"
    if rollout is not None and rollout["stage"] == Stage.CANARY and serving is not None:
        return _retire(Step(ports, config, now, {**base, **_names(rollout)}, rollout), serving, reason)
    if serving is not None and serving.plan.canary is not None:  # a plan no running rollout accounts for
        orphan = {"version": serving.plan.canary, "live_version": serving.live.version}
        how = _take_out(ports, config, orphan, now)
        verdict = f"{reason}: {how} (no rollout of it was running)"
        return record_decision(ports, now, DecisionKind.RETIRED, {**base, "verdict": verdict})
    verdict = f"ignored: {trigger.alarm_name} is in ALARM, but no canary is running"
    return record_decision(ports, now, DecisionKind.IGNORED, {**base, "verdict": verdict})


# ------------------------------------------------------------------------------------ the evidence
@dataclass(frozen=True)
class Evidence:
    """The labelled rides of a stage, the live model's and the challenger's answers to each."""

    rides: int  # labelled rides both models answered
    compared: decision.Comparison
    unanswered: int = 0  # labelled rides of a shadow the live model answered and the shadow had no answer for

    def summary(self, stage: Stage) -> str:
        return f"challenger vs live on the rides the {stage} saw: {self.compared.summary()}"

    def figures(self, stage: Stage) -> dict[str, Any]:
        return {
            "stage": str(stage),
            "rides": self.rides,
            "unanswered": self.unanswered,
            "live_mae": self.compared.champion_mae,
            "challenger_mae": self.compared.challenger_mae,
            "decision": self.compared.figures(),
        }


def judge(ports: Ports, rollout: dict[str, Any], stage: Stage, now: datetime) -> Evidence:
    """training.decision's rule on the stage's paired rides: a shadow is paired with every ride the live
    model answered, a canary's answers with the live model's answers to the same rides."""
    version, live = rollout["version"], rollout["live_version"]
    answered, paired = (live, version) if stage == Stage.SHADOW else (version, live)
    since = parse_utc(rollout["stage_started_at"])

    def in_stage(batch: CaptureBatch) -> bool:
        return (
            batch.model_version == answered
            and batch.paired_version == paired
            and parse_utc(batch.captured_at) >= since
        )

    rides = load_labelled(
        ports.capture, since - MONITOR_WINDOW, now + timedelta(seconds=1), keep_batch=in_stage
    )
    both = rides.rows(np.isfinite(rides.paired))
    live_pred, challenger_pred = (
        (both.served, both.paired) if stage == Stage.SHADOW else (both.paired, both.served)
    )
    compared = decision.compare(live_pred, challenger_pred, both.target, both.pickup)
    return Evidence(len(both), compared, len(rides) - len(both) if stage == Stage.SHADOW else 0)


# ------------------------------------------------------------------------------------ the steps
@dataclass(frozen=True)
class Step:
    """One decision of a rollout: what it acts with, and the audit record it starts from."""

    ports: Ports
    config: RetrainConfig
    now: datetime
    base: dict[str, Any]
    rollout: dict[str, Any]


def _advance(step: Step, serving: Serving, why: str) -> Decision:
    """A stage decided `better`: shadow -> awaiting approval (approve), or canary or live (auto);
    canary -> live."""
    rollout = step.rollout
    if rollout["stage"] == Stage.SHADOW and rollout["policy"] == PromotionPolicy.APPROVE:
        verdict = f"awaiting approval (make approve VERSION={rollout['version']}): {why}"
        return _enter(step, verdict, Stage.AWAITING_APPROVAL)
    return _after_approval(step, serving, why)


def _after_approval(step: Step, serving: Serving, why: str) -> Decision:
    """What comes after a shadow's approval: a canary when the stack has a share for it, else live."""
    version, share = step.rollout["version"], step.config.canary_share
    if step.rollout["stage"] != Stage.CANARY and share > 0:
        plan = TrafficPlan(
            canary=version,
            canary_share=share,
            updated_at=utc_iso(step.now),
            reason=f"rollout of {version}: canary",
        )
        if not _write_plan(step.ports, serving, plan):
            return _moved_meanwhile(step)
        return _enter(step, f"canary at {share:.0%} of the rides: {why}", Stage.CANARY)
    return _promote(step, serving, why)


def _promote(step: Step, serving: Serving, why: str) -> Decision:
    ports, now, rollout = step.ports, step.now, step.rollout
    version = rollout["version"]
    pointer = version_pointer(ports.models, version)
    if pointer is None:
        return _retire(step, serving, f"its pointer is gone; {why}")
    worse = _worse_on_evaluation_set(ports, rollout)
    if worse is not None:
        return _retire(step, serving, f"{worse}, though {why}")
    if not make_live(ports.models, pointer, serving.tagged.etag, now):
        return _moved_meanwhile(step)
    mlflow = move_alias(ports, step.config, version)
    state = read_state(ports.models)
    state[STATE_FIELD] = {**rollout, "stage": Stage.LIVE, "stage_started_at": utc_iso(now)}
    # judged by the rollout already: the rollback check does not test it again (a promotion is judged once)
    state["last_promotion"] = {
        "version": version,
        "previous_version": rollout["live_version"],
        "promoted_at": utc_iso(now),
        "judged_at": utc_iso(now),
        "forced": False,
    }
    write_state(ports.models, state)
    record = {
        **step.base,
        "verdict": f"promoted: {why}",
        "stage": Stage.LIVE,
        "mlflow": mlflow,
        "version": version,
    }
    _tell(ports, step.config, f"{version} promoted", record)
    return record_decision(ports, now, DecisionKind.PROMOTED, record, version)


def _retire(step: Step, serving: Serving, why: str) -> Decision:
    """The challenger serves no more (the live model answers every ride), whatever moved meanwhile."""
    if _write_plan(step.ports, serving, NO_PLAN):
        return _end(step, f"retired: {why}")
    how = _take_out(step.ports, step.config, step.rollout, step.now)
    return _end(step, f"retired ({how}): {why}")


def _take_out(ports: Ports, config: RetrainConfig, rollout: dict[str, Any], now: datetime) -> str:
    """Make sure the challenger answers no ride, on serving/live.json as it is now (another invocation may
    have moved it since this one read it): out of the plan, or, when it was made live meanwhile, live
    back to the version it was judged against. Raises when the pointer keeps moving (audited `failed`,
    RetrainFunctionErrorsAlarm)."""
    version = rollout["version"]
    for _ in range(MAX_TAKE_OUT_TRIES):
        serving = _read_serving(ports)
        if serving is None:
            return "no live pointer"
        if serving.live.version == version:
            previous = version_pointer(ports.models, rollout["live_version"])
            if previous is None:
                raise RuntimeError(f"{version} is live and {rollout['live_version']}'s pointer is gone")
            if make_live(ports.models, previous, serving.tagged.etag, now):
                _mark_rolled_back(ports, version, rollout["live_version"], now)
                mlflow = move_alias(ports, config, rollout["live_version"])
                return f"it had been made live meanwhile: rolled back to {rollout['live_version']} ({mlflow})"
        elif version in serving.plan.challengers():
            remaining = TrafficPlan(
                shadow=None if serving.plan.shadow == version else serving.plan.shadow,
                canary=None if serving.plan.canary == version else serving.plan.canary,
                canary_share=0.0 if serving.plan.canary == version else serving.plan.canary_share,
            )
            if _write_plan(ports, serving, remaining):
                return "taken out of the plan"
        else:
            return "it was no longer served"
    raise RuntimeError(f"serving/live.json kept moving: {version} may still be served")


def _mark_rolled_back(ports: Ports, version: str, to: str, now: datetime) -> None:
    state = read_state(ports.models)
    promotion = state.get("last_promotion") or {}
    if promotion.get("version") == version:
        state["last_promotion"] = {**promotion, "rolled_back_at": utc_iso(now)}
    state["last_rollback"] = {"from": version, "to": to, "at": utc_iso(now)}
    write_state(ports.models, state)


def _moved_meanwhile(step: Step) -> Decision:
    """Another invocation wrote serving/live.json after this one read it (a duplicate schedule delivery,
    a direct check, an alarm): this one decides nothing; the next check sees what moved."""
    stage = step.rollout["stage"]
    verdict = f"{stage}, not decided: serving/live.json moved while this check ran"
    record = {**step.base, "verdict": verdict, "stage": stage}
    return record_decision(step.ports, step.now, DecisionKind.ROLLOUT, record)


def _end(step: Step, verdict: str, stage: Stage = Stage.RETIRED) -> Decision:
    ports, rollout = step.ports, step.rollout
    state = read_state(ports.models)
    state[STATE_FIELD] = {
        **rollout,
        "stage": stage,
        "stage_started_at": utc_iso(step.now),
        "verdict": verdict,
    }
    write_state(ports.models, state)
    record = {**step.base, "verdict": verdict, "stage": stage, "version": rollout["version"]}
    _tell(ports, step.config, f"{rollout['version']} {stage}", record)
    kind = DecisionKind.RETIRED if stage == Stage.RETIRED else DecisionKind.ROLLOUT
    return record_decision(ports, step.now, kind, record, rollout["version"])


def _enter(step: Step, verdict: str, stage: Stage) -> Decision:
    ports, rollout = step.ports, step.rollout
    state = read_state(ports.models)
    state[STATE_FIELD] = {**rollout, "stage": stage, "stage_started_at": utc_iso(step.now)}
    write_state(ports.models, state)
    record = {
        **step.base,
        "verdict": verdict,
        "stage": stage,
        "version": rollout["version"],
        **_names(rollout),
    }
    _tell(ports, step.config, f"{rollout['version']}: {stage}", record)
    return record_decision(ports, step.now, DecisionKind.ROLLOUT, record, rollout["version"])


def _approval_check(trigger: Trigger, step: Step, serving: Serving) -> Decision | None:
    hours = step.config.approval_hours
    waited = step.now - parse_utc(step.rollout["stage_started_at"])
    if waited >= timedelta(hours=hours):
        return _retire(step, serving, f"the approval expired after {hours:g} h")
    if trigger.source == Source.SCHEDULE:
        return None
    verdict = f"awaiting approval for {waited / timedelta(hours=1):.1f} h of {hours:g}"
    record = {**step.base, "verdict": verdict, "stage": Stage.AWAITING_APPROVAL}
    return record_decision(step.ports, step.now, DecisionKind.ROLLOUT, record)


def _awaiting(
    trigger: Trigger, ports: Ports, config: RetrainConfig, now: datetime, actor: str
) -> tuple[Step, Serving] | Decision:
    """The rollout awaiting an approval of `trigger.version`, or the refusal, audited."""
    base = record_base(trigger, config, now, actor)
    rollout = active(read_state(ports.models))
    serving = _read_serving(ports)
    problem = None
    if rollout is None or rollout["stage"] != Stage.AWAITING_APPROVAL:
        problem = "no version is awaiting approval"
    elif rollout["version"] != trigger.version:
        problem = f"version {rollout['version']} is awaiting approval, not {trigger.version}"
    elif serving is None or serving.live.version != rollout["live_version"]:
        problem = "serving/live.json moved since the rollout began"
    elif now - parse_utc(rollout["stage_started_at"]) >= timedelta(hours=config.approval_hours):
        problem = f"its approval expired after {config.approval_hours:g} h"
    if problem is not None or rollout is None or serving is None:
        verdict = f"refused: {trigger.action} {trigger.version}: {problem}"
        return record_decision(ports, now, DecisionKind.INVALID_REQUEST, {**base, "verdict": verdict})
    return Step(ports, config, now, {**base, **_names(rollout)}, rollout), serving


# ------------------------------------------------------------------------------------ serving, news
def _backed(ports: Ports, rollout: dict[str, Any]) -> str | None:
    """Why a challenger the served rides did not decide on goes on: better than the live model on the
    trusted evaluation set (as in the rollback check). None: it does not."""
    return better_on_evaluation_set(ports, *_bundles(ports, rollout))


def _worse_on_evaluation_set(ports: Ports, rollout: dict[str, Any]) -> str | None:
    """Why a challenger the served rides call better does not go live: on the trusted evaluation set it
    is worse than the live model by more than the gate allows (clients report the labels the served
    rides are judged on, and can echo the answers they were given), or that set cannot be read."""
    scored = evaluation_set_maes(ports, *_bundles(ports, rollout))
    if scored is None:
        return "the evaluation set cannot be read (a promotion fails closed, as the gate does)"
    if scored.mae <= scored.reference_mae + EVAL_MARGIN:
        return None
    return (
        f"on the evaluation set {scored.month} MAE {scored.mae:.3f} vs live {scored.reference_mae:.3f},"
        f" beyond the gate's margin {EVAL_MARGIN:g}"
    )


def _bundles(ports: Ports, rollout: dict[str, Any]) -> tuple[bytes, bytes]:
    """The challenger's and the live model's bundle bodies (unservable() has checked the challenger's)."""
    bodies = []
    for key in ("version", "live_version"):
        pointer = version_pointer(ports.models, rollout[key])
        body = None if pointer is None else ports.models.get(pointer.bundle_key)
        if body is None:
            raise RuntimeError(f"version {rollout[key]}'s pointer or bundle is gone")
        bodies.append(body)
    return bodies[0], bodies[1]


def unservable(ports: Ports, version: str) -> str | None:
    """Why the predict function would refuse `version` (pointer, bundle, checksum, smoke test); None: it
    would serve it. A refused challenger scores no ride: it must not go on by the clock."""
    pointer = version_pointer(ports.models, version)
    body = None if pointer is None else ports.models.get(pointer.bundle_key)
    if pointer is None or body is None:
        return f"version {version}'s pointer or bundle is gone"
    try:
        load_servable(body, pointer.bundle_sha256)
    except Exception as exc:
        return f"version {version} would not be served: {exc}"[:MAX_PROBLEM_CHARS]
    return None


def _read_serving(ports: Ports) -> Serving | None:
    tagged = ports.models.get_tagged(LIVE_POINTER_KEY)
    if tagged is None:
        return None
    document = json.loads(tagged.body)
    live = ModelPointer.from_dict(document)
    try:
        plan = plan_of(document, live.version)
    except PlanError as exc:  # serving follows no such plan either (model_provider): the next write drops it
        logger.error("the live pointer's traffic plan is refused", extra={"error": str(exc)})
        plan = NO_PLAN
    return Serving(tagged, live, plan)


def _write_plan(ports: Ports, serving: Serving, plan: TrafficPlan) -> bool:
    body = live_document(serving.live, plan)
    return ports.models.put_if_match(LIVE_POINTER_KEY, body, serving.tagged.etag) is not None


def _names(rollout: dict[str, Any]) -> dict[str, Any]:
    return {"challenger_version": rollout["version"], "live_version": rollout["live_version"]}


def _tell(ports: Ports, config: RetrainConfig, subject: str, record: dict[str, Any]) -> None:
    """The rollout topic hears every step with its evidence; a topic that fails loses only the news."""
    if ports.notifier is None:
        return
    try:
        ports.notifier.publish(
            f"trip-duration rollout: {subject}"[:100], json.dumps(record, default=str, indent=1)
        )
    except Exception as exc:
        logger.warning(f"rollout news not published: {exc}")
