"""The sell-bot admin: opt positions in and out through the service (audited); decisions and cancellations
read-only, also for compliance officers; no secret on any page."""
import json
from decimal import Decimal

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from sellbot.models import ManagedPosition
from tests.audit.factories import API_KEY_CIPHERTEXT, AlpacaAccountFactory

from .factories import ManagedPositionFactory, SellCancellationFactory, SellDecisionFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/sellbot/managedposition/"


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456"))
    return client


def test_opt_out_and_in_go_through_the_service_and_are_audited(admin_client):
    positions = [ManagedPositionFactory(), ManagedPositionFactory()]
    response = admin_client.post(CHANGELIST, {"action": "opt_out", "_selected_action": [p.pk for p in positions]}, follow=True)
    assert response.status_code == 200 and "2 position(s) opted out." in response.content.decode()
    assert not ManagedPosition.objects.filter(opted_in=True).exists()
    events = AuditEvent.objects.filter(action="config.changed").order_by("seq")
    assert [(e.actor_type, e.actor_id, e.data["field"], e.data["old"], e.data["new"]) for e in events] == [
        ("admin", "admin:ops", "opted_in", True, False)] * 2
    assert {e.account_id for e in events} == {p.account_id for p in positions}

    admin_client.post(CHANGELIST, {"action": "opt_in", "_selected_action": [positions[0].pk]})
    assert list(ManagedPosition.objects.filter(opted_in=True)) == [positions[0]]
    assert AuditEvent.objects.filter(action="config.changed").count() == 3


def test_positions_cannot_be_added_edited_or_deleted_by_hand(admin_client):
    position = ManagedPositionFactory()
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403
    assert admin_client.get(f"{CHANGELIST}{position.pk}/delete/").status_code == 403
    page = admin_client.get(f"{CHANGELIST}{position.pk}/change/").content.decode()
    assert 'name="qty"' not in page and 'name="entry_price"' not in page  # every field read-only: the services own them


@pytest.mark.parametrize("model", ["selldecision", "sellcancellation", "autosellfill", "sellbotstate"])
def test_records_are_read_only_even_for_a_superuser(admin_client, model):
    assert admin_client.get(f"/admin/sellbot/{model}/").status_code == 200
    assert admin_client.get(f"/admin/sellbot/{model}/add/").status_code == 403


def test_compliance_officer_reads_decisions_and_cancellations_without_secrets(officer_client):
    account = AlpacaAccountFactory(account_id="account_042")
    decision = SellDecisionFactory(position=ManagedPositionFactory(account=account))
    cancellation = SellCancellationFactory(account=account)
    for url in ("/admin/sellbot/selldecision/", f"/admin/sellbot/selldecision/{decision.pk}/change/",
                "/admin/sellbot/sellcancellation/", f"/admin/sellbot/sellcancellation/{cancellation.pk}/change/"):
        response = officer_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert "account_042" in page and API_KEY_CIPHERTEXT not in page and "_save" not in page, url
    # the opt actions need the change permission, which compliance does not hold: the admin offers none
    page = officer_client.get(CHANGELIST).content.decode()
    assert 'value="opt_out"' not in page
    officer_client.post(CHANGELIST, {"action": "opt_out", "_selected_action": [decision.position.pk]})
    assert ManagedPosition.objects.get().opted_in is True
    assert not AuditEvent.objects.filter(action="config.changed").exists()


def test_officer_filters_and_exports_decisions_and_cancellations(officer_client):
    mine, other = AlpacaAccountFactory(account_id="account_042"), AlpacaAccountFactory(account_id="account_043")
    SellDecisionFactory(position=ManagedPositionFactory(account=mine))
    SellDecisionFactory(position=ManagedPositionFactory(account=other))
    SellCancellationFactory(account=mine)
    SellCancellationFactory(account=other)
    for model in ("selldecision", "sellcancellation"):
        url = f"/admin/sellbot/{model}/"
        page = officer_client.get(url)
        assert "Export CSV" in page.content.decode() and "Export JSONL" in page.content.decode()
        filtered = officer_client.get(url, {"account__id__exact": mine.pk})
        assert [r.account_id for r in filtered.context["cl"].result_list] == [mine.pk]
        assert officer_client.get(url, {"account__account_type": "live"}).context["cl"].result_count == 0
        today = filtered.context["cl"].result_list[0]
        field = "decided_at" if model == "selldecision" else "created_at"
        day = getattr(today, field).date().isoformat()
        assert officer_client.get(url, {f"{field}__date__gte": day, f"{field}__date__lte": day}).context["cl"].result_count == 2
        assert officer_client.get(url, {f"{field}__date__gte": "2001-01-01", f"{field}__date__lte": "2001-01-02"}).context["cl"].result_count == 0

        export = officer_client.get(f"{url}export/jsonl/", {"account__id__exact": mine.pk})
        rows = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
        assert [row["account"] for row in rows] == ["account_042"]
        assert API_KEY_CIPHERTEXT not in json.dumps(rows)
        csv_export = officer_client.get(f"{url}export/csv/")
        assert len(b"".join(csv_export.streaming_content).decode().strip().splitlines()) == 3  # header + 2 rows
    assert AuditEvent.objects.filter(action="admin.exported").count() == 4


def test_decisions_read_with_human_labels_money_and_plain_quantities(officer_client):
    decision = SellDecisionFactory(qty=Decimal("2.000000000"), price=Decimal("0.412345"), entry_price=Decimal("184.947976"))
    body = officer_client.get(reverse("admin:sellbot_selldecision_changelist")).content.decode()
    thead = body.split('id="result_list"')[1].split("</thead>")[0]
    assert "P&amp;L %" in thead and "Pl pct" not in thead and "Decided at (UTC)" in thead
    rows = body.split('id="result_list"')[1].split("</table>")[0]
    assert "$0.4123" in rows and "$184.95" in rows and "+15.00 %" in rows and "2.000000000" not in rows
    moment = decision.decided_at
    assert f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d} UTC" in rows
    detail = officer_client.get(reverse("admin:sellbot_selldecision_change", args=[decision.pk])).content.decode()
    assert f"{moment:%Y-%m-%d %H:%M:%S.%f} UTC" in detail


def test_every_console_list_and_page_renders_for_the_superuser(admin_client):
    from django.contrib import admin

    decision = SellDecisionFactory()
    SellCancellationFactory(account=decision.account)
    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        listing = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert listing.status_code == 200, opts.label
        first = model_admin.get_queryset(listing.wsgi_request).first()
        if first is not None:
            page = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk]))
            assert page.status_code == 200, opts.label
