"""A tiny inline-SVG line chart (no JavaScript, no CDN): the compliance page's daily order latency and the
desk's equity curve and latency series.

Each point gets a marker, so one day draws as three points and thirty as lines; x labels thin out to about
ten whatever the span."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

SERIES = (("p50", "#417690"), ("p95", "#e0a800"), ("p99", "#ba2121"))
WIDTH, HEIGHT, PAD_LEFT, PAD_RIGHT, PAD_BOTTOM, PAD_TOP = 640, 220, 56, 16, 28, 20
MAX_LABELS = 10


def line_chart(*, labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[float | None]]], css_class: str,
               aria_label: str, value_text: Callable[[float], str], zero_based: bool = True, empty_text: str = "no data",
               width: int = WIDTH, pad_left: int = PAD_LEFT) -> SafeString:
    """``series``: ``(name, colour, values)`` with one value (or None) per label. ``zero_based=False`` scales the
    y axis from the lowest value (an equity curve), else from 0."""
    values = [v for _, _, vs in series for v in vs if v is not None]
    top = max(values, default=0.0)
    bottom = 0.0 if zero_based or not values else min(values)
    if top == bottom:
        top, bottom = (top * 1.01 or 1.0, bottom * 0.99) if values and not zero_based else (top or 1.0, bottom)
    plot_w, plot_h = width - pad_left - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = plot_w / max(len(labels) - 1, 1)

    def x(index: int) -> float:
        return round(pad_left + (index * step if len(labels) > 1 else plot_w / 2), 1)

    def y(value: float) -> float:
        return round(PAD_TOP + plot_h - ((value - bottom) / (top - bottom)) * plot_h, 1)

    lines, markers = [], []
    for name, colour, series_values in series:
        points = [(x(i), y(v), labels[i], v) for i, v in enumerate(series_values) if v is not None]
        if len(points) > 1:
            lines.append(format_html('<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>',
                                     colour, " ".join(f"{px},{py}" for px, py, _, _ in points), name))
        markers.extend(format_html('<circle class="point-{}" cx="{}" cy="{}" r="3" fill="{}"><title>{} {}: {}</title></circle>',
                                   name, px, py, colour, label, name, value_text(v))
                       for px, py, label, v in points)
    ticks = (bottom + (top - bottom) * f for f in (0, 0.5, 1))
    grid = format_html_join("", '<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#ddd"/><text x="{3}" y="{4}" font-size="10" text-anchor="end">{5}</text>',
                            ((pad_left, width - PAD_RIGHT, y(t), pad_left - 4, y(t) + 3, value_text(t)) for t in ticks))
    every = max(1, -(-len(labels) // MAX_LABELS))
    x_labels = format_html_join("", '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
                                ((x(i), HEIGHT - 10, label) for i, label in enumerate(labels) if i % every == 0 or i == len(labels) - 1))
    legend = format_html_join("", '<text x="{}" y="{}" font-size="11" fill="{}">{}</text>',
                              ((pad_left + 8 + i * 64, PAD_TOP - 6, colour, name) for i, (name, colour, _) in enumerate(series)))
    empty = "" if values else format_html('<text x="{}" y="{}" font-size="12" text-anchor="middle" fill="#666">{}</text>',
                                           pad_left + plot_w / 2, PAD_TOP + plot_h / 2, empty_text)
    return format_html('<svg class="{}" xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">{}{}{}{}{}{}</svg>',
                       css_class, width, HEIGHT, width, HEIGHT, aria_label, grid, SafeString("".join(lines)),
                       SafeString("".join(markers)), x_labels, legend, empty)


def latency_chart(days: list[dict]) -> SafeString:
    """Daily order latency percentiles (``order_latency_daily``'s rows)."""
    return line_chart(labels=[day["day"].strftime("%m-%d") for day in days],
                      series=[(name, colour, [day[name] for day in days]) for name, colour in SERIES],
                      css_class="latency-chart", aria_label=f"order latency p50 p95 p99, last {len(days)} days",
                      value_text=lambda v: f"{v:.1f} ms", empty_text="no orders in these days")
