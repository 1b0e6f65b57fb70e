"""The serving bundle: one `bundle.npz` holding the encoding tables and the boosted trees, evaluated
with numpy alone.

The prediction Lambda cannot afford scikit-learn/mlflow (seconds of cold start, over the zip limit),
so training exports the fitted model to plain arrays (training/export.py) and this module walks
the trees itself. Layout (all arrays, loaded with `allow_pickle=False`):

- `meta`: JSON string (format, model_name, feature_names, ...)
- target encodings of some feature columns: `te_columns` (indices into FEATURE_NAMES),
  `te_offsets` (k+1), `te_categories` / `te_values` (sorted categories and their encodings,
  concatenated), `te_default` (k, for unseen categories); then `passthrough_columns`.
  The model's input is [encodings..., passthrough...].
- trees, all nodes concatenated: `feature`, `threshold`, `missing_left`, `left`, `right`
  (absolute indices; a leaf points to itself), `value`, `roots`, `baseline`, `depth` (max depth).
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from trip_core.features import FEATURE_NAMES

BUNDLE_FILENAME = "bundle.npz"
BUNDLE_FORMAT = 1
_ROWS_PER_CHUNK = 512  # bounds the (rows x trees) node-index matrix

_ARRAYS: dict[str, str] = {
    "te_columns": "i",
    "te_offsets": "i",
    "te_categories": "f",
    "te_values": "f",
    "te_default": "f",
    "passthrough_columns": "i",
    "feature": "i",
    "threshold": "f",
    "missing_left": "b",
    "left": "i",
    "right": "i",
    "value": "f",
    "roots": "i",
    "baseline": "f",
    "depth": "i",
}


class BundleError(ValueError):
    """The bundle bytes are not a usable bundle (checksum mismatch, corrupt, incompatible)."""


@dataclass(frozen=True)
class ServingBundle:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    sha256: str

    @property
    def model_name(self) -> str:
        return str(self.meta["model_name"])

    @property
    def n_trees(self) -> int:
        return len(self.arrays["roots"])

    def model_input(self, features: np.ndarray) -> np.ndarray:
        """Feature matrix -> the trees' input: target encodings, then passthrough columns."""
        a = self.arrays
        encoded = []
        for i, column in enumerate(a["te_columns"]):
            categories = a["te_categories"][a["te_offsets"][i] : a["te_offsets"][i + 1]]
            values = a["te_values"][a["te_offsets"][i] : a["te_offsets"][i + 1]]
            x = features[:, column]
            pos = np.minimum(np.searchsorted(categories, x), len(categories) - 1)
            encoded.append(np.where(categories[pos] == x, values[pos], a["te_default"][i]))
        return np.column_stack([*encoded, features[:, a["passthrough_columns"]]])

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Trip duration in minutes for each row of a `compute_features` matrix."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected a (rows, {len(FEATURE_NAMES)}) feature matrix, got {features.shape}")
        x = self.model_input(features)
        out = np.empty(len(x), dtype=np.float64)
        for start in range(0, len(x), _ROWS_PER_CHUNK):
            out[start : start + _ROWS_PER_CHUNK] = self._raw_predict(x[start : start + _ROWS_PER_CHUNK])
        return out

    def _raw_predict(self, x: np.ndarray) -> np.ndarray:
        a = self.arrays
        feature, threshold, left, right = a["feature"], a["threshold"], a["left"], a["right"]
        flat = x.ravel()
        row_start = (np.arange(len(x), dtype=np.int64) * x.shape[1])[:, None]
        node = np.broadcast_to(a["roots"], (len(x), len(a["roots"]))).copy()
        has_nan = bool(np.isnan(x).any())
        for _ in range(int(a["depth"])):
            value = flat[row_start + feature[node]]
            go_left = value <= threshold[node]
            if has_nan:
                go_left |= np.isnan(value) & a["missing_left"][node]
            node = np.where(go_left, left[node], right[node])
        return np.asarray(a["baseline"] + a["value"][node].sum(axis=1))


def load_bundle(data: bytes, expected_sha256: str | None = None) -> ServingBundle:
    """Parse bundle bytes; with `expected_sha256` (from the model pointer) the checksum is verified first."""
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise BundleError(f"bundle checksum mismatch: expected sha256 {expected_sha256}, got {sha256}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            arrays = {name: npz[name] for name in _ARRAYS}
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError) as exc:
        raise BundleError(f"bundle is corrupt or incomplete: {exc}") from exc
    for name, kind in _ARRAYS.items():
        if arrays[name].dtype.kind != kind:
            raise BundleError(f"bundle array {name!r} has dtype {arrays[name].dtype}, expected kind {kind!r}")
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle format {meta.get('format')!r} is not supported (expected {BUNDLE_FORMAT})")
    if tuple(meta.get("feature_names", ())) != FEATURE_NAMES:
        raise BundleError(
            f"bundle was trained on features {meta.get('feature_names')}, this code computes {FEATURE_NAMES}"
        )
    n_nodes = len(arrays["value"])
    for name in ("feature", "threshold", "missing_left", "left", "right"):
        if len(arrays[name]) != n_nodes:
            raise BundleError(f"bundle array {name!r} has {len(arrays[name])} entries, expected {n_nodes}")
    return ServingBundle(meta, arrays, sha256)


def dump_bundle(meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
    """Serialize (used by training's exporter); the inverse of `load_bundle`."""
    missing = set(_ARRAYS) - set(arrays)
    if missing:
        raise BundleError(f"bundle lacks array(s) {sorted(missing)}")
    buffer = io.BytesIO()
    full_meta = {"format": BUNDLE_FORMAT, "feature_names": list(FEATURE_NAMES), **meta}
    payload: dict[str, Any] = {"meta": np.array(json.dumps(full_meta, sort_keys=True)), **arrays}
    np.savez_compressed(buffer, **payload)
    return buffer.getvalue()
