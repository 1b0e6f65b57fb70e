"""How many labelled rides a challenger needs: the loop's retrain on the N most recent labelled rides of
2023-03 before a moment `now` (holdout: the latest HOLDOUT_FRACTION, as lambda_retrain.retrain splits),
gated against a 2021 champion (2021-01, as `make train`) with the loop's gate (training.gate.decide), then
both scored on the rides of the week after `now`, which neither trained on.

    .venv/bin/python -m benchmarks.bench_retrain_volume [--now-days 12 15 18 21 24] [--rows 2000 ...]

Prints one JSON line per (now, N) and, on stderr, the table per N: promotions, and the medians of the
challenger's and the champion's MAE on the week after. Measures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lambda_retrain.config import RetrainConfig
from training import metrics
from training.data import PICKUP, frame_features, load_month
from training.decision import Outcome, compare
from training.model import ModelParams, build_model, fit, predict

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
CHAMPION_MONTH = "green_tripdata_2021-01.parquet"
MONTH = "green_tripdata_2023-03.parquet"
AFTER = timedelta(days=7)


def score(model: Any, frame: pd.DataFrame) -> tuple[float, float]:
    predicted = predict(model, frame_features(frame))
    target = frame["duration"].to_numpy()
    return metrics.rmse(predicted, target), metrics.mae(predicted, target)


def fit_challenger(train: pd.DataFrame, old: pd.DataFrame | None, recent_weight: float) -> Any:
    """On the recent rows alone, or on the champion's training rows + the recent rows, each recent row
    weighing `recent_weight` times an old one (a weight of 0: the recent rows as many as the old)."""
    if old is None:
        return fit(frame_features(train), train["duration"].to_numpy(), ModelParams())
    both = pd.concat([old, train], ignore_index=True)
    weight = recent_weight or len(old) / len(train)
    weights = np.r_[np.ones(len(old)), np.full(len(train), weight)]
    model = build_model(ModelParams())
    model.fit(frame_features(both), both["duration"].to_numpy(), trees__sample_weight=weights)
    return model


def one_run(
    champion: Any,
    old: pd.DataFrame | None,
    recent_weight: float,
    month: pd.DataFrame,
    now: datetime,
    rows: int,
) -> dict[str, Any]:
    config = RetrainConfig("models", "capture")
    before = month[month[PICKUP] < now].tail(rows)
    after = month[(month[PICKUP] >= now) & (month[PICKUP] < now + AFTER)]
    n_hold = int(np.ceil(len(before) * config.holdout_fraction))
    train, holdout = before.iloc[:-n_hold], before.iloc[-n_hold:]
    challenger = fit_challenger(train, old, recent_weight)
    challenger_rmse, _ = score(challenger, holdout)
    champion_rmse, _ = score(champion, holdout)
    features, target = frame_features(holdout), holdout["duration"].to_numpy()
    pickup = holdout[PICKUP].to_numpy().astype("datetime64[s]")
    verdict = compare(predict(champion, features), predict(challenger, features), target, pickup)
    return {
        "now": f"{now:%Y-%m-%d}",
        "mixed": old is not None,
        "recent_weight": recent_weight,
        "rows": len(before),
        "days_spanned": round((before[PICKUP].max() - before[PICKUP].min()) / pd.Timedelta(days=1), 2),
        "holdout_rows": n_hold,
        "challenger_holdout_rmse": round(challenger_rmse, 4),
        "champion_holdout_rmse": round(champion_rmse, 4),
        "promoted": verdict.outcome == Outcome.BETTER,
        "challenger_after_mae": round(score(challenger, after)[1], 4),
        "champion_after_mae": round(score(champion, after)[1], 4),
        "after_rows": len(after),
    }


def summary(results: list[dict[str, Any]]) -> list[str]:
    lines = ["rows   days  promoted  challenger MAE after  champion MAE after  (medians over `now`)"]
    for rows in sorted({r["rows"] for r in results}):
        runs = [r for r in results if r["rows"] == rows]
        lines.append(
            f"{rows:>6} {np.median([r['days_spanned'] for r in runs]):5.1f} "
            f"{sum(r['promoted'] for r in runs)}/{len(runs):<7} "
            f"{np.median([r['challenger_after_mae'] for r in runs]):20.3f} "
            f"{np.median([r['champion_after_mae'] for r in runs]):19.3f}"
        )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_retrain_volume")
    parser.add_argument("--now-days", type=int, nargs="+", default=[12, 15, 18, 21, 24])
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 5000, 10_000, 15_000, 20_000])
    parser.add_argument("--mix", action="store_true", help="the champion's training rows mixed in")
    parser.add_argument(
        "--recent-weight", type=float, default=0.0, help="with --mix (0: recent rows weigh as the old)"
    )
    args = parser.parse_args(argv)
    champion_month = load_month(str(DATA / CHAMPION_MONTH)).frame
    champion = fit(frame_features(champion_month), champion_month["duration"].to_numpy(), ModelParams())
    month = load_month(str(DATA / MONTH)).frame.sort_values(PICKUP, kind="stable").reset_index(drop=True)
    results = []
    for day in args.now_days:
        for rows in args.rows:
            old = champion_month if args.mix else None
            result = one_run(champion, old, args.recent_weight, month, datetime(2023, 3, day), rows)
            results.append(result)
            print(json.dumps(result), flush=True)
    print("\n".join(summary(results)), file=sys.stderr)


if __name__ == "__main__":
    main()
