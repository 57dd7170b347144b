"""A tiny inline-SVG line chart (no JavaScript, no CDN): daily order latency percentiles.

Each day with data gets a marker, so one day draws as three points and thirty as lines; day labels
thin out to about ten whatever the span."""
from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

SERIES = (("p50", "#417690"), ("p95", "#e0a800"), ("p99", "#ba2121"))
WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_BOTTOM, PAD_TOP = 640, 220, 56, 16, 28, 20
MAX_LABELS = 10


def latency_chart(days: list[dict]) -> SafeString:
    values = [day[name] for day in days for name, _ in SERIES if day[name] is not None]
    top = max(values, default=0) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(days) - 1, 1)

    def x(index: int) -> float:
        return round(PAD_LEFT + (index * step if len(days) > 1 else plot_w / 2), 1)

    def y(value: float) -> float:
        return round(PAD_TOP + plot_h - (value / top) * plot_h, 1)

    lines, markers = [], []
    for name, colour in SERIES:
        points = [(x(i), y(day[name]), day) for i, day in enumerate(days) if day[name] is not None]
        if len(points) > 1:
            lines.append(format_html('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>',
                                     colour, " ".join(f"{px},{py}" for px, py, _ in points), name))
        markers.extend(format_html('<circle class="point-{}" cx="{}" cy="{}" r="3" fill="{}"><title>{} {}: {} ms</title></circle>',
                                   name, px, py, colour, day["day"].isoformat(), name, f"{day[name]:.1f}")
                       for px, py, day in points)
    grid = format_html_join("", '<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#ddd"/><text x="{3}" y="{4}" font-size="10" text-anchor="end">{5} ms</text>',
                            ((PAD_LEFT, WIDTH - PAD_RIGHT, y(top * f), PAD_LEFT - 4, y(top * f) + 3, f"{top * f:.1f}") for f in (0, 0.5, 1)))
    every = max(1, -(-len(days) // MAX_LABELS))
    labels = format_html_join("", '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                              ((x(i), HEIGHT - 10, day["day"].strftime("%m-%d")) for i, day in enumerate(days)
                               if i % every == 0 or i == len(days) - 1))
    legend = format_html_join("", '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                              ((PAD_LEFT + 8 + i * 48, PAD_TOP - 6, colour, name) for i, (name, colour) in enumerate(SERIES)))
    empty = "" if values else format_html('<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#666">no orders in these days</text>',
                                           PAD_LEFT + plot_w / 2, PAD_TOP + plot_h / 2)
    return format_html('<svg class="latency-chart" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="order latency p50 p95 p99, last {} days">{}{}{}{}{}{}</svg>',
                       WIDTH, HEIGHT, WIDTH, HEIGHT, len(days), grid, SafeString("".join(lines)), SafeString("".join(markers)), labels, legend, empty)
