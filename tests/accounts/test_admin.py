import json
import logging
from decimal import Decimal

import pytest

from accounts import crypto
from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from tests.accounts.factories import demo_account, demo_accounts

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456")
    client.force_login(user)
    return client


def test_changelist_shows_type_mismatch_and_balance(admin_client, alpaca):
    from accounts.detection import accounts_detect_types
    from accounts.services import accounts_refresh_balances

    demo_accounts()
    AlpacaAccount.objects.filter(account_id="account_002").update(paper_trading=False)
    accounts_detect_types(accounts=AlpacaAccount.objects.all())
    accounts_refresh_balances()
    page = admin_client.get("/admin/accounts/alpacaaccount/").content.decode()
    assert "account_002" in page and "$4,200.00" in page and "ago)" in page
    filtered = admin_client.get("/admin/accounts/alpacaaccount/?type_mismatch__exact=1").content.decode()
    assert "account_002" in filtered and "account_001" not in filtered
    assert admin_client.get("/admin/accounts/alpacaaccount/?account_type__exact=live&tier=standard").status_code == 200


def test_detect_action_calls_the_service(admin_client, alpaca):
    accounts = demo_accounts()
    response = admin_client.post(
        "/admin/accounts/alpacaaccount/",
        {"action": "detect_account_type", "_selected_action": [a.pk for a in accounts]},
        follow=True,
    )
    assert "Detected 4 accounts: paper 3, live 1, mismatch 0, failed 0" in response.content.decode()
    assert AlpacaAccount.objects.filter(type_source="detected").count() == 4


def test_thresholds_edit_is_audited_and_secrets_are_write_only(admin_client, alpaca, caplog):
    account = demo_account("account_001")
    old_token = account.api_key_encrypted
    url = f"/admin/accounts/alpacaaccount/{account.pk}/change/"
    form = admin_client.get(url).content.decode()
    assert 'type="password"' in form and old_token not in form and "PKDEMO0000000000001" not in form
    data = {
        "name": account.name, "tier": "gold", "enabled": "on", "minimum_balance": "12000",
        "balance_check_enabled": "true", "rate_limit_per_minute": "150", "max_connections": "10",
        "new_api_key": "", "new_secret_key": "brand-new-secret-xyz",
    }
    with caplog.at_level(logging.INFO):
        response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    account.refresh_from_db()
    assert account.minimum_balance == Decimal("12000") and account.tier == "gold" and account.rate_limit_per_minute == 150
    assert account.api_key_encrypted == old_token  # empty field: kept
    assert crypto.decrypt(account.secret_key_encrypted) == "brand-new-secret-xyz"
    event = AuditEvent.objects.get(action="config.changed", account=account)
    assert event.actor_type == "admin"
    assert event.data["changes"]["minimum_balance"] == {"old": None, "new": "12000"}
    assert event.data["changes"]["replaced_fields"] == ["secret_key"]
    assert "brand-new-secret-xyz" not in json.dumps(event.data)
    assert "brand-new-secret-xyz" not in caplog.text
    assert admin_client.get("/admin/accounts/alpacaaccount/add/").status_code == 403


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("minimum_balance", "1000000000000", "no more than 12 digits before the decimal point"),
        ("minimum_balance", "-1", "greater than or equal to 0"),
        ("rate_limit_per_minute", "0", "greater than or equal to 1"),
        ("rate_limit_per_minute", "1000001", "less than or equal to 1000000"),
        ("max_connections", "100000", "less than or equal to 1000"),
    ],
)
def test_the_admin_form_enforces_the_secrets_yml_ranges(admin_client, field, value, message):
    account = demo_account("account_001")
    data = {"name": account.name, "tier": "standard", "enabled": "on", "minimum_balance": "", "balance_check_enabled": "unknown",
            "rate_limit_per_minute": "200", "max_connections": "10", "new_api_key": "", "new_secret_key": ""}
    response = admin_client.post(f"/admin/accounts/alpacaaccount/{account.pk}/change/", {**data, field: value})
    assert response.status_code == 200 and message in response.content.decode()
    account.refresh_from_db()
    assert (account.minimum_balance, account.rate_limit_per_minute, account.max_connections) == (None, 200, 10)
    assert not AuditEvent.objects.filter(action="config.changed").exists()


def test_no_mismatch_is_not_drawn_as_an_alarm(admin_client):
    demo_account("account_001")
    demo_account("account_002", type_mismatch=True)
    page = admin_client.get("/admin/accounts/alpacaaccount/").content.decode()
    assert "icon-no.svg" not in page  # Django's red cross
    assert page.count("MISMATCH") == 1
