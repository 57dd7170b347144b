"""The desk dashboard (/desk/): Django session login through the admin site, access from ``desk.view_desk``
(the "Desk" group; superusers). Thin views: each calls the desk's reads and renders a template that extends
the admin's base (docs/console.md)."""
from __future__ import annotations

import time

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse

from accounts.models import AlpacaAccount
from audit.charts import line_chart
from desk import account as account_reads
from desk import broker_reads
from desk.latency import CACHE_SECONDS, DEFAULT_DAYS, MAX_DAYS, latency_monitor_cached
from desk.overview import SORTS, accounts_overview
from desk.permissions import DESK_PERMISSION
from desk.quotes import quotes_connection
from desk.state import account_trading_state
from desk.traffic import budget_use, endpoint_traffic
from opitios.admin_format import money


def desk_view(view):
    """Logged-in staff (the admin's login page) holding ``desk.view_desk``; the page's time in the context."""

    def wrapped(request, *args, **kwargs):
        if not request.user.has_perm(DESK_PERMISSION):
            raise PermissionDenied
        started = time.perf_counter()
        title, template, context = view(request, *args, **kwargs)
        context = {**admin.site.each_context(request), "site_header": "Opitios desk", "title": title, "desk_page": view.__name__, **context,
                   "built_ms": round((time.perf_counter() - started) * 1000, 1)}
        return TemplateResponse(request, f"desk/{template}", context)

    wrapped.__name__ = view.__name__
    return admin.site.admin_view(wrapped)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@desk_view
def overview(request):
    result = accounts_overview(query=request.GET.get("q", ""), sort=request.GET.get("sort", ""), page=request.GET.get("page", 1))
    return "Accounts", "overview.html", {"result": result, "sorts": SORTS}


@desk_view
def account_page(request, account_id: str):
    account = get_object_or_404(AlpacaAccount, account_id=account_id)
    holdings = broker_reads.holdings(account)
    curve = broker_reads.equity_curve(account)
    chart = line_chart(labels=[p.at.strftime("%m-%d") for p in curve.items],
                       series=[("equity", "#417690", [float(p.equity) for p in curve.items])],
                       css_class="equity-chart", aria_label=f"equity of {account.account_id}, daily",
                       value_text=lambda v: money(round(v)), zero_based=False, empty_text="no portfolio history", pad_left=80)
    return account.account_id, "account.html", {
        "account": account, "state": account_trading_state(account), "balance": account_reads.balance(account),
        "holdings": holdings, "unrealized": broker_reads.total_unrealized(holdings.items),
        "curve": curve, "chart": chart, "pnl": account_reads.realized_pnl(account),
        "orders": account_reads.recent_orders(account), "managed": account_reads.managed_positions(account),
    }


@desk_view
def latency(request):
    days = max(1, min(_int(request.GET.get("days"), DEFAULT_DAYS), MAX_DAYS))
    monitor = latency_monitor_cached(days=days)
    by_day = {row["key"]: row for row in monitor["groups"]["day"]}
    days = monitor["calendar"]  # every day of the window, with data or not
    chart = line_chart(labels=[day.strftime("%m-%d") for day in days],
                       series=[(f"total {p}", colour, [by_day[day]["total_ms"][p] if day in by_day else None for day in days])
                               for p, colour in (("p50", "#417690"), ("p95", "#e0a800"), ("p99", "#ba2121"))],
                       css_class="latency-chart", aria_label="order latency by day", value_text=lambda v: f"{v:.1f} ms",
                       empty_text="no orders in these days")
    return "Latency", "latency.html", {"monitor": monitor, "chart": chart, "day_choices": (1, 7, 14, 30), "cache_seconds": CACHE_SECONDS}


@desk_view
def traffic(request):
    return "Traffic", "traffic.html", {"traffic": endpoint_traffic(), "budget": budget_use()}


@desk_view
def quotes(request):
    return "Live quotes", "quotes.html", {"connection": quotes_connection(request)}
