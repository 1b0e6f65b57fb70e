"""The drift report: JSON (the record) and a self-contained HTML page with inline SVG pictures."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from trip_core.profile import CategoricalReference, NumericReference, ReferenceProfile, histogram
from trip_core.zones import zone_table

TOP_CATEGORIES = 15
DRIFT_LINE = 1.0  # distance / threshold above it = drift (each window has its own calibrated threshold)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


def _label(column: str, code: float) -> str:
    if column in ("PULocationID", "DOLocationID"):
        zones = zone_table()
        return f"{int(code)} {zones.borough_names[zones.borough_code[int(code)]] or '?'}"
    return str(int(code)) if float(code).is_integer() else f"{code:g}"


def histograms(profile: ReferenceProfile, current: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Pooled reference vs current shares per column, for the page (numeric: the profile's linear bins)."""
    result: dict[str, Any] = {}
    for name, reference in profile.columns.items():
        values = current.get(name)
        if values is None:
            continue
        if isinstance(reference, NumericReference):
            cur = histogram(reference.hist_edges, values)
            result[name] = {
                "kind": "numeric",
                "edges": reference.hist_edges.tolist(),
                "reference": _shares(reference.hist_counts),
                "current": _shares(cur),
            }
        elif isinstance(reference, CategoricalReference):
            counts = np.bincount(reference.bins(values), minlength=reference.codes.size)[
                : reference.codes.size
            ]
            ref_share = dict(zip(reference.codes.tolist(), _shares(reference.counts), strict=True))
            cur_share = dict(zip(reference.codes.tolist(), _shares(counts), strict=True))
            top = sorted(
                set(ref_share) | set(cur_share), key=lambda c: -max(ref_share.get(c, 0), cur_share.get(c, 0))
            )
            top = sorted(top[:TOP_CATEGORIES])
            result[name] = {
                "kind": "categorical",
                "labels": [_label(name, code) for code in top],
                "reference": [ref_share.get(code, 0.0) for code in top],
                "current": [cur_share.get(code, 0.0) for code in top],
            }
    return result


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


# ------------------------------------------------------------------------------------------- SVG


def _bars_svg(title: str, labels: Sequence[str], ref: Sequence[float], cur: Sequence[float]) -> str:
    width, height, left, bottom = 520, 220, 40, 40
    n = max(len(ref), 1)
    top = max([*ref, *cur, 1e-9])
    slot = (width - left - 10) / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#333"/>',
        f'<text x="2" y="{30}" font-size="10">{top:.0%}</text>',
    ]
    plot = height - bottom - 25
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        x = left + i * slot
        for j, (value, colour) in enumerate(((r, "#1f77b4"), (c, "#ff7f0e"))):
            h = plot * value / top
            parts.append(
                f'<rect x="{x + j * slot / 2:.1f}" y="{height - bottom - h:.1f}" '
                f'width="{max(slot / 2 - 1, 0.5):.1f}" height="{h:.1f}" fill="{colour}">'
                f"<title>{html.escape(labels[i])}: "
                f"{'reference' if j == 0 else 'current'} {value:.2%}</title></rect>"
            )
        if n <= 30 or i % max(n // 15, 1) == 0:
            parts.append(
                f'<text x="{x + slot / 2:.1f}" y="{height - bottom + 12}" font-size="8" text-anchor="end" '
                f'transform="rotate(-45 {x + slot / 2:.1f} {height - bottom + 12})">'
                f"{html.escape(labels[i])}</text>"
            )
    parts.append(
        f'<rect x="{width - 170}" y="4" width="10" height="10" fill="#1f77b4"/>'
        f'<text x="{width - 156}" y="13" font-size="10">reference</text>'
        f'<rect x="{width - 100}" y="4" width="10" height="10" fill="#ff7f0e"/>'
        f'<text x="{width - 86}" y="13" font-size="10">current</text></svg>'
    )
    return "".join(parts)


def _lines_svg(
    title: str, times: Sequence[str], series: Mapping[str, Sequence[float | None]], limit: float
) -> str:
    width, height, left, bottom, right = 720, 260, 40, 30, 150
    values = [v for s in series.values() for v in s if v is not None]
    top = max([*values, limit * 1.5, 1e-9])
    n = len(times)
    plot_w, plot_h = width - left - right, height - bottom - 25

    def xy(i: int, v: float) -> str:
        x = left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return f"{x:.1f},{height - bottom - plot_h * v / top:.1f}"

    y_limit = height - bottom - plot_h * limit / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{left + plot_w}" y2="{height - bottom}" '
        'stroke="#333"/>',
        f'<line x1="{left}" y1="{y_limit:.1f}" x2="{left + plot_w}" y2="{y_limit:.1f}" stroke="#d62728" '
        f'stroke-dasharray="4 3"/><text x="2" y="{y_limit + 3:.1f}" font-size="10">{limit:g}</text>',
        f'<text x="{left}" y="{height - 8}" font-size="9">{html.escape(times[0] if times else "")}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" font-size="9" text-anchor="end">'
        f"{html.escape(times[-1] if times else '')}</text>",
    ]
    for k, (name, points) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        coords = [xy(i, v) for i, v in enumerate(points) if v is not None]
        if len(coords) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(coords)}"/>'
            )
        parts.extend(
            f'<circle cx="{c.split(",")[0]}" cy="{c.split(",")[1]}" r="2" fill="{colour}"/>' for c in coords
        )
        parts.append(
            f'<rect x="{width - right + 10}" y="{25 + k * 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{width - right + 24}" y="{34 + k * 14}" font-size="10">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _history_series(
    version: str, reports: Sequence[Mapping[str, Any]]
) -> tuple[list[str], dict[str, list[float | None]]]:
    times: list[str] = []
    series: dict[str, list[float | None]] = {}
    rows = []
    for report in reports:
        result = report.get("versions", {}).get(version)
        if not result or result.get("status") != "ok":
            continue
        columns = dict(result["drift"]["features"])
        if result["drift"].get("prediction"):
            columns["prediction"] = result["drift"]["prediction"]
        scores = {
            name: col["distance"] / col["threshold"] for name, col in columns.items() if col["threshold"]
        }
        rows.append((report["window"]["end"], scores))
    for end, scores in sorted(rows, key=lambda row: row[0]):
        times.append(end)
        for name in set(series) | set(scores):
            series.setdefault(name, [None] * (len(times) - 1)).append(scores.get(name))
    return times, series


# ------------------------------------------------------------------------------------------ page


def render(report: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> tuple[bytes, bytes]:
    """(JSON bytes, HTML bytes) of a report; `history` = earlier reports (for drift over time)."""
    json_body = json.dumps(report, sort_keys=True, allow_nan=False, default=float).encode("utf-8")
    window = report["window"]
    earlier = [h for h in history if h.get("window", {}).get("end") != window["end"]]
    out = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Drift report {html.escape(window['end'])}</title>",
        "<style>body{font-family:sans-serif;margin:20px}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}.drift{background:#fdd}"
        ".grid{display:flex;flex-wrap:wrap;gap:10px}</style></head><body>",
        f"<h1>Trip-duration drift report</h1><p>Window {html.escape(window['start'])} .. "
        f"{html.escape(window['end'])} &middot; predictions {report['prediction_count']} &middot; "
        f"rejected {report['rejected']['count']}"
        + (f" (share {report['rejected']['share']:.2%})" if report["rejected"]["share"] is not None else "")
        + "</p>",
    ]
    for version, result in report["versions"].items():
        out.append(
            f"<h2>Model version {html.escape(version)} &middot; {result['prediction_count']} predictions</h2>"
        )
        if result["status"] != "ok":
            out.append(f"<p><b>{html.escape(result['status'])}</b> {html.escape(result.get('error', ''))}"
                       " &mdash; no drift verdict.</p>")  # fmt: skip
            continue
        drift = result["drift"]
        out.append(
            f"<p>Drifted features: {drift['drift_share']:.0%} &middot; dataset drift: "
            f"<b>{'YES' if drift['dataset_drift'] else 'no'}</b> &middot; missing/invalid rows: "
            f"{result['missing_share']:.2%}</p>"
        )
        out.append(
            "<table><tr><th>column</th><th>n</th><th>statistic</th><th>distance</th><th>null median</th>"
            "<th>threshold</th><th>p-value</th><th>drift</th></tr>"
        )
        columns = dict(drift["features"])
        if drift["prediction"]:
            columns["prediction"] = drift["prediction"]
        for name, col in columns.items():
            cls = " class='drift'" if col["drifted"] else ""
            out.append(
                f"<tr{cls}><td>{html.escape(name)}</td><td>{col['n']}</td><td>{col['statistic']}</td>"
                f"<td>{col['distance']:.4f}</td><td>{col['null_median']:.4f}</td><td>{col['threshold']:.4f}</td>"
                f"<td>{col['p_value']:.3f}</td><td>{'yes' if col['drifted'] else 'no'}</td></tr>"
            )
        out.append("</table>")
        q = result["quality"]
        if q.get("mae") is not None:
            out.append(
                f"<p>Quality on {q['joined']} rides with actuals: MAE {q['mae']:.2f} min "
                f"(x{q['mae_ratio'] or 0:.2f} validation), RMSE {q['rmse']:.2f} min "
                f"(x{q['rmse_ratio'] or 0:.2f} validation)"
                + ("" if q["published"] else " &mdash; too few to publish")
                + "</p>"
            )
        else:
            out.append("<p>No actuals yet for this window.</p>")
        out.append("<div class='grid'>")
        for name, hist in result["histograms"].items():
            if hist["kind"] == "numeric":
                edges = hist["edges"]
                labels = [f"{edges[i]:g}" for i in range(len(edges) - 1)]
            else:
                labels = hist["labels"]
            out.append(_bars_svg(name, labels, hist["reference"], hist["current"]))
        out.append("</div>")
        times, series = _history_series(version, [*earlier, report])
        out.append(_lines_svg(f"Drift distance / its threshold over time, version {version}", times, series,
                              DRIFT_LINE))  # fmt: skip
    out.append("</body></html>")
    return json_body, "".join(out).encode("utf-8")
