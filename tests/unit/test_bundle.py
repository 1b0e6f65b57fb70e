"""Serving bundle: parity with the sklearn model on a whole month, checksum/corruption errors, load time."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from training.data import concat, frame_features, load_month
from training.export import export_bundle
from training.model import ModelParams, fit, predict
from trip_core.bundle import BundleError, dump_bundle, load_bundle

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def fitted() -> tuple[Pipeline, np.ndarray]:
    train = concat([load_month(str(DATA / "green_tripdata_2023-02.parquet"))]).sample(8000, random_state=0)
    model = fit(frame_features(train), train["duration"].to_numpy(), ModelParams(max_iter=40))
    valid = load_month(str(DATA / "green_tripdata_2023-03.parquet")).frame
    return model, frame_features(valid)


@pytest.fixture(scope="module")
def bundle_bytes(fitted: tuple[Pipeline, np.ndarray]) -> bytes:
    return export_bundle(fitted[0], {"model_name": "trip-duration"})


def test_parity_on_the_whole_validation_month(
    fitted: tuple[Pipeline, np.ndarray], bundle_bytes: bytes
) -> None:
    model, features = fitted
    bundle = load_bundle(bundle_bytes)
    diff = np.abs(bundle.predict(features) - predict(model, features))
    assert len(features) > 60_000
    assert diff.max() < 1e-3
    assert bundle.model_name == "trip-duration"


def test_unseen_zone_pair_and_missing_values_follow_sklearn(
    fitted: tuple[Pipeline, np.ndarray], bundle_bytes: bytes
) -> None:
    model, features = fitted
    odd = features[:50].copy()
    odd[:10, 2] = 999_999.0  # pair never seen in training -> target mean
    odd[10:20, 3] = np.nan  # distance missing -> the trees' missing-value branch
    np.testing.assert_allclose(load_bundle(bundle_bytes).predict(odd), predict(model, odd), atol=1e-9)


def test_checksum_verified(bundle_bytes: bytes) -> None:
    import hashlib

    good = hashlib.sha256(bundle_bytes).hexdigest()
    assert load_bundle(bundle_bytes, expected_sha256=good).sha256 == good
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(bundle_bytes, expected_sha256="0" * 64)


@pytest.mark.parametrize("mangle", [lambda b: b[: len(b) // 2], lambda b: b"not a bundle", lambda b: b""])
def test_corrupt_bytes_raise_bundle_error(bundle_bytes: bytes, mangle: object) -> None:
    with pytest.raises(BundleError, match="corrupt"):
        load_bundle(mangle(bundle_bytes))  # type: ignore[operator]


def test_incomplete_or_foreign_bundle_rejected(bundle_bytes: bytes) -> None:
    bundle = load_bundle(bundle_bytes)
    arrays = dict(bundle.arrays)
    with pytest.raises(BundleError, match="lacks"):
        dump_bundle({"model_name": "x"}, {k: v for k, v in arrays.items() if k != "roots"})
    with pytest.raises(BundleError, match="features"):
        load_bundle(dump_bundle({"model_name": "x", "feature_names": ["a"]}, arrays))


def test_rejects_a_wrong_shaped_matrix(bundle_bytes: bytes) -> None:
    with pytest.raises(ValueError, match="feature matrix"):
        load_bundle(bundle_bytes).predict(np.zeros((3, 4)))


def test_loads_fast_and_predicts_100_rows_fast(
    fitted: tuple[Pipeline, np.ndarray], bundle_bytes: bytes
) -> None:
    started = time.perf_counter()
    bundle = load_bundle(bundle_bytes)
    assert time.perf_counter() - started < 0.05
    bundle.predict(fitted[1][:100])


def test_bundle_module_imports_numpy_and_stdlib_only() -> None:
    code = (
        "import sys, trip_core.bundle; "
        "bad = {'pandas', 'sklearn', 'scipy', 'mlflow', 'boto3', 'pyarrow'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
