"""Server-side SVG charts: no JavaScript, no CDN, nothing to fail in the browser console.

Labels are escaped here; the returned markup is safe to place in a template."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d6a9f", "#2e4057", "#b56576"]


def bar_chart(items: Sequence[tuple[str, float | None]], *, title: str, chart_id: str) -> SafeString:
    """Horizontal bars of rates (0..1); a group with nothing due shows "n/a" and no bar."""
    row_h, label_w, bar_w, pad = 26, 190, 320, 8
    height = pad * 2 + row_h * max(len(items), 1) + 24
    width = label_w + bar_w + 70
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, rate) in enumerate(items):
        y = pad + index * row_h
        parts.append(f'<text x="{label_w - 8}" y="{y + 17}" text-anchor="end" class="label">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 4}" width="{bar_w}" height="{row_h - 8}" class="track"/>')
        if rate is None:
            parts.append(f'<text x="{label_w + 6}" y="{y + 17}" class="value">n/a</text>')
            continue
        length = max(round(bar_w * rate, 1), 1.0)
        parts.append(
            f'<rect class="bar" data-group="{escape(label)}" data-value="{rate}" x="{label_w}" y="{y + 4}" '
            f'width="{length}" height="{row_h - 8}" fill="{PALETTE[index % len(PALETTE)]}"/>'
        )
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 17}" class="value">{rate * 100:.1f}%</text>')
    axis_y = height - 10
    for tick in (0, 0.5, 1):
        x = label_w + bar_w * tick
        parts.append(f'<text x="{x}" y="{axis_y}" text-anchor="middle" class="tick">{int(tick * 100)}%</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated label is escaped above)


def line_chart(
    series: dict[str, list[tuple[str, float | None]]], weeks: Sequence[str], *, title: str, chart_id: str
) -> SafeString:
    """On-time rate per week, one line per group; weeks with nothing due leave a gap."""
    width, height, left, right, top, bottom = 640, 260, 44, 170, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(weeks) - 1, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1):
        y = top + plot_h * (1 - tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y}" y2="{y}" class="grid"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end" class="tick">{int(tick * 100)}%</text>')
    for index, week in enumerate(weeks):
        if len(weeks) <= 8 or index % max(len(weeks) // 6, 1) == 0:
            x = left + index * step
            parts.append(f'<text x="{x}" y="{height - 14}" text-anchor="middle" class="tick">{escape(week[5:])}</text>')
    for index, (name, points) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        by_week = dict(points)
        segment: list[str] = []
        segments: list[list[str]] = []
        for w_index, week in enumerate(weeks):
            rate = by_week.get(week)
            if rate is None:
                if segment:
                    segments.append(segment)
                segment = []
                continue
            segment.append(f"{left + w_index * step:.1f},{top + plot_h * (1 - rate):.1f}")
        if segment:
            segments.append(segment)
        for points_ in segments:
            if len(points_) == 1:
                cx, cy = points_[0].split(",")
                parts.append(f'<circle class="point" cx="{cx}" cy="{cy}" r="3" fill="{colour}"/>')
            else:
                parts.append(
                    f'<polyline class="series" data-group="{escape(name)}" fill="none" stroke="{colour}" '
                    f'stroke-width="2" points="{" ".join(points_)}"/>'
                )
        legend_y = top + 14 + index * 18
        parts.append(f'<rect x="{width - right + 12}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{width - right + 26}" y="{legend_y}" class="legend">{escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated label is escaped above)
