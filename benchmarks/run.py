"""`make bench`: every figure of the performance record, ours beside its reference, measured in one run.

Runs the benchmark scripts (each prints JSON lines {"metric","value","unit"}), pairs our figures with
the course's implementation and with Evidently, and writes bench-results.jsonl with
{"metric","value","unit","reference","ratio"} (reference = the paired figure, ratio = ours / reference),
then prints a table. Benchmarks measure; they never assert a time.

Every run simulates the decision rule's error rates on real months (benchmarks/bench_decision.py: it
fits its models once, cached in .state/).
The full run also replays the monitor's goal scenarios (benchmarks/bench_replay.py: whole months through
the service's code on a simulated clock) and streams 1,000 rides through the stack on LocalStack
(infra/load_test.py: started if needed and left running, like `make demo`; stop it with
`make localstack-down mlflow-down`).
--quick (CI): in-process figures only: no package installs, no Evidently venv, no LocalStack.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVIDENTLY_PYTHON = ROOT / ".venvs" / "evidently" / "bin" / "python"
EVIDENTLY_RUNS = 3

# our metric -> the reference metric it is compared with
PAIRS = {
    "predict_cold_start_to_first_prediction_seconds": "course_cold_start_seconds",
    "predict_warm_batch100_ms": "course_warm_batch100_ms",
    "predict_warm_batch500_ms": "course_warm_batch500_ms",
    "predict_package_mb": "course_package_mb",
    "model_rmse": "course_rmse",
    "model_mae": "course_mae",
    "monitor_drift_100k_median": "evidently_drift_100k_seconds",
    "monitor_drift_1m_median": "evidently_drift_1m_seconds",
    "monitor_drift_1m_peak_rss": "evidently_drift_1m_peak_rss",
}


def figure(metric: str, value: float, unit: str, note: str | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": round(value, 4), "unit": unit, **({"note": note} if note else {})}


def run_script(args: list[str], env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Run a benchmark script, echo its figures as they come, and return them."""
    print(f"$ {' '.join(args)}", file=sys.stderr, flush=True)
    out = subprocess.run(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    figures = []
    for line in out.splitlines():
        if line.startswith("{") and '"metric"' in line:
            figure = json.loads(line)
            if {"metric", "value", "unit"} <= figure.keys():
                figures.append(figure)
    return figures


def model_quality() -> list[dict[str, Any]]:
    """Our bundle (the one bench_predict trained and cached) on the latest committed month."""
    from benchmarks.bench_course import VALID
    from benchmarks.bench_predict import model_bundle
    from training.data import concat, frame_features, load_months
    from trip_core.bundle import load_bundle

    frame = concat(load_months([VALID]))
    error = load_bundle(model_bundle()).predict(frame_features(frame)) - frame["duration"].to_numpy()
    return [
        figure("model_rmse", float((error**2).mean() ** 0.5), "min"),
        figure("model_mae", float(abs(error).mean()), "min"),
    ]


def evidently(ours: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidently's DataDriftPreset on the same reference and current rows as bench_monitor."""
    import numpy as np

    from benchmarks.bench_monitor import SIZES
    from tests.monitor_months import monitored_columns, month_columns, take, valid_rows
    from trip_core.features import MONITORED_FEATURES

    reference = valid_rows(month_columns("2021-01"))
    current = valid_rows(month_columns("2023-03"))

    def tested(rows: dict[str, Any]) -> dict[str, Any]:
        """The columns our monitor tests (the calendar ones only slice its reference)."""
        columns = monitored_columns(rows)
        return {**{name: columns[name] for name in MONITORED_FEATURES}, "prediction": rows["prediction"]}

    ref_columns = tested(reference)
    figures: list[dict[str, Any]] = []
    for rows in SIZES:
        label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}m"
        sample = take(current, np.random.default_rng(0).integers(0, len(current["prediction"]), rows))
        cur_columns = tested(sample)
        with tempfile.TemporaryDirectory(prefix="bench-evidently-") as tmp:
            path = Path(tmp) / "data.npz"
            arrays = {f"ref__{k}": v for k, v in ref_columns.items()}
            arrays.update({f"cur__{k}": v for k, v in cur_columns.items()})
            np.savez(path, **arrays)
            cmd = [str(EVIDENTLY_PYTHON), str(ROOT / "benchmarks/evidently/bench_evidently.py"), str(path)]
            print(f"$ {' '.join(cmd)} {EVIDENTLY_RUNS}", file=sys.stderr, flush=True)
            result = json.loads(
                subprocess.run(
                    [*cmd, str(EVIDENTLY_RUNS)], capture_output=True, text=True, check=True
                ).stdout.splitlines()[-1]
            )
        version = f"evidently {result['version']}"
        figures.append(figure(f"evidently_drift_{label}_seconds", result["run_seconds"], "s", version))
        figures.append(figure(f"evidently_drift_{label}_peak_rss", result["peak_rss_mb"], "MB"))
        if rows == SIZES[-1]:
            figures.append(figure("evidently_import_seconds", result["import_seconds"], "s"))
            figures.extend(verdict_comparison(result["verdicts"], ours))
    return figures


def verdict_comparison(theirs: dict[str, list[Any]], ours: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per column: Evidently's score next to ours, and whether the drift verdicts agree."""
    prefix = "monitor_drift_2021_vs_2023_"
    figures = []
    for name, ours_figure in ours.items():
        if not name.startswith(prefix):
            continue
        column = next((c for c in theirs if name[len(prefix) :].startswith(c + "_")), None)
        if column is None:
            continue
        method, score, drifted = theirs[column]
        agree = "agrees" if drifted == name.endswith("_DRIFT") else "DIFFERS"
        note = f"{method}; drift={drifted}; ours={ours_figure['value']} ({agree})"
        figures.append(figure(f"evidently_2021_vs_2023_{column}", score, "score", note))
    return figures


def with_ratios(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_metric = {f["metric"]: f for f in figures}
    for ours, reference in PAIRS.items():
        if ours in by_metric and reference in by_metric and by_metric[reference]["value"]:
            by_metric[ours]["reference"] = reference
            by_metric[ours]["ratio"] = round(by_metric[ours]["value"] / by_metric[reference]["value"], 4)
    return figures


def print_table(figures: list[dict[str, Any]]) -> None:
    by_metric = {f["metric"]: f for f in figures}
    print(f"\n{'metric':58} {'value':>11} {'unit':6} {'reference':>11} {'ratio':>8}")
    print("-" * 98)
    for figure in figures:
        reference = by_metric.get(figure.get("reference", ""), {})
        ref_value = f"{reference['value']:>11}" if reference else " " * 11
        ratio = f"{figure['ratio']:>8}" if "ratio" in figure else ""
        print(f"{figure['metric']:58} {figure['value']:>11} {figure['unit']:6} {ref_value} {ratio}")
        if "note" in figure:
            print(f"    {figure['note']}")


def main() -> None:
    parser = argparse.ArgumentParser(description="make bench: ours vs references, one run")
    parser.add_argument("--quick", action="store_true", help="in-process figures only (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results.jsonl")
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    quick = ["--quick"] if args.quick else []
    python = sys.executable
    figures = run_script([python, "benchmarks/bench_predict.py", *quick], env)
    figures += run_script([python, "benchmarks/bench_course.py", *quick], env)
    figures += model_quality()
    figures += run_script([python, "benchmarks/bench_monitor.py"], env)
    # issue 13's decision goals: the gate's and the rollback's error rates, simulated on real months
    figures += run_script([python, "benchmarks/bench_decision.py"], env)
    if not args.quick:
        # issue 12's goal table: whole months replayed in-process on a simulated clock (minutes each)
        figures += run_script([python, "benchmarks/bench_replay.py"], env)
        figures += evidently({f["metric"]: f for f in figures})
        # ride in -> prediction out through the stack on LocalStack (started if needed, left running)
        figures += run_script([python, "-m", "infra.load_test", "--rides", "1000", "--json"], env)
    figures = with_ratios(figures)
    args.out.write_text("".join(json.dumps(f) + "\n" for f in figures))
    print_table(figures)
    print(f"\n{len(figures)} figures written to {args.out}")


if __name__ == "__main__":
    main()
