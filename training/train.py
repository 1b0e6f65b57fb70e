"""`python -m training.train --train FILE [FILE ...] --valid FILE [--out DIR]`

Loads the months, fits the model, exports the serving bundle (checked for parity with the sklearn
model), builds the reference profile, logs and registers the run in MLflow, then gates it against
the alias holder and, on promotion, moves the alias and publishes the live pointer to S3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from training import data as data_mod
from training import metrics, model, tracking
from training.export import export_bundle
from training.gate import Candidate, GateConfig, gate_and_publish
from training.publish import S3ObjectStore
from trip_core.bundle import load_bundle
from trip_core.contracts import (
    BUNDLE_FILENAME,
    DEFAULT_MODEL_NAME,
    PARITY_TOLERANCE_MINUTES,
    PRODUCTION_ALIAS,
    PROFILE_FILENAME,
)
from trip_core.features import MONITORED_FEATURES, feature_column
from trip_core.profile import build_reference_profile

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
        "--margin", type=float, default=GateConfig.margin, help="RMSE minutes to beat the champion by"
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

    log.info("loading %d training month(s) and the validation month", len(args.train))
    train_months = data_mod.load_months(args.train)
    valid_month = data_mod.load_month(args.valid)
    for month in [*train_months, valid_month]:
        log.info("  %s: %d rows read, %d kept", month.source, month.rows_read, month.rows)
    train = data_mod.concat(train_months)
    x_train, y_train = data_mod.frame_features(train), train["duration"].to_numpy()
    x_valid, y_valid = data_mod.frame_features(valid_month.frame), valid_month.frame["duration"].to_numpy()

    log.info("fitting on %d rows", len(y_train))
    fit_started = time.perf_counter()
    fitted = model.fit(x_train, y_train, params)
    fit_seconds = time.perf_counter() - fit_started
    pred = model.predict(fitted, x_valid)
    scores = {"rmse": metrics.rmse(pred, y_valid), "mae": metrics.mae(pred, y_valid)}
    log.info(
        "fitted %d trees in %.1f s; validation RMSE %.3f, MAE %.3f",
        fitted[-1].n_iter_,
        fit_seconds,
        *scores.values(),
    )

    bundle_bytes = export_bundle(
        fitted,
        {
            "model_name": args.model_name,
            "train_files": args.train,
            "valid_file": args.valid,
            "validation": scores,
            "params": params.as_dict(),
        },
    )
    bundle = load_bundle(bundle_bytes)
    bundle_pred = bundle.predict(x_valid)
    parity = float(np.max(np.abs(bundle_pred - pred)))
    if parity > PARITY_TOLERANCE_MINUTES:
        raise RuntimeError(
            f"bundle predictions differ from the model by {parity} min (> {PARITY_TOLERANCE_MINUTES})"
        )
    log.info("bundle: %d bytes, parity max |diff| %.2e min", len(bundle_bytes), parity)

    profile = build_reference_profile(
        {name: feature_column(x_valid, name) for name in MONITORED_FEATURES}, bundle_pred
    )
    profile_bytes = json.dumps(profile, sort_keys=True).encode()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / BUNDLE_FILENAME).write_bytes(bundle_bytes)
    (args.out / PROFILE_FILENAME).write_bytes(profile_bytes)

    files = [
        {"role": role, "source": m.source, "sha256": m.sha256, "rows_read": m.rows_read, "rows": m.rows}
        for role, m in [*(("train", m) for m in train_months), ("valid", valid_month)]
    ]
    all_metrics = {
        **scores,
        **metrics.per_borough(pred, y_valid, x_valid),
        "parity_max_abs_diff": parity,
        "fit_seconds": fit_seconds,
        "bundle_bytes": float(len(bundle_bytes)),
        "n_trees": float(fitted[-1].n_iter_),
        "rows_train": float(len(y_train)),
        "rows_valid": float(len(y_valid)),
    }
    uri = tracking.configure()
    log.info("tracking to %s", uri)
    run = tracking.log_training_run(
        model_name=args.model_name,
        model=fitted,
        valid_features=x_valid,
        params={**params.as_dict(), "train_files": ",".join(args.train), "valid_file": args.valid},
        metrics=all_metrics,
        data={"files": files},
        out_dir=args.out,
        bundle_sha256=bundle.sha256,
    )
    log.info("registered %s version %s (run %s)", args.model_name, run.version, run.run_id)
    decision = gate_and_publish(
        Candidate(
            model_name=args.model_name,
            version=run.version,
            run_id=run.run_id,
            bundle=bundle_bytes,
            profile=profile_bytes,
            rmse=scores["rmse"],
            mae=scores["mae"],
            bundle_sha256=bundle.sha256,
        ),
        tracking.MlflowRegistry(),
        S3ObjectStore(args.models_bucket) if args.models_bucket else None,
        x_valid,
        y_valid,
        GateConfig(alias=args.alias, margin=args.margin, absolute_bound=args.absolute_bound),
    )
    summary: dict[str, object] = {
        "model": args.model_name,
        "version": run.version,
        "run_id": run.run_id,
        "rows_train": len(y_train),
        "rows_valid": len(y_valid),
        "rmse": round(scores["rmse"], 4),
        "mae": round(scores["mae"], 4),
        "promoted": decision.promote,
        "verdict": decision.verdict,
        "bundle": str(args.out / BUNDLE_FILENAME),
        "bundle_bytes": len(bundle_bytes),
        "parity_max_abs_diff": parity,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
