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


def test_leaf_masks_match_the_node_walk_on_odd_inputs(
    fitted: tuple[Pipeline, np.ndarray], bundle_bytes: bytes
) -> None:
    model, features = fitted
    bundle = load_bundle(bundle_bytes)
    assert bundle.evaluator == "leaf-mask"
    odd = features[:400].copy()
    odd[:40, :] = np.nan  # every column missing
    odd[40:80, 3] = np.inf
    odd[80:120, 3] = -np.inf
    odd[120:160, 0] = 999_999.0
    # values exactly on the split thresholds (x <= threshold goes left)
    internal = bundle.arrays["left"] != np.arange(len(bundle.arrays["left"]))
    on_cut = bundle.arrays["threshold"][internal & (bundle.arrays["feature"] == 3)]  # trip_distance input
    odd[160 : 160 + min(len(on_cut), 200), 3] = on_cut[:200]
    np.testing.assert_array_equal(bundle.predict(odd), bundle.predict_walk(odd))
    np.testing.assert_allclose(bundle.predict(odd), predict(model, odd), atol=1e-9)
    assert len(bundle.predict(odd[:0])) == 0


def _random_forest_bundle(leaves_per_tree: int, n_trees: int, seed: int) -> bytes:
    """Random leaf-wise-grown trees (any shape, some a single leaf) over all inputs, NaN branches too."""
    rng = np.random.default_rng(seed)
    n_inputs = 12
    cols: dict[str, list[int | float | bool]] = {
        k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "value")
    }
    roots, depth = [], 0
    for t in range(n_trees):
        offset = len(cols["feature"])
        roots.append(offset)
        n_leaves = 1 if t % 7 == 0 else leaves_per_tree
        # grow: split a random leaf until n_leaves
        nodes: list[list[int | float | bool]] = [
            [0, 0.0, False, 0, 0, rng.normal(), 0]
        ]  # f,thr,ml,l,r,v,depth
        open_leaves = [0]
        while len(open_leaves) < n_leaves:
            i = open_leaves.pop(int(rng.integers(len(open_leaves))))
            nodes[i][0] = int(rng.integers(n_inputs))
            nodes[i][1] = float(rng.integers(0, 8))  # few distinct cuts: many ties
            nodes[i][2] = bool(rng.integers(2))
            for side in (3, 4):
                nodes[i][side] = len(nodes)
                open_leaves.append(len(nodes))
                nodes.append([0, 0.0, False, 0, 0, rng.normal(), int(nodes[i][6]) + 1])
            nodes[i][5] = 0.0
        for j, (f, thr, ml, lft, rgt, v, d) in enumerate(nodes):
            leaf = j in open_leaves
            cols["feature"].append(0 if leaf else f)
            cols["threshold"].append(0.0 if leaf else thr)
            cols["missing_left"].append(ml)
            cols["left"].append(offset + (j if leaf else int(lft)))
            cols["right"].append(offset + (j if leaf else int(rgt)))
            cols["value"].append(v if leaf else 0.0)
            depth = max(depth, int(d))
    arrays: dict[str, np.ndarray] = {
        "te_columns": np.array([], dtype=np.int64),
        "te_offsets": np.array([0], dtype=np.int64),
        "te_categories": np.array([], dtype=np.float64),
        "te_values": np.array([], dtype=np.float64),
        "te_default": np.array([], dtype=np.float64),
        "passthrough_columns": np.arange(n_inputs, dtype=np.int64),
        "feature": np.array(cols["feature"], dtype=np.int32),
        "threshold": np.array(cols["threshold"], dtype=np.float64),
        "missing_left": np.array(cols["missing_left"], dtype=bool),
        "left": np.array(cols["left"], dtype=np.int32),
        "right": np.array(cols["right"], dtype=np.int32),
        "value": np.array(cols["value"], dtype=np.float64),
        "roots": np.array(roots, dtype=np.int32),
        "baseline": np.array(3.0),
        "depth": np.array(depth, dtype=np.int64),
    }
    return dump_bundle({"model_name": "random"}, arrays)


@pytest.mark.parametrize(("leaves", "evaluator"), [(31, "leaf-mask"), (64, "leaf-mask"), (65, "walk")])
def test_any_tree_shape_predicts_like_the_node_walk(leaves: int, evaluator: str) -> None:
    bundle = load_bundle(_random_forest_bundle(leaves, n_trees=40, seed=leaves))
    assert bundle.evaluator == evaluator
    rng = np.random.default_rng(1)
    x = rng.integers(-1, 9, size=(3000, 12)).astype(np.float64)  # on, between and beyond the cuts
    x[rng.random(x.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(bundle.predict(x), bundle.predict_walk(x))
    if evaluator == "leaf-mask":  # columns with few cuts share joint tables; buffers reused across calls
        assert bundle._forest is not None and len(bundle._forest._groups) < 12
        np.testing.assert_array_equal(bundle.predict(x[:7]), bundle.predict_walk(x[:7]))
        np.testing.assert_array_equal(bundle.predict(x), bundle.predict_walk(x))


def test_bundle_module_imports_numpy_and_stdlib_only() -> None:
    code = (
        "import sys, trip_core.bundle; "
        "bad = {'pandas', 'sklearn', 'scipy', 'mlflow', 'boto3', 'pyarrow'} & set(sys.modules); "
        "sys.exit(f'imported {bad}' if bad else 0)"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)
