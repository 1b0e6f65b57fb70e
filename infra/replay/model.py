"""The replayed model: trained as `make train` trains it (training.pipeline, without MLflow), or a bundle
directory (bundle.npz + reference_profile.json, what `make train --out` writes)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from training import data as data_mod
from training import model, pipeline
from training.train import bundle_meta, frame_rows, load_data, write_outputs
from trip_core.bundle import load_bundle
from trip_core.contracts import BUNDLE_FILENAME, DEFAULT_MODEL_NAME, PROFILE_FILENAME, TRAINING_ROWS_FILENAME


@dataclass(frozen=True)
class ModelFiles:
    bundle: bytes
    profile: bytes
    sha256: str
    validation_rmse: float
    validation_mae: float
    training_rows: bytes | None  # training.pipeline.encode_rows of what it was fitted on (None: unknown)


def train_model(
    train: Sequence[str], valid: str, out: Path, max_iter: int = model.ModelParams.max_iter
) -> ModelFiles:
    """Fit, parity-check, profile (training.pipeline.train_candidate); the bundle directory goes to `out`."""
    args = argparse.Namespace(train=list(train), valid=valid, model_name=DEFAULT_MODEL_NAME)
    params = model.ModelParams(max_iter=max_iter)
    train_months, valid_month = load_data(args)
    train_rows = frame_rows(data_mod.concat(train_months))
    trained = pipeline.train_candidate(
        train_rows,
        frame_rows(valid_month.frame),
        params,
        bundle_meta(args, params),
        frame_rows(valid_month.inputs),
    )
    write_outputs(out, trained, train_rows)
    return ModelFiles(
        trained.bundle,
        trained.profile,
        trained.bundle_sha256,
        trained.rmse,
        trained.mae,
        pipeline.encode_rows(train_rows),
    )


def bundle_dir(path: Path) -> ModelFiles:
    data = (path / BUNDLE_FILENAME).read_bytes()
    bundle = load_bundle(data)
    scores = bundle.meta["validation"]
    rows = path / TRAINING_ROWS_FILENAME
    return ModelFiles(
        data,
        (path / PROFILE_FILENAME).read_bytes(),
        bundle.sha256,
        scores["rmse"],
        scores["mae"],
        rows.read_bytes() if rows.exists() else None,
    )
