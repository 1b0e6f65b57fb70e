"""Serving bundle: parity with the sklearn model on a whole month, checksum/corruption errors, load time;
untrusted bytes: size bounds before decompression (zip bombs), headers, indices."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from tests.doubles.predict import broken_bundle
from training.data import concat, frame_features, load_month
from training.export import export_bundle
from training.model import ModelParams, fit, predict
from trip_core import bundle as bundle_module
from trip_core.bundle import BundleError, dump_bundle, load_bundle
from trip_core.contracts import MAX_BUNDLE_MEMBERS, MAX_BUNDLE_UNCOMPRESSED_BYTES, MODEL_PARAM_BOUNDS
from trip_core.zones import zone_table

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


def test_loads_and_predicts_100_rows(fitted: tuple[Pipeline, np.ndarray], bundle_bytes: bytes) -> None:
    assert load_bundle(bundle_bytes).predict(fitted[1][:100]).shape == (100,)


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


# ------------------------------------------------------------------------------ untrusted bytes


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


def _npz_members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_largest_model_the_params_allow_fits_the_bounds(bundle_bytes: bytes) -> None:
    """MAX_BUNDLE_UNCOMPRESSED_BYTES refuses no model a retrain may fit: MODEL_PARAM_BOUNDS' most trees
    of the most leaves (2 * leaves - 1 nodes), and target encodings of every zone and zone pair."""
    arrays = load_bundle(bundle_bytes).arrays
    per_node = sum(
        arrays[name].itemsize for name in ("feature", "threshold", "missing_left", "left", "right", "value")
    )
    trees, leaves = MODEL_PARAM_BOUNDS["max_iter"][2], MODEL_PARAM_BOUNDS["max_leaf_nodes"][2]
    zones = zone_table().max_location_id + 1
    encodings = (2 * zones + zones**2) * (arrays["te_categories"].itemsize + arrays["te_values"].itemsize)
    largest = (
        int(trees) * (2 * int(leaves) - 1) * per_node + int(trees) * arrays["roots"].itemsize + encodings
    )
    assert largest < MAX_BUNDLE_UNCOMPRESSED_BYTES
    assert len(_npz_members(bundle_bytes)) <= MAX_BUNDLE_MEMBERS


def test_an_object_over_the_size_bound_is_refused_unread(
    bundle_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_BYTES", len(bundle_bytes) - 1)
    monkeypatch.setattr(zipfile, "ZipFile", None)  # not even opened
    with pytest.raises(BundleError, match=f"is {len(bundle_bytes)} bytes, over MAX_BUNDLE_BYTES"):
        load_bundle(bundle_bytes)


def test_members_declaring_more_than_the_bound_are_refused_before_decompression(
    bundle_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _npz_members(bundle_bytes)
    bomb = _zip({**members, "value.npy": members["value.npy"] + b"\0" * 2**21})  # 2 MiB more, ~2 KiB zipped
    assert len(bomb) < len(bundle_bytes) + 2**13
    monkeypatch.setattr(bundle_module, "MAX_BUNDLE_UNCOMPRESSED_BYTES", 2**21)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a member was opened")

    monkeypatch.setattr(zipfile.ZipFile, "open", never)
    with pytest.raises(
        BundleError, match=r"members declare \d+ bytes uncompressed, over MAX_BUNDLE_UNCOMPRESSED"
    ):
        load_bundle(bomb)


def test_a_member_that_lies_about_its_size_is_read_no_further_than_it_declares() -> None:
    """A zip bomb whose central directory understates a member: it is read in bounded steps up to the
    size it declares, where the CRC fails; the 64 MiB it holds are never decompressed (numpy's np.load
    reads a member that is not an .npy array whole, however far it inflates)."""
    inflated, declared = 64 * 2**20, 2**20
    data = bytearray(_zip({"meta.npy": b"\0" * inflated}))
    directory = data.rfind(b"PK\x01\x02")
    assert struct.unpack_from("<I", data, directory + 24)[0] == inflated
    struct.pack_into("<I", data, directory + 24, declared)  # the uncompressed size the directory declares
    tracemalloc.start()
    try:
        with pytest.raises(BundleError, match="Bad CRC-32"):
            load_bundle(bytes(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * declared


def test_too_many_members_are_refused(bundle_bytes: bytes) -> None:
    members = {**_npz_members(bundle_bytes), **{f"extra{i}.npy": b"" for i in range(MAX_BUNDLE_MEMBERS)}}
    with pytest.raises(BundleError, match="members, over MAX_BUNDLE_MEMBERS"):
        load_bundle(_zip(members))


def test_a_header_promising_more_data_than_the_member_holds_is_refused(bundle_bytes: bytes) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    members = {**_npz_members(bundle_bytes), "value.npy": header.getvalue() + b"\0" * 64}
    with pytest.raises(
        BundleError, match=r"'value.npy' holds 64 bytes of data, its header says 8796093022208"
    ):
        load_bundle(_zip(members))


def test_members_compressed_other_than_by_deflate_are_refused(bundle_bytes: bytes) -> None:
    with pytest.raises(BundleError, match="uses compression method 12"):
        load_bundle(_zip(_npz_members(bundle_bytes), zipfile.ZIP_BZIP2))


def test_an_npy_file_or_pickled_arrays_are_refused(bundle_bytes: bytes) -> None:
    single = io.BytesIO()
    np.save(single, np.zeros(3))
    with pytest.raises(BundleError, match="corrupt"):
        load_bundle(single.getvalue())
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(BundleError, match="holds Python objects"):
        load_bundle(_zip({**_npz_members(bundle_bytes), "value.npy": pickled.getvalue()}))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (
            {"feature": np.array([12, 0, 0], dtype=np.int32)},
            r"'feature' holds indices in \[0, 12\], outside \[0, 12\)",
        ),
        (
            {"feature": np.array([-1, 0, 0], dtype=np.int32)},
            r"'feature' holds indices in \[-1, 0\], outside \[0, 12\)",
        ),
        ({"passthrough_columns": np.arange(1, 13)}, r"'passthrough_columns' holds indices in \[1, 12\]"),
        (
            {"left": np.array([-1, 1, 2], dtype=np.int32)},
            r"'left' holds indices in \[-1, 2\], outside \[0, 3\)",
        ),
        ({"roots": np.array([3], dtype=np.int32)}, r"'roots' holds indices in \[3, 3\]"),
        (
            {"te_columns": np.array([0]), "te_offsets": np.array([0, 2]), "te_default": np.array([1.0])},
            r"te_offsets \[0, 2\] do not split 0 categories",
        ),
        ({"te_columns": np.array([0]), "te_offsets": np.array([0, 0])}, "target encodings are inconsistent"),
        ({"baseline": np.array([5.0, 5.0])}, r"'baseline' has shape \(2,\)"),
    ],
)
def test_indices_outside_their_arrays_are_refused_at_load(
    arrays: dict[str, np.ndarray], message: str
) -> None:
    """Out-of-range columns or children would raise at predict time, or (negative) silently read another
    row's values: refused when the bundle loads."""
    with pytest.raises(BundleError, match=message):
        load_bundle(broken_bundle(**arrays))


def test_unsorted_categories_are_refused() -> None:
    encodings = {
        "te_columns": np.array([0]),
        "te_offsets": np.array([0, 2]),
        "te_categories": np.array([7.0, 3.0]),
        "te_values": np.array([1.0, 2.0]),
        "te_default": np.array([1.0]),
        "passthrough_columns": np.arange(1, 12),
    }
    load_bundle(broken_bundle(**{**encodings, "te_categories": np.array([3.0, 7.0])}))
    with pytest.raises(BundleError, match="not strictly increasing"):
        load_bundle(broken_bundle(**encodings))


def test_loaded_arrays_are_read_only(bundle_bytes: bytes) -> None:
    bundle = load_bundle(bundle_bytes)
    assert not any(array.flags.writeable for array in bundle.arrays.values())
