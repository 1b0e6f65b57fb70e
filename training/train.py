"""`python -m training.train --train FILE [FILE ...] --valid FILE [--out DIR]`

Loads the months, turns them into a candidate with training.pipeline (fit, parity-checked serving
bundle, reference profile of the validation month, scores), logs and registers the run in MLflow,
then gates it against the alias holder (training.gate: the paired rule on the validation month, and the
trusted evaluation set, built from --evaluation-month or the validation month and published to the
models bucket) and, on promotion, moves the alias and publishes the live pointer to S3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training import data as data_mod
from training import evaluation_set as evaluation_module
from training import metrics, model, pipeline, tracking
from training.evaluation_set import EvaluationSet
from training.gate import GateConfig, GateDecision, Rides, Yardstick, gate_and_publish
from training.publish import S3ObjectStore
from trip_core.contracts import (
    BUNDLE_FILENAME,
    DEFAULT_MODEL_NAME,
    PRODUCTION_ALIAS,
    PROFILE_FILENAME,
    TRAINING_ROWS_FILENAME,
    evaluation_key,
    training_rows_key,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("training")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--train", nargs="+", required=True, metavar="FILE", help="training months (path or s3://)"
    )
    parser.add_argument(
        "--valid", required=True, metavar="FILE", help="validation month, after the training months"
    )
    parser.add_argument(
        "--out", type=Path, default=tracking.PROJECT_ROOT / "artifacts" / "model", metavar="DIR"
    )
    parser.add_argument("--model-name", default=os.environ.get("MODEL_NAME", DEFAULT_MODEL_NAME))
    parser.add_argument("--alias", default=PRODUCTION_ALIAS)
    parser.add_argument(
        "--evaluation-month",
        metavar="FILE",
        help="the trusted evaluation set's month, published to the models bucket (default: --valid)",
    )
    parser.add_argument(
        "--absolute-bound", type=float, default=GateConfig.absolute_bound, help="RMSE bound, first model"
    )
    parser.add_argument(
        "--models-bucket", default=os.environ.get("MODELS_BUCKET"), help="default: $MODELS_BUCKET"
    )
    parser.add_argument(
        "--max-iter", type=int, default=model.ModelParams.max_iter, help="boosting iterations (max)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    params = model.ModelParams(max_iter=args.max_iter)
    train_months, valid_month = load_data(args)
    train = frame_rows(data_mod.concat(train_months))
    valid = frame_rows(valid_month.frame)
    store = S3ObjectStore(args.models_bucket) if args.models_bucket else None
    yardstick, yardstick_body = evaluation_set(args)
    log.info("fitting on %d rows", len(train))
    trained = pipeline.train_candidate(
        train, valid, params, bundle_meta(args, params, yardstick), frame_rows(valid_month.inputs)
    )
    log.info(
        "fitted %d trees in %.1f s; validation RMSE %.3f, MAE %.3f; bundle %d bytes, parity %.2e min",
        trained.n_trees,
        trained.fit_seconds,
        trained.rmse,
        trained.mae,
        len(trained.bundle),
        trained.parity_max_abs_diff,
    )
    write_outputs(args.out, trained, train)
    months = [*(("train", m) for m in train_months), ("valid", valid_month)]
    run = track(args, params, trained, train, valid, months, yardstick)
    publish_evaluation_set(store, yardstick, yardstick_body)
    if store is not None:  # what the loop mixes in when it retrains against this version
        rows_key = training_rows_key(args.model_name, run.version)
        store.put(rows_key, pipeline.encode_rows(train), "application/octet-stream")
    decision = gate_and_publish(
        trained.candidate(args.model_name, run.version, run.run_id),
        tracking.MlflowRegistry(),
        store,
        gate_rides(valid_month.frame),
        GateConfig(alias=args.alias, absolute_bound=args.absolute_bound),
        Yardstick(yardstick, required=True),
    )
    summary = summarise(args, run, trained, decision, (len(train), len(valid)))
    summary["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(summary))
    return summary


def summarise(
    args: argparse.Namespace,
    run: tracking.TrackedRun,
    trained: pipeline.TrainedCandidate,
    decision: GateDecision,
    rows: tuple[int, int],
) -> dict[str, object]:
    """The one JSON line the CLI prints (infra/loop_demo.py and the Makefile read it)."""
    return {
        "model": args.model_name,
        "version": run.version,
        "run_id": run.run_id,
        "rows_train": rows[0],
        "rows_valid": rows[1],
        "rmse": round(trained.rmse, 4),
        "mae": round(trained.mae, 4),
        "promoted": decision.promote,
        "verdict": decision.verdict,
        "bundle": str(args.out / BUNDLE_FILENAME),
        "bundle_bytes": len(trained.bundle),
        "parity_max_abs_diff": trained.parity_max_abs_diff,
    }


def load_data(args: argparse.Namespace) -> tuple[list[data_mod.MonthData], data_mod.MonthData]:
    log.info("loading %d training month(s) and the validation month", len(args.train))
    train_months = data_mod.load_months(args.train)
    valid_month = data_mod.load_month(args.valid)
    for month in [*train_months, valid_month]:
        log.info("  %s: %d rows read, %d kept", month.source, month.rows_read, month.rows)
    return train_months, valid_month


def evaluation_set(args: argparse.Namespace) -> tuple[EvaluationSet, bytes]:
    """The trusted evaluation set of this run, built from its month (and its npz bytes)."""
    month, body = evaluation_module.from_month(args.evaluation_month or args.valid)
    return evaluation_module.decode(month, evaluation_key(month), body), body


def publish_evaluation_set(store: S3ObjectStore | None, evaluation: EvaluationSet, body: bytes) -> None:
    """Once the run is tracked: a run that fails before publishes nothing."""
    if store is not None:
        evaluation_module.publish(store, evaluation.month, body)
        log.info("published the evaluation set %s (sha256 %s)", evaluation.key, evaluation.sha256)


def gate_rides(frame: pd.DataFrame) -> Rides:
    return Rides(
        data_mod.frame_features(frame),
        frame["duration"].to_numpy(),
        frame[data_mod.PICKUP].to_numpy().astype("datetime64[s]"),
    )


def frame_rows(frame: pd.DataFrame) -> pipeline.Rows:
    return pipeline.Rows(
        data_mod.frame_features(frame),
        frame["duration"].to_numpy(),
        frame[data_mod.PICKUP].to_numpy().astype("datetime64[D]"),
    )


def bundle_meta(
    args: argparse.Namespace, params: model.ModelParams, evaluation: EvaluationSet | None = None
) -> dict[str, object]:
    """What the bundle records of its lineage (the evaluation set it was gated on, when it was)."""
    return {
        "model_name": args.model_name,
        "train_files": args.train,
        "valid_file": args.valid,
        "params": params.as_dict(),
        "evaluation_set": None if evaluation is None else evaluation.lineage(),
    }


def write_outputs(out: Path, trained: pipeline.TrainedCandidate, train: pipeline.Rows) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / BUNDLE_FILENAME).write_bytes(trained.bundle)
    (out / PROFILE_FILENAME).write_bytes(trained.profile)
    (out / TRAINING_ROWS_FILENAME).write_bytes(pipeline.encode_rows(train))


def track(
    args: argparse.Namespace,
    params: model.ModelParams,
    trained: pipeline.TrainedCandidate,
    train: pipeline.Rows,
    valid: pipeline.Rows,
    months: list[tuple[str, data_mod.MonthData]],
    evaluation: EvaluationSet,
) -> tracking.TrackedRun:
    """One MLflow run of the candidate, registered as a new version of the model."""
    all_metrics = {
        "rmse": trained.rmse,
        "mae": trained.mae,
        **metrics.per_borough(trained.predictions, valid.target, valid.features),
        "parity_max_abs_diff": trained.parity_max_abs_diff,
        "fit_seconds": trained.fit_seconds,
        "bundle_bytes": float(len(trained.bundle)),
        "n_trees": float(trained.n_trees),
        "rows_train": float(len(train)),
        "rows_valid": float(len(valid)),
    }
    files = [
        {"role": role, "source": m.source, "sha256": m.sha256, "rows_read": m.rows_read, "rows": m.rows}
        for role, m in months
    ]
    log.info("tracking to %s", tracking.configure())
    run = tracking.log_training_run(
        model_name=args.model_name,
        model=trained.model,
        valid_features=valid.features,
        params={
            **params.as_dict(),
            "train_files": ",".join(args.train),
            "valid_file": args.valid,
            "evaluation_set_key": evaluation.key,
            "evaluation_set_sha256": evaluation.sha256,
        },
        metrics=all_metrics,
        data={"files": files},
        out_dir=args.out,
        bundle_sha256=trained.bundle_sha256,
    )
    log.info("registered %s version %s (run %s)", args.model_name, run.version, run.run_id)
    return run


if __name__ == "__main__":
    main()
