"""The benchmark scripts the runner knows and the figures it reads from their JSON.

A figure names its script, the path of keys to its value in the script's JSON, and its target (or none: an
informative figure). A script that is missing, fails, or lacks a key makes its figures "error".
"""
from __future__ import annotations

from dataclasses import dataclass

# Run order: cheap and independent first; the long whole-stack ones last.
SCRIPTS = ("sim_throughput", "sim_streams", "audit_write", "order_overhead", "quote_throughput", "saturation", "lifecycle", "accounts_scale",
           "memory", "sell_sweep", "tick_exit", "hub_fanout", "desk_pages", "scale_out")
# Modules under bench/ that are not benchmark scripts.
HELPERS = frozenset({"__init__", "__main__", "figures", "machine", "report", "wrk", "gateway", "profile_order", "profile_quote", "profile_ledger", "cache_client"})


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    script: str
    path: tuple[str, ...]
    unit: str
    op: str | None = None  # "<=" or ">="; None: informative, no target
    target: float | None = None

    def target_text(self) -> str:
        if self.op is None:
            return "–"
        return f"{'≤' if self.op == '<=' else '≥'} {self.target:g} {self.unit}".strip()

    def verdict(self, value: float) -> str:
        if self.op is None:
            return "info"
        ok = value <= self.target if self.op == "<=" else value >= self.target
        return "pass" if ok else "miss"


FIGURES: tuple[Figure, ...] = (
    # From the client: percentiles of (gateway order − the same order straight to alpacasim) per interleaved pair.
    Figure("gateway_overhead_p50_ms", "Gateway overhead from the client, stock order, per-pair p50", "order_overhead",
           ("overhead_ms", "p50"), "ms", "<=", 5),
    Figure("gateway_overhead_p95_ms", "Gateway overhead from the client, stock order, per-pair p95", "order_overhead",
           ("overhead_ms", "p95"), "ms", "<=", 10),
    Figure("gateway_overhead_p99_ms", "Gateway overhead from the client, stock order, per-pair p99", "order_overhead",
           ("overhead_ms", "p99"), "ms"),
    Figure("gateway_overhead_pairs", "Gateway overhead: measured pairs", "order_overhead", ("pairs",), "pairs"),
    Figure("server_request_overhead_p50_ms", "Server side: request_total_ms − broker_ms, p50", "order_overhead",
           ("server_request_overhead_ms", "p50"), "ms"),
    Figure("server_record_overhead_p50_ms", "Server side: the record's overhead_ms, p50", "order_overhead",
           ("server_reported_overhead_ms", "p50"), "ms"),
    Figure("gateway_percentile_difference_p50_ms", "Gateway p50 − direct p50 (not paired)", "order_overhead",
           ("percentile_difference_ms", "p50"), "ms"),
    Figure("quote_throughput_ratio", "Quote throughput, gateway / alpacasim (c=32), not streamed", "quote_throughput", ("ratio",), "×"),
    Figure("quote_gateway_rps", "Quote throughput through the gateway", "quote_throughput", ("gateway_rps",), "req/s"),
    Figure("quote_sim_rps", "Quote throughput of alpacasim, same route", "quote_throughput", ("sim_rps",), "req/s"),
    Figure("scale_out_quote_ratio", "Quote throughput, two web processes / one (same host)", "scale_out", ("quote_ratio",), "×"),
    Figure("scale_out_order_ratio", "Order throughput, two web processes / one (same host)", "scale_out", ("order_ratio",), "×"),
    Figure("quote_saturation_rps", "Saturation: quote route, highest req/s with p99 ≤ 1 s and no failure", "saturation",
           ("quote_saturation", "requests_per_s"), "req/s"),
    Figure("health_saturation_rps", "Saturation: /health, highest req/s with p99 ≤ 1 s and no failure", "saturation",
           ("health_saturation", "requests_per_s"), "req/s"),
    Figure("sync_and_detection_s", "sync_accounts + detection, 1000 accounts", "accounts_scale", ("sync_and_detection_s",), "s", "<=", 10),
    Figure("web_worker_ready_s", "Web worker ready, 1000 accounts", "accounts_scale", ("web_worker_ready_s",), "s", "<=", 3),
    Figure("sweep_seconds", "Sell sweep 1000 × 5, 2 worker processes", "sell_sweep", ("sweep_seconds",), "s", "<=", 10),
    Figure("sweep_under_api_load_s", "Sell sweep 1000 × 5 while the API client runs", "sell_sweep",
           ("sweep_under_api_load_seconds",), "s"),
    Figure("sweep_api_p95_ratio", "API p95 during sweep / idle p95", "sell_sweep", ("ratio",), "×", "<=", 1.1),
    Figure("idle_api_p95_ms", "API p95 idle", "sell_sweep", ("idle_p95_ms",), "ms"),
    Figure("sweep_api_p95_ms", "API p95 during sweep", "sell_sweep", ("sweep_p95_ms",), "ms"),
    Figure("desk_pages_p95_ms", "Desk pages, worst page p95 (1,000 accounts, 100,000 order records)", "desk_pages",
           ("worst_p95_ms",), "ms", "<=", 300),
    Figure("desk_account_p95_ms", "Desk account page p95 (two broker calls to alpacasim, FIFO P&L)", "desk_pages",
           ("pages", "account", "p95_ms"), "ms"),
    Figure("desk_overview_p95_ms", "Desk accounts overview p95", "desk_pages", ("pages", "overview", "p95_ms"), "ms"),
    Figure("audit_write_median_ms", "OrderRecord + AuditEvent write, median", "audit_write", ("median_ms",), "ms", "<=", 1),
    Figure("audit_write_p95_ms", "OrderRecord + AuditEvent write, p95", "audit_write", ("p95_ms",), "ms"),
    Figure("sim_rps", "alpacasim requests/s, one core (lowest route)", "sim_throughput", ("min_requests_per_s",), "req/s", ">=", 2000),
    Figure("sim_stream_msgs_per_s", "alpacasim stream messages/s sustained, one core", "sim_streams", ("sustained_msgs_per_s",),
           "msg/s", ">=", 1000),
    Figure("sim_stream_p99_ms", "alpacasim stream tick → client p99 at 1,000 msg/s", "sim_streams", ("latency_phase", "p99_ms"), "ms"),
    Figure("fill_to_ledger_p99_ms", "Fill to ledger (alpacasim event timestamp → committed OrderEvent), p99, 200 accounts, 50 fills/s",
           "lifecycle", ("fill_to_ledger_ms", "p99"), "ms", "<=", 100),
    Figure("fill_to_ledger_p50_ms", "Fill to ledger, p50, 50 fills/s", "lifecycle", ("fill_to_ledger_ms", "p50"), "ms"),
    Figure("fill_to_ledger_saturated_p99_ms", "Fill to ledger, p99, orders back to back (saturated, mostly queueing), same run",
           "lifecycle", ("saturated", "fill_to_ledger_ms", "p99"), "ms"),
    Figure("fill_saturated_rate", "Fills/s offered in the saturated phase (all recorded)", "lifecycle", ("saturated", "submit_rate_per_s"), "fills/s"),
    Figure("listener_kb_per_account", "Trade-updates listener memory per connected account", "lifecycle", ("memory_per_account_kb",), "KB"),
    Figure("tick_exit_p95_ms", "Tick that crosses a stop → exit order at alpacasim, tick-driven, p95", "tick_exit", ("tick_ms", "p95"),
           "ms", "<=", 250),
    Figure("tick_exit_p50_ms", "Tick that crosses a stop → exit order at alpacasim, tick-driven, p50", "tick_exit", ("tick_ms", "p50"), "ms"),
    Figure("sweep_exit_p95_ms", "Price that crosses a stop → exit order at alpacasim, sweep only (check_interval 5 s), p95, same run",
           "tick_exit", ("sweep_ms", "p95"), "ms"),
    Figure("hub_tick_to_client_p99_ms", "Tick to client through the hub, p99 (200 clients × 10 of 50 symbols, 500 ticks/s), "
           "one JSON object per frame (the old protocol)", "hub_fanout", ("p99_ms",), "ms", "<=", 50),
    Figure("hub_batched_p99_ms", "Tick to client, p99, the same load with ?batch=1 framing (a JSON array per frame), same run",
           "hub_fanout", ("batched_p99_ms",), "ms", "<=", 50),
    Figure("hub_batched_trades_lost", "Trades lost with ?batch=1 framing", "hub_fanout", ("batched_trades_lost",), "trades", "<=", 0),
    Figure("hub_batched_messages_per_s", "Messages/s delivered with ?batch=1 framing", "hub_fanout", ("batched_messages_per_s",), "msg/s"),
    Figure("hub_asgi_cpu_us_per_message", "ASGI (ws) CPU per message delivered, one object per frame", "hub_fanout",
           ("asgi_cpu_us_per_message",), "µs"),
    Figure("hub_batched_asgi_cpu_us_per_message", "ASGI (ws) CPU per message delivered, ?batch=1 framing", "hub_fanout",
           ("batched_asgi_cpu_us_per_message",), "µs"),
    Figure("hub_bench_clients_cpu_s", "CPU seconds of the bench's own client processes over the window (one object per frame)",
           "hub_fanout", ("bench_clients_cpu_s",), "s"),
    Figure("hub_trades_lost", "Trades lost between alpacasim and the 200 clients (sent vs received per symbol)", "hub_fanout",
           ("trades_lost",), "trades", "<=", 0),
    Figure("hub_messages_per_s", "Messages/s delivered to the clients", "hub_fanout", ("messages_per_s",), "msg/s"),
    Figure("hub_asgi_cpu_s", "CPU seconds of the ASGI (ws) process over the window", "hub_fanout", ("asgi_cpu_s",), "s"),
    Figure("hub_cpu_s", "CPU seconds of the hub over the window (the ASGI process itself on embedded defaults)", "hub_fanout",
           ("hub_cpu_s",), "s"),
    Figure("hub_quote_to_live_ratio", "REST quote of a streamed symbol / /api/v1/live, same gunicorn, same run", "hub_fanout",
           ("quote_to_live_ratio",), "×", ">=", 0.7),
    Figure("hub_quote_to_sim_ratio", "REST quote of a streamed symbol / alpacasim's own quote route", "hub_fanout",
           ("quote_to_sim_ratio",), "×"),
    Figure("hub_upstream_calls_per_1000", "Upstream REST calls per 1,000 quote requests of streamed symbols", "hub_fanout",
           ("upstream_calls_per_1000",), "calls", "<=", 0),
    Figure("web_worker_peak_rss_mb", "Web worker peak RSS, 1000 accounts", "memory", ("web_worker_peak_rss_mb",), "MB"),
    Figure("celery_worker_peak_rss_mb", "Celery worker peak RSS (largest process), 1000 accounts", "memory",
           ("celery_worker_peak_rss_mb",), "MB"),
)


def lookup(data: object, path: tuple[str, ...]) -> object:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            raise KeyError(".".join(path))
        data = data[key]
    return data
