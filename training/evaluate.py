"""`python -m training.evaluate --bundle DIR --data FILE [FILE ...]`: score a serving bundle through
the serving code path (trip_core features + bundle); prints one JSON line {"rows", "rmse", "mae"}."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from training import data as data_mod
from training.metrics import mae, rmse
from trip_core.bundle import load_bundle
from trip_core.contracts import BUNDLE_FILENAME


def main(argv: list[str] | None = None) -> dict[str, float | int]:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--bundle", type=Path, required=True, help=f"directory holding {BUNDLE_FILENAME} (or the file)"
    )
    parser.add_argument("--data", nargs="+", required=True, metavar="FILE", help="months (path or s3://)")
    args = parser.parse_args(argv)
    path = args.bundle / BUNDLE_FILENAME if args.bundle.is_dir() else args.bundle
    bundle = load_bundle(path.read_bytes())
    frame = data_mod.concat(data_mod.load_months(args.data))
    pred = bundle.predict(data_mod.frame_features(frame))
    target = frame["duration"].to_numpy(dtype=np.float64)
    result: dict[str, float | int] = {
        "rows": len(target),
        "rmse": rmse(pred, target),
        "mae": mae(pred, target),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
