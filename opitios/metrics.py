"""Prometheus metrics (docs/deployment.md, "Metrics"), with prometheus-client.

prometheus-client rather than django-prometheus: the series here are the gateway's own (orders,
upstream budget, sell bot), not Django's per-view and per-model ones, and prometheus-client's
multiprocess mode is what gunicorn and Celery's prefork pool need; django-prometheus adds
middleware and model mixins per request that nothing here would read.

Cardinality rule: labels take values from closed sets in the code (outcome, source, account
type, refusal code, throttle scope, sell-bot event). An account gets its own label value only
when listed in ``metrics.account_labels`` in secrets.yml (at most 50); every other account is
counted under ``other``. 1,000 accounts therefore cost no more series than one.

Apps add scrape-time readers of the database with ``register_collector``; they run on the web
processes only, at each scrape.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from opitios import multiproc

logger = logging.getLogger("opitios.metrics")

OTHER = "other"
# Order times run from a few ms (refusals) to the broker's 10 s timeout.
ORDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
SWEEP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)

orders = Counter("opitios_orders", "Order attempts by final outcome.", ["outcome", "source", "account_type", "refusal_code"])
order_total = Histogram("opitios_order_total_seconds", "Received to answered, per order.", ["source", "account_type"],
                        buckets=ORDER_BUCKETS)
order_broker = Histogram("opitios_order_broker_seconds", "Time waiting on the broker, per order.", ["source", "account_type"],
                         buckets=ORDER_BUCKETS)
order_overhead = Histogram("opitios_order_overhead_seconds", "Gateway time (total minus broker), per order.",
                           ["source", "account_type"], buckets=ORDER_BUCKETS)
upstream_calls = Counter("opitios_upstream_calls", "Calls to Alpaca against the per-account budget, by result "
                         "(ok, error, budget_exhausted).", ["account", "result"])
upstream_429 = Counter("opitios_upstream_429", "HTTP 429 answers from Alpaca.", ["account"])
order_request_total = Histogram("opitios_order_request_total_seconds", "Order routes: received by the first middleware to the "
                                "response built, final write and rendering included (docs/architecture.md, \"Order timing\").",
                                buckets=ORDER_BUCKETS)
# route: the URL pattern that matched (a closed set, from the URLconf), or "unmatched"; status: its class.
http_requests = Counter("opitios_http_requests", "Requests answered, by URL pattern and status class (2xx, 3xx, 4xx, 429, 5xx).",
                        ["route", "status"])
throttled = Counter("opitios_throttled_requests", "API requests refused by a rate limit (429).", ["scope"])
sweep_seconds = Histogram("opitios_sellbot_sweep_seconds", "Duration of one sell-bot sweep (fan-out).", buckets=SWEEP_BUCKETS)
sweep_accounts = Counter("opitios_sellbot_sweep_accounts", "Accounts per sweep: dispatched or already queued.", ["kind"])
check_events = Counter("opitios_sellbot_check_events", "Sell-bot per-account check counts (decisions, orders_ok, closed, ...).",
                       ["event"])
cancel_retries = Counter("opitios_sellbot_cancel_retries", "Sell-bot cancellation attempts retried after a transient error.")

_collectors: list[Callable[[], Iterable[Metric]]] = []


class _Registered:
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self.collect = collect


def register_collector(collect: Callable[[], Iterable[Metric]]) -> None:
    """``collect()`` yields metric families read at scrape time (cheap, aggregate queries)."""
    _collectors.append(collect)


def account_label(account_id: str) -> str:
    from opitios.config import MetricsConfig, current_config

    allowed = getattr(current_config(), "metrics", MetricsConfig()).account_labels
    return account_id if account_id in allowed else OTHER


def upstream_observed(account_id: str, *, result: str, status: int | None = None) -> None:
    """One call to Alpaca (the broker adapter): ok, error or budget_exhausted; 429s apart."""
    try:
        label = account_label(account_id)
        upstream_calls.labels(label, result).inc()
        if status == 429:
            upstream_429.labels(label).inc()
    except Exception:  # counting must never cost a broker call
        logger.exception("upstream call not counted")


def status_class(status: int) -> str:
    return "429" if status == 429 else f"{min(max(status // 100, 1), 5)}xx"


def request_observed(route: str, status: int) -> None:
    """One answered request (the first middleware); counting never fails the request."""
    try:
        http_requests.labels(route, status_class(status)).inc()
    except Exception:
        logger.exception("request not counted")


def _safe(collect: Callable[[], Iterable[Metric]]) -> Callable[[], Iterable[Metric]]:
    def run() -> Iterable[Metric]:
        try:
            return list(collect())
        except Exception:  # a database hiccup must not cost the whole scrape
            logger.exception("metrics collector %s failed", getattr(collect, "__name__", collect))
            return []

    return run


def exposition(*, with_collectors: bool = True) -> bytes:
    """The text exposition of this process, or of every process of its kind in multiprocess mode."""
    from prometheus_client import REGISTRY

    if multiproc.enabled():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Registered(REGISTRY.collect))
    if with_collectors:
        for collect in _collectors:
            registry.register(_Registered(_safe(collect)))
    return generate_latest(registry)
