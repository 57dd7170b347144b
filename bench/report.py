"""The report of one `make bench` run: latest.json, latest.md and the PNG charts.

Charts always get written: when their data is missing (a script failed or is not there yet) the PNG says so.
"""
from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ORDER_CHART = "order_latency.png"
SWEEP_CHART = "sweep_p95.png"

HOW_TO_READ = """\
**How to read this.** Each row is one performance target, measured in this run on this machine. *pass* means the
measured figure meets the target, *miss* that it does not, *info* rows have no target and give context, and
*error* means the script did not produce the figure (missing, failed or timed out: see "Errors" below). Latencies
are percentiles of per-request timings, never averages; throughput figures are compared with alpacasim's own on
the same machine in the same run, so they are ratios rather than absolute numbers. The machine section says how
many cores there were and what the load average was at the start and end: a load above the core count means other
work competed with the benchmark, and latencies and throughput will look worse than on an idle machine. Charts:
`order_latency.png` shows the stock-order latency through the API and straight to alpacasim with alpaca-py, with
the per-order gateway overhead (the difference) overlaid; `sweep_p95.png` shows the API's p95 over time while the
sell sweep runs, against the idle p95 and the 1.1 × idle limit."""


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def write_json(path: Path, report: dict) -> None:
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")


def write_markdown(path: Path, report: dict) -> None:
    m, cfg, git = report["machine"], report["configuration"], report["git"]
    counts = {s: sum(1 for f in report["figures"] if f["status"] == s) for s in ("pass", "miss", "error")}
    lines = [
        f"# Benchmark report ({cfg['mode']})",
        "",
        f"Run {report['started_at']} · {report['duration_s']:.0f} s · commit `{(git.get('commit') or 'unknown')[:12]}`"
        + (" (uncommitted changes)" if git.get("dirty") else ""),
        "",
        f"Machine: {m['cores']} cores ({m['cores_usable']} usable), {m['ram_gb']} GB RAM, {m['cpu_model']}; "
        f"load average (1, 5, 15 min) {report['load_average']['start']} at start, {report['load_average']['end']} at end.",
        "",
        f"Database: {cfg['database']}. Broker and cache: {cfg['redis']}.",
        "",
        *(["**Smoke mode**: a handful of requests and 20 accounts per script, to prove the scripts run; "
           "the figures mean nothing.", ""] if cfg["mode"] == "smoke" else []),
        f"**{counts['pass']} pass, {counts['miss']} miss, {counts['error']} error.**",
        "",
        "| figure | target | measured | result |",
        "|---|---|---|---|",
    ]
    for f in report["figures"]:
        measured = f"{_fmt(f['value'])} {f['unit']}".strip() if f["value"] is not None else "–"
        result = f["status"] if f["status"] != "error" else f"error ({f['script']})"
        lines.append(f"| {f['label']} | {f['target']} | {measured} | {result} |")
    lines += ["", HOW_TO_READ, "", f"![order latency]({ORDER_CHART})", "", f"![API p95 during the sweep]({SWEEP_CHART})", ""]
    errors = {name: s for name, s in report["scripts"].items() if s["status"] != "ok"}
    if errors:
        lines += ["## Errors", ""]
        for name, s in errors.items():
            lines += [f"**{name}**: {s['error']}", ""]
            if s.get("stderr_tail"):
                lines += ["```", s["stderr_tail"].rstrip()[-1500:], "```", ""]
    lines += ["## Scripts", "", "| script | status | seconds | command |", "|---|---|---|---|"]
    for name, s in report["scripts"].items():
        lines.append(f"| {name} | {s['status']} | {s.get('seconds', '–')} | `{s.get('command', '')}` |")
    if cfg.get("scripts_not_run"):
        lines += ["", "Not run (not listed in bench/figures.py): " + ", ".join(f"`{n}`" for n in cfg["scripts_not_run"])]
    v = report["versions"]
    lines += ["", "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), ""]
    path.write_text("\n".join(lines))


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def order_chart(path: Path, order: dict | None, error: str | None) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    samples = (order or {}).get("samples") or {}
    api, direct = samples.get("api_ms") or [], samples.get("direct_ms") or []
    if api and direct:
        overhead = [a - d for a, d in zip(api, direct, strict=False)]
        top = sorted(api + direct)[int(0.99 * (len(api) + len(direct) - 1))]
        bins = [i * top / 60 for i in range(61)]
        clip = [min(x, top) for x in api], [min(x, top) for x in direct]
        ax.hist(clip[1], bins=bins, alpha=0.5, label=f"direct alpaca-py → alpacasim (n={len(direct)})")
        ax.hist(clip[0], bins=bins, alpha=0.5, label=f"through the gateway API (n={len(api)})")
        ax.hist([max(min(x, top), bins[0]) for x in overhead], bins=bins, histtype="step", linewidth=2, color="black",
                label="gateway overhead per order (API − direct)")
        over = order.get("overhead_ms") or {}
        for key, style in (("p50", "--"), ("p95", ":")):
            if key in over:
                ax.axvline(over[key], color="black", linestyle=style, label=f"overhead {key} = {over[key]:.2f} ms")
        ax.axvline(5, color="green", linestyle="--", alpha=0.6, label="target p50 ≤ 5 ms")
        ax.axvline(10, color="red", linestyle=":", alpha=0.6, label="target p95 ≤ 10 ms")
        ax.set_xlabel("ms (values above the 99th percentile shown in the last bin)")
        ax.set_ylabel("orders")
        ax.legend(fontsize=8)
    else:
        _placeholder(ax, "no per-order samples: " + (error or "order_overhead printed no samples"))
    ax.set_title("Stock order latency: gateway API vs direct alpaca-py")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _points(timeline: object) -> list[tuple[float, float]]:
    points = []
    for item in timeline if isinstance(timeline, list) else []:
        if isinstance(item, dict):
            t = next((item[k] for k in ("t", "t_s", "time_s", "elapsed_s", "second") if k in item), None)
            p = next((item[k] for k in ("p95_ms", "p95") if k in item), None)
        elif isinstance(item, list | tuple) and len(item) >= 2:
            t, p = item[0], item[1]
        else:
            continue
        if isinstance(t, int | float) and isinstance(p, int | float):
            points.append((float(t), float(p)))
    return points


def sweep_chart(path: Path, sweep: dict | None, error: str | None) -> None:
    fig, ax = plt.subplots(figsize=(9, 4.5))
    points = _points((sweep or {}).get("timeline"))
    if points:
        ax.plot([t for t, _ in points], [p for _, p in points], marker="o", label="API p95 per interval")
        idle = sweep.get("idle_p95_ms")
        if isinstance(idle, int | float):
            ax.axhline(idle, color="green", linestyle="--", label=f"idle p95 = {idle:.2f} ms")
            ax.axhline(1.1 * idle, color="red", linestyle=":", label="limit 1.1 × idle")
        seconds = sweep.get("sweep_under_api_load_seconds", sweep.get("sweep_seconds"))
        start = sweep.get("sweep_started_s", 0.0)
        if isinstance(seconds, int | float) and isinstance(start, int | float):
            ax.axvspan(start, start + seconds, alpha=0.1, color="orange", label=f"sweep ({seconds:.1f} s)")
        ax.set_xlabel("seconds")
        ax.set_ylabel("p95 latency, ms")
        ax.legend(fontsize=8)
    else:
        _placeholder(ax, "no sweep timeline: " + (error or "sell_sweep printed no timeline"))
    ax.set_title("API p95 over time during the sell sweep")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
