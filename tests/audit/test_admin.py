import json
import re

import pytest
from django.urls import reverse

from audit.services import audit_record
from tests.audit.factories import API_KEY_CIPHERTEXT, SECRET_KEY_CIPHERTEXT, AlpacaAccountFactory

pytestmark = pytest.mark.django_db

# A script, stylesheet or image fetched from another origin (a CDN). Matching "cdn" in the page text failed once a
# random CSRF token happened to contain those three letters.
EXTERNAL_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture
def seeded():
    paper = AlpacaAccountFactory(account_id="account_001")
    live = AlpacaAccountFactory(account_id="account_004", account_type="live", paper_trading=False, account_number="LV1")
    AlpacaAccountFactory(account_id="account_009", type_source="fallback", detection_error="timeout")
    AlpacaAccountFactory(account_id="account_010", account_type="live", type_mismatch=True)
    audit_record(actor_type="user", actor_id="7", action="order.submitted", account=paper, obj=("order", "ord-1"), data={"symbol": "AAPL", "note": "=cmd()"})
    audit_record(actor_type="user", actor_id="8", action="order.refused", account=live, obj=("order", "ord-2"), data={"symbol": "TSLA"})
    audit_record(actor_type="system", actor_id="", action="account.synced", data={"count": 4})
    return paper, live


def test_officer_sees_the_audit_list_with_filters_and_search(officer_client, seeded):
    url = reverse("admin:audit_auditevent_changelist")

    def actions(**params):
        response = officer_client.get(url, params)
        assert response.status_code == 200
        return sorted(event.action for event in response.context["cl"].result_list)

    page = officer_client.get(url).content.decode()
    assert "Export CSV" in page and "Export JSONL" in page and "By time (UTC)" in page
    assert actions() == ["account.synced", "order.refused", "order.submitted"]
    assert actions(action="order.submitted") == ["order.submitted"]
    assert actions(account__account_type="live") == ["order.refused"]
    assert actions(actor_type="user") == ["order.refused", "order.submitted"]
    assert actions(account__id__exact=str(seeded[0].pk)) == ["order.submitted"]
    assert actions(q="AAPL") == ["order.submitted"]
    assert actions(q="ord-2") == ["order.refused"]
    today = seeded[0].created_at.date().isoformat()
    assert len(actions(at__date__gte=today, at__date__lte=today)) == 3
    assert actions(at__date__gte="2001-01-01", at__date__lte="2001-01-02") == []


def test_officer_cannot_add_change_or_delete(officer_client, seeded):
    assert officer_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    change = reverse("admin:audit_auditevent_change", args=[1])
    page = officer_client.get(change)
    assert page.status_code == 200 and b'name="_save"' not in page.content and b"order.submitted" in page.content
    assert officer_client.post(change, {"action": "x.y"}).status_code == 403
    assert officer_client.post(reverse("admin:audit_auditevent_delete", args=[1]), {"post": "yes"}).status_code == 403
    for name in ("accounts_alpacaaccount", "accounts_balancesnapshot", "accounts_accounttypechange", "audit_auditchaincheck"):
        assert officer_client.get(reverse(f"admin:{name}_add")).status_code == 403


def test_superuser_cannot_change_audit_events_either(admin_client, seeded):
    assert admin_client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert admin_client.post(reverse("admin:audit_auditevent_change", args=[1]), {"action": "x.y"}).status_code == 403


def test_csv_export_streams_the_filtered_list(officer_client, seeded):
    url = reverse("admin:audit_auditevent_export", args=["csv"])
    response = officer_client.get(url, {"actor_type": "user"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("text/csv") and "attachment" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "seq,at,actor_type,actor_id,action,account,account_type,object_type,object_id,data,prev_hash,hash"
    assert len(lines) == 3 and lines[1].startswith("2,") and lines[2].startswith("1,")
    assert "account_001,paper,order,ord-1" in lines[2]
    assert "'=cmd()" not in lines[2] and '""note"": ""=cmd()""' in lines[2]  # JSON cells start with '{', not a formula


def test_jsonl_export(officer_client, seeded):
    response = officer_client.get(reverse("admin:audit_auditevent_export", args=["jsonl"]), {"action": "order.refused"})
    rows = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    assert len(rows) == 1
    assert rows[0]["action"] == "order.refused" and rows[0]["account"] == "account_004" and rows[0]["data"] == {"symbol": "TSLA"}
    assert len(rows[0]["hash"]) == 64


def test_exports_are_audited_and_csv_cells_cannot_become_formulas(officer_client, seeded):
    response = officer_client.get(reverse("admin:accounts_alpacaaccount_export", args=["csv"]), {"q": "account_001"})
    body = b"".join(response.streaming_content).decode()
    assert "account_001" in body and "account_004" not in body
    from audit.models import AuditEvent

    last = AuditEvent.objects.order_by("-seq").first()
    assert last.action == "admin.exported" and last.actor_id == "officer" and last.data["model"] == "accounts.alpacaaccount"


def test_unknown_export_format_is_404(officer_client, seeded):
    assert officer_client.get("/admin/audit/auditevent/export/xml/").status_code == 404


def test_staff_without_compliance_permission_cannot_export_or_open_the_landing_page(client, django_user_model, seeded):
    client.force_login(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    assert client.get(reverse("admin:audit_auditevent_export", args=["csv"])).status_code == 403
    assert client.get(reverse("compliance-dashboard")).status_code == 403


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("compliance-dashboard"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_no_secret_on_any_account_page(officer_client, seeded):
    paper, _ = seeded
    pages = [
        reverse("admin:accounts_alpacaaccount_changelist"),
        reverse("admin:accounts_alpacaaccount_change", args=[paper.pk]),
        reverse("admin:audit_auditevent_changelist"),
        reverse("compliance-dashboard"),
    ]
    for url in pages:
        body = officer_client.get(url).content.decode()
        assert API_KEY_CIPHERTEXT not in body and SECRET_KEY_CIPHERTEXT not in body
        assert "api_key_encrypted" not in body and "secret_key_encrypted" not in body
    export = b"".join(officer_client.get(reverse("admin:accounts_alpacaaccount_export", args=["jsonl"])).streaming_content).decode()
    assert API_KEY_CIPHERTEXT not in export and SECRET_KEY_CIPHERTEXT not in export


def test_account_list_shows_the_type_distribution(officer_client, seeded):
    body = officer_client.get(reverse("admin:accounts_alpacaaccount_changelist")).content.decode()
    assert "paper: 1" in body and "live: 2" in body and "fallback: 1" in body


def test_landing_page(officer_client, seeded):
    body = officer_client.get(reverse("compliance-dashboard")).content.decode()
    assert "No orders today." in body
    assert "account_010" in body and "account_009" in body and "timeout" in body  # mismatch and detection failure
    assert "Not verified yet" in body
    assert '<svg class="latency-chart"' in body
    from django.core.management import call_command

    call_command("verify_audit_chain")
    assert "Verified OK" in officer_client.get(reverse("compliance-dashboard")).content.decode()


def test_admin_index_shows_the_chain_status_and_links_the_landing_page(officer_client, seeded):
    body = officer_client.get(reverse("admin:index")).content.decode()
    assert 'id="compliance-summary"' in body and reverse("compliance-dashboard") in body and "Head: seq 3" in body


MS_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")
US_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} UTC")


@pytest.fixture
def broken_config(monkeypatch, tmp_path):
    """secrets.yml with an invalid value (falls back to its default) and an account skipped for a missing secret."""
    from opitios import config as config_module

    path = tmp_path / "secrets.yml"
    path.write_text("trading:\n  routing_strategy: fastest\naccounts:\n  acc_1:\n    api_key: PKX0000000000000001\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    monkeypatch.setattr(config_module, "_cache", {})


def test_audit_times_are_utc_to_the_millisecond_in_lists_and_microseconds_in_detail(officer_client, seeded):
    from audit.models import AuditEvent

    event = AuditEvent.objects.get(seq=1)
    expected = f"{event.at:%Y-%m-%d %H:%M:%S}.{event.at.microsecond // 1000:03d} UTC"
    listing = officer_client.get(reverse("admin:audit_auditevent_changelist")).content.decode()
    assert expected in listing and len(MS_TIME.findall(listing)) >= 3
    assert "Time (UTC)" in listing and "Actor id" in listing  # human column labels
    detail = officer_client.get(reverse("admin:audit_auditevent_change", args=[1])).content.decode()
    assert f"{event.at:%Y-%m-%d %H:%M:%S.%f} UTC" in detail and US_TIME.search(detail)
    assert '<pre class="console-json">' in detail and "&quot;symbol&quot;: &quot;AAPL&quot;" in detail


def test_the_header_names_the_product(officer_client, seeded):
    for url in (reverse("admin:index"), reverse("compliance-dashboard"), reverse("admin:audit_auditevent_changelist")):
        body = officer_client.get(url).content.decode()
        assert "Opitios compliance console" in body and "Django administration" not in body
        assert "console/console.css" in body
        assert not EXTERNAL_ASSET.search(body), "the console loads nothing from another origin"


def test_landing_page_and_index_show_config_errors_skipped_accounts_mismatches_and_stale_balances(officer_client, seeded, broken_config):
    from django.utils import timezone

    from accounts.models import BalanceSnapshot

    paper, live = seeded
    BalanceSnapshot.objects.create(account=paper, cash="1234.5", buying_power="2469", equity="1234.5", fetched_at=timezone.now())
    for url in (reverse("compliance-dashboard"), reverse("admin:index")):
        body = officer_client.get(url).content.decode()
        config_errors = body[body.index('id="status-config"'):body.index('id="status-skipped"')]
        assert "trading.routing_strategy:" in config_errors
        skipped = body[body.index('id="status-skipped"'):body.index('id="status-mismatches"')]
        assert "acc_1" in skipped and "accounts.acc_1.secret_key" in skipped
        assert "account_010" in body[body.index('id="status-mismatches"'):body.index('id="status-detection"')]
        assert "timeout" in body[body.index('id="status-detection"'):body.index('id="status-stale"')]
        stale = body[body.index('id="status-stale"'):]
        assert "account_004" in stale and "account_001" not in stale.split("</table>")[0]  # account_001 was just refreshed
        assert "PKX0000000000000001" not in body


def test_stale_balance_shows_its_cash_as_money_and_its_time_to_the_millisecond(officer_client, seeded):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.models import BalanceSnapshot

    paper, _ = seeded
    fetched = timezone.now() - timedelta(hours=2)
    BalanceSnapshot.objects.create(account=paper, cash="1234567.5", buying_power="0", equity="0", fetched_at=fetched)
    stale = officer_client.get(reverse("compliance-dashboard")).content.decode().split('id="status-stale"')[1]
    assert "$1,234,567.50" in stale
    assert f"{fetched:%Y-%m-%d %H:%M:%S}.{fetched.microsecond // 1000:03d} UTC" in stale


def test_officer_verifies_the_chain_now_and_the_check_is_audited(officer_client, seeded):
    from audit.models import AuditChainCheck, AuditEvent

    url = reverse("compliance-verify-chain")
    assert "verify_audit_chain" not in officer_client.get(reverse("compliance-dashboard")).content.decode()  # no terminal command
    assert officer_client.get(url).status_code == 405
    response = officer_client.post(url, {"next": reverse("admin:index")})
    assert response.status_code == 302 and response["Location"] == reverse("admin:index")
    check = AuditChainCheck.objects.get()
    assert check.ok and check.count == 3 and check.source == "admin"
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "audit.chain_verified" and event.actor_type == "admin" and event.actor_id == "officer"
    assert event.data["ok"] is True and event.data["count"] == 3 and event.object_id == str(check.pk)
    page = officer_client.get(reverse("admin:index")).content.decode()
    assert "Audit chain verified OK: 3 events" in page and "Verified OK" in page and MS_TIME.search(page.split('id="chain-status"')[1])


def test_verify_now_reports_a_broken_chain(officer_client, seeded):
    from audit.models import AuditChainCheck

    from .conftest import tamper

    tamper("UPDATE audit_auditevent SET action = 'order.tampered' WHERE seq = 2")
    response = officer_client.post(reverse("compliance-verify-chain"), follow=True)
    assert AuditChainCheck.objects.get().first_broken_seq == 2
    assert "BROKEN at seq 2" in response.content.decode()


def test_verify_now_refuses_outside_redirects_staff_without_permission_and_missing_csrf(client, officer, django_user_model, seeded):
    from django.test import Client

    from audit.models import AuditChainCheck

    url = reverse("compliance-verify-chain")
    client.force_login(officer)
    assert client.post(url, {"next": "https://evil.example/"})["Location"] == reverse("compliance-dashboard")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(officer)
    assert strict.post(url).status_code == 403
    clerk = Client()
    clerk.force_login(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    assert clerk.post(url).status_code == 403
    anonymous = Client().post(url)
    assert anonymous.status_code == 302 and "/admin/login/" in anonymous["Location"]
    assert AuditChainCheck.objects.count() == 1  # only the officer's


@pytest.mark.parametrize("days_with_data", [1, 30])
def test_latency_chart_draws_one_day_or_thirty(days_with_data):
    import datetime as dt

    from audit.charts import latency_chart

    start = dt.date(2026, 11, 1)
    days = [{"day": start + dt.timedelta(days=i), "count": 0, "p50": None, "p95": None, "p99": None} for i in range(30)]
    for day in days[-days_with_data:]:
        day.update(count=5, p50=10.0, p95=20.0, p99=30.0)
    svg = str(latency_chart(days if days_with_data == 30 else days[-7:]))
    assert svg.count('class="point-p99"') == days_with_data and svg.count("<polyline") == (3 if days_with_data > 1 else 0)
    assert "30.0 ms" in svg and "no orders" not in svg
    assert 3 <= svg.count('text-anchor="middle"') <= 11  # day labels thin out
    assert "no orders in these days" in str(latency_chart([{**d, "p50": None, "p95": None, "p99": None} for d in days[:7]]))
