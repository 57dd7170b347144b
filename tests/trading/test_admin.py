"""The compliance view of OrderRecord in the Django admin: read-only, filters, search and the
daily p50/p95/p99 latency table. The records come from real placements through the API."""
import re
from datetime import timedelta

import pytest
from django.urls import reverse

from accounts.broker import BrokerRejected
from trading.models import OrderRecord

from .conftest import client_for, token

pytestmark = pytest.mark.django_db

ORDER = {"qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}


@pytest.fixture
def ledger(config_file, demo_accounts, world):
    paper = client_for(token())
    live = client_for(token(user_id="u4", account_id="account_004"))
    assert paper.post("/api/v1/stocks/order", {**ORDER, "symbol": "AAPL", "client_order_id": "adm-1"}, format="json").status_code == 201
    assert live.post("/api/v1/stocks/order", {**ORDER, "symbol": "MSFT", "client_order_id": "adm-2"}, format="json").status_code == 201
    world.faults["submit_order"] = BrokerRejected("insufficient buying power", upstream_status=403)
    assert paper.post("/api/v1/stocks/order", {**ORDER, "symbol": "TSLA", "client_order_id": "adm-3"}, format="json").status_code == 422
    assert OrderRecord.objects.count() == 3
    return demo_accounts


def test_officer_filters_and_searches_the_order_ledger(officer_client, ledger):
    url = reverse("admin:trading_orderrecord_changelist")

    def ids(**params):
        response = officer_client.get(url, params)
        assert response.status_code == 200
        return sorted(r.client_order_id for r in response.context["cl"].result_list)

    assert ids() == ["adm-1", "adm-2", "adm-3"]
    assert ids(account_type="live") == ["adm-2"]
    assert ids(account__id__exact=str(ledger["account_001"].pk)) == ["adm-1", "adm-3"]
    assert ids(outcome="rejected") == ["adm-3"]
    assert ids(source="api") == ["adm-1", "adm-2", "adm-3"]
    assert ids(source="sellbot") == []
    assert ids(q="TSLA") == ["adm-3"]
    assert ids(q="adm-2") == ["adm-2"]
    broker_id = OrderRecord.objects.get(client_order_id="adm-1").broker_order_id
    assert ids(q=broker_id) == ["adm-1"]
    today = OrderRecord.objects.first().received_at.date().isoformat()
    assert ids(received_at__date__gte=today, received_at__date__lte=today) == ["adm-1", "adm-2", "adm-3"]
    assert ids(received_at__date__gte="2001-01-01", received_at__date__lte="2001-01-02") == []


def test_daily_latency_percentiles_above_the_list(officer_client, ledger):
    response = officer_client.get(reverse("admin:trading_orderrecord_changelist"))
    [today] = response.context["latency_daily"]
    totals = sorted(float(r.total_ms) for r in OrderRecord.objects.all())
    assert today["count"] == 3
    assert totals[0] <= float(today["total_p50"]) <= float(today["total_p95"]) <= float(today["total_p99"]) <= totals[-1]
    assert b"Order latency by day" in response.content

    live_only = officer_client.get(reverse("admin:trading_orderrecord_changelist"), {"account_type": "live"})
    assert [row["count"] for row in live_only.context["latency_daily"]] == [1]  # the table follows the filters


def test_the_ledger_cannot_be_added_to_changed_or_deleted(officer_client, admin_client, ledger):
    record = OrderRecord.objects.get(client_order_id="adm-1")
    for client in (officer_client, admin_client):
        assert client.get(reverse("admin:trading_orderrecord_add")).status_code == 403
        change = reverse("admin:trading_orderrecord_change", args=[record.pk])
        page = client.get(change)
        assert page.status_code == 200 and b'name="_save"' not in page.content and b"adm-1" in page.content
        assert client.post(change, {"symbol": "EVIL"}).status_code == 403
        assert client.post(reverse("admin:trading_orderrecord_delete", args=[record.pk]), {"post": "yes"}).status_code == 403
    record.refresh_from_db()
    assert record.symbol == "AAPL"


MS_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")


def _ms(moment) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC"


def test_the_list_shows_the_key_columns_with_millisecond_times_and_plain_quantities(officer_client, ledger):
    response = officer_client.get(reverse("admin:trading_orderrecord_changelist"))
    body = response.content.decode()
    thead = body.split('id="result_list"')[1].split("</thead>")[0]
    headers = [h.strip() for h in re.findall(r'<div class="text">\s*<(?:a|span)[^>]*>([^<]+)<', thead)]
    assert headers[:9] == ["Received (UTC)", "Account", "Account type", "Order type", "Symbol", "Side", "Qty", "Outcome", "Total ms"]
    for record in OrderRecord.objects.all():
        assert _ms(record.received_at) in body
    rows = body.split('id="result_list"')[1]
    assert "1.000000000" not in rows and '<td class="field-qty_console">1</td>' in rows
    assert len(MS_TIME.findall(rows)) == 3
    ordered = officer_client.get(reverse("admin:trading_orderrecord_changelist"), {"o": "-8"})  # sort on total ms (column 8) still works
    totals = [r.total_ms for r in ordered.context["cl"].result_list]
    assert totals == sorted(totals, reverse=True)


def test_a_record_shows_its_timeline_in_microseconds_and_its_response_as_json(officer_client, ledger):
    record = OrderRecord.objects.get(client_order_id="adm-1")
    body = officer_client.get(reverse("admin:trading_orderrecord_change", args=[record.pk])).content.decode()
    timeline = body.split('id="order-timeline"')[1].split("</table>")[0]
    steps = re.findall(r'<tr class="step-([\w-]+)">', timeline)
    assert steps == ["received", "checks", "submitted", "responded", "completed"]  # broker events: tests/trading/test_ledger.py
    for moment in (record.received_at, record.submitted_at, record.responded_at, record.completed_at):
        assert f"{moment:%Y-%m-%d %H:%M:%S.%f} UTC" in timeline
    broker_us = (record.responded_at - record.submitted_at) // timedelta(microseconds=1)
    expected = f"+{broker_us / 1000:,.3f} ms" if broker_us >= 1000 else f"+{broker_us} µs"
    assert expected in timeline
    assert "HTTP status" in body and "Http status" not in body
    response_json = body.split('<pre class="console-json">')[1].split("</pre>")[0]
    assert "\n  &quot;" in response_json and "&quot;client_order_id&quot;: &quot;adm-1&quot;" in response_json
