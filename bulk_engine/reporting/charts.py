"""The HTML report's charts: inline SVG line charts of throughput and rate-limit usage over time.

Drawn from the report's ``timeseries`` samples (:meth:`~bulk_engine.reporting.recorder.RunRecorder.timeseries`)
and ``throttles``; times are seconds since the run started (wall clock). No script, font or image is
fetched; every label is HTML-escaped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["PALETTE", "Series", "line_chart", "throughput_chart", "usage_chart"]

PALETTE = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#0891b2", "#db2777", "#65a30d", "#4b5563")


def _nice_max(value: float) -> float:
    """A round upper bound for an axis (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * exp:
            return float(step * exp)
    return float(10 * exp)


def _fmt_tick(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


Series = tuple[str, str, Sequence[tuple[float, float]], bool]  # name, colour, points, dashed


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    y_max: float | None = None,
    x_max: float | None = None,
    bands: Sequence[tuple[float, float, str, str]] = (),
    markers: Sequence[tuple[float, str]] = (),
    guide: float | None = None,
    chart_id: str = "chart",
) -> str:
    """An inline SVG line chart. ``bands`` = (x0, x1, colour, tooltip) shaded spans; ``markers`` = (x,
    tooltip) red ticks on the top edge; ``guide`` a dashed horizontal line (e.g. 100 %)."""
    width, height = 1040, 260
    left, right, top, bottom = 56, 16, 14, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for _, _, pts, _ in series for x, _ in pts] + [b[1] for b in bands] + [m[0] for m in markers]
    ys = [y for _, _, pts, _ in series for _, y in pts]
    x_step = _nice_max(max(x_max if x_max is not None else max(xs, default=1.0), 1e-3) / 5)
    x_top = max(1, math.ceil(max(x_max or 0.0, *xs, 1e-3) / x_step - 1e-9)) * x_step
    y_top = y_max if y_max is not None else _nice_max(max(ys, default=1.0) * 1.1)
    y_top = y_top or 1.0

    def sx(x: float) -> float:
        return left + plot_w * min(max(x, 0.0), x_top) / x_top

    def sy(y: float) -> float:
        return top + plot_h * (1 - min(max(y, 0.0), y_top) / y_top)

    parts = [
        f'<svg id="{escape(chart_id)}" class="chart-svg" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fff" stroke="#e5e7eb"/>',
    ]
    for i in range(5):  # horizontal grid and y ticks
        value = y_top * i / 4
        y = sy(value)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#f3f4f6"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#6b7280">'
            f"{_fmt_tick(value)}</text>"
        )
    for i in range(round(x_top / x_step) + 1):  # x ticks
        value = x_step * i
        x = sx(value)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#9ca3af"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle" font-size="11" fill="#6b7280">'
            f"{_fmt_tick(value)} s</text>"
        )
    parts.append(
        f'<text x="14" y="{top + plot_h / 2:.1f}" font-size="11" fill="#374151" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{escape(y_label)}</text>'
    )
    for x0, x1, colour, tip in bands:
        bx0, bx1 = sx(x0), sx(x1)
        parts.append(
            f'<rect class="parked" x="{bx0:.1f}" y="{top}" width="{max(1.0, bx1 - bx0):.1f}" height="{plot_h}" '
            f'fill="{colour}" fill-opacity="0.12"><title>{escape(tip)}</title></rect>'
        )
    if guide is not None and guide <= y_top:
        y = sy(guide)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#dc2626" '
            f'stroke-dasharray="6 4" stroke-width="1"/>'
        )
    for name, colour, points, dashed in series:
        if not points:
            continue
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2"{dash} '
            f'points="{coords}"><title>{escape(name)}</title></polyline>'
        )
        if len(points) == 1:
            x, y = points[0]
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>')
    for x, tip in markers:
        mx = sx(x)
        parts.append(
            f'<path class="throttle" d="M{mx - 5:.1f},{top} L{mx + 5:.1f},{top} L{mx:.1f},{top + 9} Z" '
            f'fill="#dc2626"><title>{escape(tip)}</title></path>'
        )
    if not any(points for _, _, points, _ in series):
        parts.append(
            f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" fill="#9ca3af">'
            "no data recorded</text>"
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{escape(name)}</span>' for name, colour, _, _ in series
    )
    if bands:
        legend += (
            '<span><i style="background:#2563eb;opacity:.25;height:10px"></i>parked (nothing sent)</span>'
        )
    if markers:
        legend += '<span><i style="background:#dc2626"></i>throttle</span>'
    if guide is not None:
        legend += '<span><i style="background:#dc2626;height:1px"></i>limit</span>'
    return f'<div class="chart">{"".join(parts)}<div class="legend">{legend}</div></div>'


def _samples(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    ts = report.get("timeseries")
    samples = ts.get("samples") if isinstance(ts, Mapping) else None
    return [s for s in samples or [] if isinstance(s, Mapping) and isinstance(s.get("t"), int | float)]


def _rate_spans(samples: Sequence[Mapping[str, Any]], min_dt: float) -> list[tuple[Mapping[str, Any], Any]]:
    """Consecutive (from, to) samples at least ``min_dt`` apart: the last sample is forced when the run ends,
    often milliseconds after the one before, and a rate over that sliver drew a spike that flattened the chart
    (it is merged into the span before it)."""
    spans: list[tuple[Mapping[str, Any], Any]] = []
    anchor = samples[0] if samples else None
    for cur in samples[1:]:
        assert anchor is not None
        if float(cur["t"]) - float(anchor["t"]) >= min_dt:
            spans.append((anchor, cur))
            anchor = cur
    if samples and anchor is not samples[-1]:
        last = samples[-1]
        if spans:
            spans[-1] = (spans[-1][0], last)
        elif float(last["t"]) > float(samples[0]["t"]):
            spans.append((samples[0], last))
    return spans


def throughput_chart(report: Mapping[str, Any]) -> str:
    samples = _samples(report)
    ts = report.get("timeseries")
    interval = ts.get("interval_s") if isinstance(ts, Mapping) else None
    min_dt = float(interval) / 2 if isinstance(interval, int | float) and interval > 0 else 0.0
    ops: list[tuple[float, float]] = []
    calls: list[tuple[float, float]] = []
    for prev, cur in _rate_spans(samples, min_dt):
        dt = float(cur["t"]) - float(prev["t"])
        if dt <= 0:
            continue
        ops.append((float(cur["t"]), max(0.0, (cur.get("ops_done", 0) - prev.get("ops_done", 0)) / dt)))
        calls.append((float(cur["t"]), max(0.0, (cur.get("calls_done", 0) - prev.get("calls_done", 0)) / dt)))
    x_max = max((float(s["t"]) for s in samples), default=1.0)
    return line_chart(
        [
            ("operations finished / s", PALETTE[0], ops, False),
            ("Graph calls answered / s", PALETTE[2], calls, True),
        ],
        title="Throughput over time",
        y_label="per second",
        x_max=x_max,
        chart_id="throughput-chart",
    )


def usage_chart(report: Mapping[str, Any]) -> str:
    samples = _samples(report)
    keys: list[str] = []
    for sample in samples:
        usage = sample.get("usage")
        for key in usage if isinstance(usage, Mapping) else ():
            if key not in keys:
                keys.append(str(key))
    for sample in samples:
        for key in sample.get("parked") or ():
            if str(key) not in keys:
                keys.append(str(key))
    colours = {key: PALETTE[i % len(PALETTE)] for i, key in enumerate(keys)}
    series: list[Series] = []
    for key in keys:
        points = [
            (float(s["t"]), float(s["usage"][key]))
            for s in samples
            if isinstance(s.get("usage"), Mapping) and isinstance(s["usage"].get(key), int | float)
        ]
        series.append((f"{key} usage %", colours[key], points, False))
    bands: list[tuple[float, float, str, str]] = []
    for key in keys:  # consecutive samples where the pair was parked
        start: float | None = None
        for sample in samples:
            parked = key in (sample.get("parked") or ())
            t = float(sample["t"])
            if parked and start is None:
                start = t
            elif not parked and start is not None:
                bands.append((start, t, colours[key], f"{key} parked {start:.1f}–{t:.1f} s"))
                start = None
        if start is not None and samples:
            end = float(samples[-1]["t"])
            bands.append((start, end, colours[key], f"{key} parked from {start:.1f} s"))
    markers = []
    for throttle in report.get("throttles") or ():
        if isinstance(throttle, Mapping) and isinstance(throttle.get("t"), int | float):
            tip = (
                f"{throttle.get('account_id')} {throttle.get('buc_type')} throttled at {throttle['t']:.1f} s "
                f"(code {throttle.get('code')}/{throttle.get('subcode')}), parked {throttle.get('parked_s')} s"
            )
            markers.append((float(throttle["t"]), tip))
    x_max = max((float(s["t"]) for s in samples), default=1.0)
    return line_chart(
        series,
        title="Rate-limit usage over time (per ad account and BUC type)",
        y_label="usage %",
        y_max=100.0,
        x_max=x_max,
        bands=bands,
        markers=markers,
        guide=100.0,
        chart_id="usage-chart",
    )
