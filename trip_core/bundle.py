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

Evaluation (precomputed once at load, `_LeafMaskForest`): every tree has at most 32 (or 64) leaves,
so the set of leaves a row can still reach is a bitmask. For each model input column, the split
thresholds of all trees on that column cut its axis into bins; for each bin (and one bin for a
missing value) a table row holds, per tree, the mask of the leaves whose path conditions on that
column the bin satisfies. A row's leaf in each tree is then the single bit left after ANDing one
table row per column: no per-depth steps, only row gathers and bitwise ANDs over (rows x trees).
Columns with few bins (hour, weekday, boroughs, flags) are grouped into joint tables, one row per
combination of their bins (the AND of their rows), so one gather serves the whole group.
The comparisons are the trees' own (`x <= threshold` goes left, NaN follows `missing_left`),
made exact by binning with `searchsorted` on the unique float64 thresholds. Bundles whose trees
are too large for that (more than 64 leaves, or tables over a memory budget) are walked node by
node in lock-step, all trees at once (`_walk`).

Loading trusts nothing in the bytes: the object's size, its members' number and declared sizes are
bounded (trip_core.contracts) before anything is decompressed, each member is read no further than it
declares, and every index the evaluation follows (columns, children, roots) must lie in its array. What a
loaded bundle predicts is checked by trip_core.smoke before it is published or served.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
import zipfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trip_core.contracts import MAX_BUNDLE_BYTES, MAX_BUNDLE_MEMBERS, MAX_BUNDLE_UNCOMPRESSED_BYTES
from trip_core.features import FEATURE_NAMES

BUNDLE_FORMAT = 1
_ROWS_PER_CHUNK = 1024  # bounds the (rows x trees) work matrices
_MAX_TABLE_BYTES = 64 * 1024 * 1024  # leaf-mask tables above this: walk the trees instead
_MAX_WORKSPACE_BYTES = 16 * 1024 * 1024  # (rows x trees) work buffers kept between calls up to this
_MAX_JOINT_ROWS = 256  # columns with few bins share one table of at most this many rows (fewer gathers)

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
_SCALARS = ("baseline", "depth")
MAX_DEPTH = 1024  # deeper than any tree training grows (max_leaf_nodes bounds it): a walk stays short
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class BundleError(ValueError):
    """The bundle bytes are not a usable bundle (checksum mismatch, corrupt, incompatible)."""


@dataclass(frozen=True)
class ServingBundle:
    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]
    sha256: str
    _forest: _LeafMaskForest | None = field(init=False, repr=False, compare=False)
    _encoders: tuple[tuple[int, np.ndarray, np.ndarray, float], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        a = self.arrays
        encoders = []
        for i, column in enumerate(a["te_columns"].tolist()):
            lo, hi = int(a["te_offsets"][i]), int(a["te_offsets"][i + 1])
            encoders.append(
                (column, a["te_categories"][lo:hi], a["te_values"][lo:hi], float(a["te_default"][i]))
            )
        object.__setattr__(self, "_encoders", tuple(encoders))
        n_inputs = len(encoders) + len(a["passthrough_columns"])
        object.__setattr__(self, "_forest", _LeafMaskForest.build(a, n_inputs))

    @property
    def model_name(self) -> str:
        return str(self.meta["model_name"])

    @property
    def n_trees(self) -> int:
        return len(self.arrays["roots"])

    @property
    def evaluator(self) -> str:
        """ "leaf-mask" (precomputed tables) or "walk" (node by node, for trees too large for masks)."""
        return "walk" if self._forest is None else "leaf-mask"

    def model_input(self, features: np.ndarray) -> np.ndarray:
        """Feature matrix -> the trees' input: target encodings, then passthrough columns."""
        x = np.empty((len(features), len(self._encoders) + len(self.arrays["passthrough_columns"])))
        for i, (column, categories, values, default) in enumerate(self._encoders):
            raw = features[:, column]
            if len(categories) == 0:
                x[:, i] = default
                continue
            pos = np.minimum(np.searchsorted(categories, raw), len(categories) - 1)
            x[:, i] = np.where(categories[pos] == raw, values[pos], default)
        x[:, len(self._encoders) :] = features[:, self.arrays["passthrough_columns"]]
        return x

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Trip duration in minutes for each row of a `compute_features` matrix."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ValueError(f"expected a (rows, {len(FEATURE_NAMES)}) feature matrix, got {features.shape}")
        x = self.model_input(features)
        raw = self._walk if self._forest is None else self._forest.predict
        if len(x) <= _ROWS_PER_CHUNK:
            return raw(x)
        out = np.empty(len(x), dtype=np.float64)
        for start in range(0, len(x), _ROWS_PER_CHUNK):
            out[start : start + _ROWS_PER_CHUNK] = raw(x[start : start + _ROWS_PER_CHUNK])
        return out

    def predict_walk(self, features: np.ndarray) -> np.ndarray:
        """Node-by-node evaluation whatever the trees: the reference the leaf masks are tested against."""
        x = self.model_input(np.asarray(features, dtype=np.float64))
        return np.concatenate(
            [self._walk(x[s : s + _ROWS_PER_CHUNK]) for s in range(0, max(len(x), 1), _ROWS_PER_CHUNK)]
        )

    def _walk(self, x: np.ndarray) -> np.ndarray:
        """All trees in lock-step, `depth` steps of fancy indexing over (rows x trees) node indices."""
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


class _LeafMaskForest:
    """Precomputed leaf-mask tables of all trees (see the module docstring)."""

    def __init__(
        self,
        groups: list[tuple[tuple[tuple[int, np.ndarray, int], ...], np.ndarray]],
        base: np.ndarray,
        leaf_values: np.ndarray,
        float_type: type[np.floating[Any]],
        baseline: float,
    ) -> None:
        # ((input column, sorted unique thresholds, row stride), ...), table (product of bins + 2, trees)
        self._groups = groups
        self._base = base  # (trees,) every leaf of the tree, when no column has splits
        self._values = leaf_values.ravel()  # (trees x bits) leaf values by bit position
        self._float = float_type
        word_bits = np.dtype(float_type).itemsize * 8
        mantissa, bias = (23, 127) if word_bits == 32 else (52, 1023)
        self._shift = mantissa
        self._int = np.int32 if word_bits == 32 else np.int64
        # index of a leaf value = tree * word_bits + bit = tree * word_bits - bias + biased exponent
        self._offsets = (np.arange(len(base), dtype=self._int) * word_bits - bias).astype(self._int)
        self._baseline = baseline
        # per-thread (rows x trees) work buffers reused across calls: fresh ones of this size come from
        # mmap, and touching them costs a page fault per 4 KiB (more than the gathers themselves)
        self._local = threading.local()

    def _workspace(self, rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mask, gather) words and (leaf values) float64, `rows` x trees, reused when small enough."""
        buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = getattr(self._local, "buffers", None)
        if buffers is None or len(buffers[0]) < rows:
            shape = (rows, len(self._base))
            buffers = (np.empty(shape, self._base.dtype), np.empty(shape, self._base.dtype), np.empty(shape))
            if sum(b.nbytes for b in buffers) > _MAX_WORKSPACE_BYTES:
                return buffers
            self._local.buffers = buffers
        return buffers[0][:rows], buffers[1][:rows], buffers[2][:rows]

    @classmethod
    def build(cls, a: dict[str, np.ndarray], n_inputs: int) -> _LeafMaskForest | None:
        """The tables, or None when the trees cannot use them (too many leaves, too large, odd shape)."""
        forest = _Forest.of(a, n_inputs)
        leaves = None if forest is None else _Leaves.of(a, forest)
        columns = None if forest is None or leaves is None else _column_tables(a, forest, leaves)
        if forest is None or leaves is None or columns is None:
            return None
        groups = _joint_groups(columns)
        if groups:
            groups[0][1][:] &= leaves.base  # only the tree's own leaves
        return cls(groups, leaves.base, leaves.values, leaves.float_type, float(a["baseline"]))

    def predict(self, x: np.ndarray) -> np.ndarray:
        rows = len(x)
        nan = np.isnan(x)
        missing = nan if nan.any() else None
        mask, gathered, values = self._workspace(rows)
        first = True
        for members, table in self._groups:
            index: np.ndarray | None = None
            for column, cuts, stride in members:
                bins = np.searchsorted(cuts, x[:, column])
                if missing is not None:
                    bins[missing[:, column]] = len(cuts) + 1
                if stride != 1:
                    bins *= stride
                index = bins if index is None else np.add(index, bins, out=index)
            assert index is not None  # every group has a member
            if first:
                # mode="wrap": the index is in range by construction, and "raise" with `out` copies
                table.take(index, axis=0, out=mask, mode="wrap")
                first = False
            else:
                mask &= table.take(index, axis=0, out=gathered, mode="wrap")
        if first:
            mask[:] = self._base
        # the single bit left per tree -> its position, from the exponent of the power of two as a float
        as_float = gathered.view(self._float)
        as_float[:] = mask
        exponent = np.right_shift(as_float.view(self._int), self._shift, out=as_float.view(self._int))
        exponent += self._offsets
        return np.asarray(self._baseline + self._values.take(exponent, out=values, mode="wrap").sum(axis=1))


@dataclass(frozen=True)
class _Forest:
    """The node arrays checked to be a forest of trees: each reached node's tree and depth."""

    left: np.ndarray
    right: np.ndarray
    roots: np.ndarray
    tree: np.ndarray  # tree of each node, -1 if no root reaches it
    level: np.ndarray
    leaves: np.ndarray  # reached leaves, ordered by tree
    internal: np.ndarray  # reached internal nodes

    @classmethod
    def of(cls, a: dict[str, np.ndarray], n_inputs: int) -> _Forest | None:
        n_nodes, roots, depth = len(a["value"]), a["roots"].astype(np.int64), int(a["depth"])
        left, right = a["left"].astype(np.int64), a["right"].astype(np.int64)
        if n_nodes == 0 or len(roots) == 0 or depth < 0 or len(np.unique(roots)) != len(roots):
            return None
        if (
            min(left.min(), right.min(), roots.min()) < 0
            or max(left.max(), right.max(), roots.max()) >= n_nodes
        ):
            return None
        own = np.arange(n_nodes, dtype=np.int64)
        is_leaf = (left == own) & (right == own)
        levels = _tree_levels(left, right, roots, is_leaf, depth)
        if levels is None:
            return None
        tree, level = levels
        reached = tree >= 0
        leaves = np.flatnonzero(is_leaf & reached)
        internal = np.flatnonzero(~is_leaf & reached)
        if len(internal) and (a["feature"][internal].min() < 0 or a["feature"][internal].max() >= n_inputs):
            return None
        leaves = leaves[np.argsort(tree[leaves], kind="stable")]
        return cls(left, right, roots, tree, level, leaves, internal)


def _tree_levels(
    left: np.ndarray, right: np.ndarray, roots: np.ndarray, is_leaf: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Tree and depth of each node, from the roots down (what the walk reaches in `depth` steps); None if
    the nodes are not a forest of trees or go deeper than `depth` (the walk would stop there)."""
    tree = np.full(len(left), -1, dtype=np.int64)
    level = np.zeros(len(left), dtype=np.int64)
    tree[roots] = np.arange(len(roots))
    frontier = roots[~is_leaf[roots]]
    for step in range(1, depth + 1):
        if len(frontier) == 0:
            break
        children = np.concatenate([left[frontier], right[frontier]])
        if (tree[children] != -1).any() or len(np.unique(children)) != len(children):
            return None
        tree[children] = np.concatenate([tree[frontier], tree[frontier]])
        level[children] = step
        frontier = children[~is_leaf[children]]
    return None if len(frontier) else (tree, level)


@dataclass(frozen=True)
class _Leaves:
    """Each tree's leaves as bits of one word: the leaf values by bit, and the leaves below every node."""

    word: type[np.unsignedinteger[Any]]
    float_type: type[np.floating[Any]]
    values: np.ndarray  # trees x word bits
    below: np.ndarray  # node -> mask of the leaves below it
    base: np.ndarray  # tree -> mask of all its leaves

    @classmethod
    def of(cls, a: dict[str, np.ndarray], forest: _Forest) -> _Leaves | None:
        tree, leaves, n_trees = forest.tree, forest.leaves, len(forest.roots)
        per_tree = np.bincount(tree[leaves], minlength=n_trees)
        max_leaves = int(per_tree.max())
        if max_leaves > 64:
            return None
        word, float_type = (np.uint32, np.float32) if max_leaves <= 32 else (np.uint64, np.float64)
        word_bits = np.dtype(word).itemsize * 8
        first = np.concatenate([[0], np.cumsum(per_tree)[:-1]])
        bit = np.arange(len(leaves)) - first[tree[leaves]]
        values = np.zeros((n_trees, word_bits), dtype=np.float64)
        values[tree[leaves], bit] = a["value"][leaves]
        # bottom-up, one level per pass
        below = np.zeros(len(tree), dtype=word)
        below[leaves] = np.left_shift(word(1), bit.astype(word))
        internal, level = forest.internal, forest.level
        order = internal[np.argsort(-level[internal], kind="stable")]
        for lv in np.unique(level[order])[::-1]:
            nodes = order[level[order] == lv]
            below[nodes] = below[forest.left[nodes]] | below[forest.right[nodes]]
        base = np.zeros(n_trees, dtype=word)
        np.bitwise_or.at(base, tree[leaves], below[leaves])
        return cls(word, float_type, values, below, base)


def _column_tables(
    a: dict[str, np.ndarray], forest: _Forest, leaves: _Leaves
) -> list[tuple[int, np.ndarray, np.ndarray]] | None:
    """Per input column: its cut points and, per bin (+ one row for a missing value), the mask of the leaves
    each tree can still reach; None if a threshold is NaN or the tables would be too large."""
    internal, word, below, n_trees = forest.internal, leaves.word, leaves.below, len(forest.roots)
    feature = a["feature"][internal].astype(np.int64)
    threshold = a["threshold"][internal].astype(np.float64)
    if np.isnan(threshold).any():
        return None
    not_left, not_right = np.invert(below[forest.left[internal]]), np.invert(below[forest.right[internal]])
    on_missing = np.where(a["missing_left"][internal].astype(bool), not_right, not_left)
    node_tree = forest.tree[internal]
    all_ones = ~word(0)
    columns: list[tuple[int, np.ndarray, np.ndarray]] = []
    size = 0
    for column in np.unique(feature).tolist():
        sel = feature == column
        cuts, k = np.unique(threshold[sel], return_inverse=True)
        size += (len(cuts) + 2) * n_trees * np.dtype(word).itemsize
        if size > _MAX_TABLE_BYTES:
            return None
        t = node_tree[sel]
        # bin b (= number of cuts < x): nodes with k < b go right, nodes with k >= b go left
        go_right = np.full((len(cuts) + 1, n_trees), all_ones, dtype=word)
        np.bitwise_and.at(go_right, (k + 1, t), not_left[sel])
        go_left = np.full((len(cuts) + 1, n_trees), all_ones, dtype=word)
        np.bitwise_and.at(go_left, (k, t), not_right[sel])
        table = np.empty((len(cuts) + 2, n_trees), dtype=word)
        np.bitwise_and(
            np.bitwise_and.accumulate(go_right, axis=0),
            np.bitwise_and.accumulate(go_left[::-1], axis=0)[::-1],
            out=table[:-1],
        )
        table[-1] = all_ones  # a missing value
        np.bitwise_and.at(table[-1], t, on_missing[sel])
        columns.append((column, cuts, table))
    return columns


def _joint_groups(
    columns: list[tuple[int, np.ndarray, np.ndarray]],
) -> list[tuple[tuple[tuple[int, np.ndarray, int], ...], np.ndarray]]:
    """Per-column tables (bins + 2 rows each) -> groups sharing one table: columns with few rows are
    packed (largest first, first fit) into groups of at most _MAX_JOINT_ROWS row combinations; the
    row of bins (b1, b2, ...) is at sum(b_i * stride_i) and holds the AND of the columns' rows."""
    packed: list[list[tuple[int, np.ndarray, np.ndarray]]] = []
    for item in sorted(columns, key=lambda c: -len(c[2])):
        for group in packed:
            if int(np.prod([len(t) for _, _, t in group])) * len(item[2]) <= _MAX_JOINT_ROWS:
                group.append(item)
                break
        else:
            packed.append([item])
    groups: list[tuple[tuple[tuple[int, np.ndarray, int], ...], np.ndarray]] = []
    for group in packed:
        table = group[0][2]
        for _, _, t in group[1:]:  # row-major: the last column of the group varies fastest
            table = (table[:, None, :] & t[None, :, :]).reshape(-1, t.shape[1])
        strides = np.cumprod([1] + [len(t) for _, _, t in group[:0:-1]])[::-1].tolist()
        members = tuple(
            (column, cuts, int(stride)) for (column, cuts, _), stride in zip(group, strides, strict=True)
        )
        groups.append((members, np.ascontiguousarray(table)))
    if sum(table.nbytes for _, table in groups) > _MAX_TABLE_BYTES:  # very many trees: one table each
        return [(((column, cuts, 1),), table) for column, cuts, table in columns]
    return groups


def load_bundle(data: bytes, expected_sha256: str | None = None) -> ServingBundle:
    """Parse bundle bytes; with `expected_sha256` (from the model pointer) the checksum is verified first."""
    sha256 = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and sha256 != expected_sha256.lower():
        raise BundleError(f"bundle checksum mismatch: expected sha256 {expected_sha256}, got {sha256}")
    members = _read_members(data)
    try:
        meta = json.loads(str(members.pop("meta")))
    except (KeyError, ValueError) as exc:
        raise BundleError(f"bundle is corrupt or incomplete: no readable meta ({exc!r})") from exc
    if not isinstance(meta, dict):
        raise BundleError(f"bundle meta must be a JSON object, got {type(meta).__name__}")
    missing = sorted(set(_ARRAYS) - set(members))
    if missing:
        raise BundleError(f"bundle is corrupt or incomplete: lacks array(s) {missing}")
    arrays = {name: members[name] for name in _ARRAYS}
    for name, kind in _ARRAYS.items():
        if arrays[name].dtype.kind != kind:
            raise BundleError(f"bundle array {name!r} has dtype {arrays[name].dtype}, expected kind {kind!r}")
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"bundle format {meta.get('format')!r} is not supported (expected {BUNDLE_FORMAT})")
    if tuple(meta.get("feature_names", ())) != FEATURE_NAMES:
        raise BundleError(
            f"bundle was trained on features {meta.get('feature_names')}, this code computes {FEATURE_NAMES}"
        )
    _check_structure(arrays)
    return ServingBundle(meta, arrays, sha256)


def _read_members(data: bytes) -> dict[str, np.ndarray]:
    """The npz's arrays by name, within the contracts' bounds. zipfile stops reading a member at its
    declared size (and a member that holds more fails its CRC), so bounding the declared sizes bounds the
    decompression; members of other names are not read at all."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError(f"bundle is {len(data)} bytes, over MAX_BUNDLE_BYTES ({MAX_BUNDLE_BYTES})")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"bundle is corrupt or incomplete: {exc}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_BUNDLE_MEMBERS:
            raise BundleError(
                f"bundle has {len(infos)} members, over MAX_BUNDLE_MEMBERS ({MAX_BUNDLE_MEMBERS})"
            )
        declared = sum(info.file_size for info in infos)
        if declared > MAX_BUNDLE_UNCOMPRESSED_BYTES:
            raise BundleError(
                f"bundle members declare {declared} bytes uncompressed, over MAX_BUNDLE_UNCOMPRESSED_BYTES"
                f" ({MAX_BUNDLE_UNCOMPRESSED_BYTES})"
            )
        names = {f"{name}.npy": name for name in ("meta", *_ARRAYS)}
        return {names[i.filename]: _read_member(archive, i) for i in infos if i.filename in names}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    # deflate (what savez_compressed writes) decompresses at most what is asked for per call; zipfile's
    # other decompressors expand a whole compressed chunk at once, however far
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise BundleError(f"bundle member {info.filename!r} uses compression method {info.compress_type}")
    try:
        with archive.open(info) as member:
            body = member.read(info.file_size)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
        raise BundleError(f"bundle is corrupt or incomplete: member {info.filename!r}: {exc}") from exc
    return _npy_array(body, info.filename)


def _npy_array(body: bytes, member: str) -> np.ndarray:
    """One .npy member -> a read-only array over its bytes; its header must describe exactly the data
    the member holds (a header may not make numpy allocate more than the bounded member)."""
    stream = io.BytesIO(body)
    try:
        read_header = _NPY_HEADERS[np.lib.format.read_magic(stream)]
        shape, fortran_order, dtype = read_header(stream)
    except (KeyError, ValueError, EOFError) as exc:
        raise BundleError(f"bundle member {member!r} is not a readable .npy array: {exc!r}") from exc
    if dtype.hasobject:
        raise BundleError(f"bundle member {member!r} holds Python objects (dtype {dtype})")
    count, offset = math.prod(shape), stream.tell()
    if count * dtype.itemsize != len(body) - offset:
        raise BundleError(
            f"bundle member {member!r} holds {len(body) - offset} bytes of data, its header says"
            f" {count * dtype.itemsize} (shape {shape}, dtype {dtype})"
        )
    flat = np.frombuffer(body, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran_order else "C")


def _check_structure(a: dict[str, np.ndarray]) -> None:
    """Every index the evaluation follows lies in the array it indexes, and the target encodings are
    consistent: otherwise a bundle would raise at predict time, or silently read another row's values
    (numpy wraps negative indices)."""
    for name in _ARRAYS:
        if a[name].ndim != (0 if name in _SCALARS else 1):
            raise BundleError(f"bundle array {name!r} has shape {a[name].shape}")
    n_nodes, n_features = len(a["value"]), len(FEATURE_NAMES)
    for name in ("feature", "threshold", "missing_left", "left", "right"):
        if len(a[name]) != n_nodes:
            raise BundleError(f"bundle array {name!r} has {len(a[name])} entries, expected {n_nodes}")
    n_inputs = len(a["te_columns"]) + len(a["passthrough_columns"])
    for name, size in (
        ("te_columns", n_features),
        ("passthrough_columns", n_features),
        ("feature", n_inputs),  # leaves too: the walk gathers every node's column
        ("left", n_nodes),
        ("right", n_nodes),
        ("roots", n_nodes),
    ):
        values = a[name]
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= size):
            low, high = values.min(), values.max()
            raise BundleError(f"bundle array {name!r} holds indices in [{low}, {high}], outside [0, {size})")
    depth = int(a["depth"])
    if not 0 <= depth <= MAX_DEPTH:
        raise BundleError(f"bundle depth {depth} is outside [0, {MAX_DEPTH}]")
    left, right, roots = (a[name].astype(np.int64) for name in ("left", "right", "roots"))
    own = np.arange(n_nodes, dtype=np.int64)
    if _tree_levels(left, right, roots, (left == own) & (right == own), depth) is None:
        # a cycle, a shared node, or a leaf deeper than `depth`: the walk would never reach a leaf
        raise BundleError("bundle nodes are not a forest of trees whose leaves lie within its depth")
    _check_encodings(a)


def _check_encodings(a: dict[str, np.ndarray]) -> None:
    k, offsets, n_categories = len(a["te_columns"]), a["te_offsets"], len(a["te_categories"])
    if len(offsets) != k + 1 or len(a["te_default"]) != k or len(a["te_values"]) != n_categories:
        raise BundleError(
            f"bundle target encodings are inconsistent: {k} columns, {len(offsets)} offsets,"
            f" {len(a['te_default'])} defaults, {n_categories} categories, {len(a['te_values'])} values"
        )
    if offsets[0] != 0 or offsets[-1] != n_categories or np.any(np.diff(offsets) < 0):
        raise BundleError(f"bundle te_offsets {offsets.tolist()} do not split {n_categories} categories")
    for lo, hi in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True):
        if np.any(np.diff(a["te_categories"][lo:hi]) <= 0):  # searchsorted needs them sorted
            raise BundleError("bundle te_categories of a column are not strictly increasing")


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
