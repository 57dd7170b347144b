"""The desk pages through Django's session login and the real views: who may open them, and what the
overview, latency and traffic monitors and the quotes panel show from stored data."""
from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from sellbot.models import ManagedPosition
from tests.audit.factories import AlpacaAccountFactory
from tests.desk.conftest import PASSWORD, ensure_desk_group, record, session, snapshot, user_in

pytestmark = pytest.mark.django_db

PAGES = ("/desk/", "/desk/latency/", "/desk/traffic/", "/desk/quotes/")
MS_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


def test_each_group_sees_what_it_may(client, desk_client, officer_client):
    account = AlpacaAccountFactory(account_id="account_001")
    for page in (*PAGES, f"/desk/accounts/{account.account_id}/"):
        anonymous = client.get(page)
        assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"], page
        assert officer_client.get(page).status_code == 403, page  # compliance officers: the admin, read-only
    for page in PAGES:
        assert desk_client.get(page).status_code == 200, page
    # the desk group holds no model permission: the admin's records stay closed to it
    for page in ("/admin/trading/orderrecord/", "/admin/audit/auditevent/", "/admin/accounts/alpacaaccount/", "/admin/compliance/"):
        assert desk_client.get(page).status_code == 403, page
    assert officer_client.get("/admin/trading/orderrecord/").status_code == 200
    boss = session(user_in(None, "root", superuser=True))
    assert boss.get("/desk/").status_code == 200


def test_create_desk_user_is_idempotent(db, monkeypatch):
    ensure_desk_group()
    monkeypatch.setenv("OPITIOS_DESK_PASSWORD", PASSWORD)
    call_command("create_desk_user", "dana", "--noinput")
    call_command("create_desk_user", "dana", "--noinput")  # again: the password is reset, nothing duplicated
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username="dana")
    assert user.is_staff and not user.is_superuser and user.has_perm("desk.view_desk")
    assert not user.has_perm("trading.view_orderrecord") and list(user.groups.values_list("name", flat=True)) == ["Desk"]


def test_overview_reads_snapshots_sorts_searches_and_pages(desk_client):
    now = timezone.now()
    yesterday, today = now - timedelta(days=1, hours=1), now.replace(hour=0, minute=0, second=1, microsecond=0)
    accounts = [AlpacaAccountFactory(account_id=f"acct_{n:03d}") for n in range(60)]
    for n, account in enumerate(accounts):
        snapshot(account, equity=10_000 + n, at=yesterday)
        snapshot(account, equity=10_000 + 2 * n, cash=5_000, at=max(today, now - timedelta(seconds=1)))
    top = accounts[59]
    AlpacaAccountFactory(account_id="acct_off", enabled=False)
    record(top, n=1, received_at=now, broker_status="new")  # open
    record(top, n=2, received_at=now, broker_status="filled", filled_qty=Decimal(3), side="buy")  # 3 AAPL held
    record(top, n=3, received_at=now, broker_status="filled", filled_qty=Decimal(3), side="sell", symbol="MSFT")  # short MSFT
    ManagedPosition.objects.create(account=top, symbol="AAPL261218C00200000", qty=1, entry_price=1, opened_at=now, high_water_mark=1)

    body = desk_client.get("/desk/").content.decode()
    assert "61 accounts" in body and "page 1 of 2" in body and "acct_000" in body and "acct_059" not in body

    body = desk_client.get("/desk/?sort=-equity").content.decode()
    first_row = body.split('<tbody>')[1].split("</tr>")[0]
    # acct_059: equity $10,118.00, up $59.00 on the day (yesterday's close-of-day snapshot $10,059), cash $5,000.00
    assert "acct_059" in first_row and "$10,118.00" in first_row and "+$59.00" in first_row and "$5,000.00" in first_row
    cells = re.findall(r'<td class="num">(\d+)</td>', first_row)
    assert cells == ["1", "2", "1"]  # open orders, positions from recorded fills, managed positions
    assert MS_TIME.search(first_row)

    body = desk_client.get("/desk/?q=acct_00").content.decode()
    assert "10 accounts" in body and "acct_010" not in body
    body = desk_client.get("/desk/?q=off").content.decode()
    assert "acct_off" in body and "disabled" in body
    assert "page 2 of 2" in desk_client.get("/desk/?page=2").content.decode()


def test_latency_monitor_percentiles_and_rates_from_the_ledger(desk_client):
    account = AlpacaAccountFactory(account_id="account_001")
    now = timezone.now()
    for n in range(1, 101):  # totals 1..100 ms, broker n/2, overhead n/2; 4 refusals (no broker time), 1 rejection, 1 failure
        outcome = "refused" if n <= 4 else "rejected" if n == 5 else "failed" if n == 6 else "accepted"
        broker = None if outcome == "refused" else n / 2
        record(account, n=n, received_at=now - timedelta(seconds=n), outcome=outcome, total_ms=float(n), broker_ms=broker,
               overhead_ms=float(n) if broker is None else n / 2, order_type="limit" if n % 2 else "market",
               source="sellbot" if n > 90 else "api")
    body = desk_client.get("/desk/latency/?days=1").content.decode()
    overall = body.split('id="latency-all"')[1].split("</table>")[0]
    # percentile_cont over 1..100: p50 50.5, p95 95.05, p99 99.01; rates 94 %, 4 %, 1 %, 1 %
    for text in ("100", "94.0 %", "4.0 %", "1.0 %", "50.5", "95.0", "99.0"):
        assert text in overall, text
    by_source = body.split('id="latency-source"')[1].split("</table>")[0]
    assert "sellbot" in by_source and ">10<" in by_source and ">90<" in by_source
    by_type = body.split('id="latency-order_type"')[1].split("</table>")[0]
    assert "limit" in by_type and "market" in by_type and ">50<" in by_type
    assert '<svg class="latency-chart"' in body
    computed = re.search(r'id="latency-computed">([^<]+)<', body).group(1)
    assert MS_TIME.search(computed) and "recomputed at most every 30 s" in computed
    again = desk_client.get("/desk/latency/?days=1").content.decode()  # within the 30 s: the same figures, not a new scan
    assert re.search(r'id="latency-computed">([^<]+)<', again).group(1) == computed


def test_traffic_monitor_counts_requests_per_route_and_throttles(desk_client):
    for _ in range(3):
        desk_client.get("/api/v1/health")
    desk_client.get("/api/v1/no-such-route")
    body = desk_client.get("/desk/traffic/").content.decode()
    endpoints = body.split('id="traffic-endpoints"')[1].split("</table>")[0]
    assert "<code>api/v1/health</code>" in endpoints and "<code>^api/</code>" in endpoints
    assert "Upstream budget, last minute" in body


def test_quotes_panel_has_the_socket_and_a_market_data_token_when_private(desk_client, monkeypatch, tmp_path):
    from opitios.auth import ClaimsToken

    secrets = tmp_path / "secrets.yml"
    secrets.write_text("api:\n  market_data_public: false\naccounts: {}\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(secrets))
    monkeypatch.setenv("OPITIOS_WS_PORT", "18092")
    body = desk_client.get("/desk/quotes/?symbols=aapl,msft,bad symbol").content.decode()
    url = re.search(r'data-url="([^"]+)"', body).group(1)
    token = re.search(r'data-token="([^"]+)"', body).group(1)
    assert url == "ws://testserver:18092/ws/market-data"
    claims = ClaimsToken(token).payload
    assert claims["permissions"] == ["market_data"] and claims["user_id"] == "desk:trader-desk"
    assert claims["exp"] - claims["iat"] <= 900
    assert 'data-symbol="AAPL"' in body and 'data-symbol="MSFT"' in body and "BAD" not in body
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', body)
    assert "/static/desk/quotes.js" in scripts and all(src.startswith("/static/") for src in scripts)  # vendored, no CDN


def test_overview_shows_the_risk_controls_effective_state(desk_client):
    from risk.states import trading_state_set

    halted, reducing = AlpacaAccountFactory(account_id="acct_halted"), AlpacaAccountFactory(account_id="acct_reducing")
    AlpacaAccountFactory(account_id="acct_free")
    trading_state_set(account=halted, state="halted", reason="desk test", actor_type="user", actor_id="t")
    trading_state_set(account=reducing, state="reducing", reason="desk test", actor_type="user", actor_id="t")

    rows = desk_client.get("/desk/?q=acct_").content.decode().split("<tbody>")[1].split("</tr>")
    state = {account: next(row for row in rows if account in row) for account in ("acct_halted", "acct_reducing", "acct_free")}
    assert ">halted<" in state["acct_halted"] and ">reducing<" in state["acct_reducing"] and ">active<" in state["acct_free"]
