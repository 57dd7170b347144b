import pytest

from accounts.models import AlpacaAccount, BalanceSnapshot
from accounts.tasks import refresh_balance, refresh_balances
from opitios.auth import issue_token
from tests.accounts.factories import demo_account, demo_accounts

pytestmark = pytest.mark.django_db


def test_ready_needs_an_enabled_account(client, alpaca):
    response = client.get("/api/v1/ready")
    assert response.status_code == 503 and any("enabled account" in p for p in response.json()["problems"])
    demo_account("account_001")
    assert client.get("/api/v1/ready").status_code == 200


def test_detailed_health_has_the_accounts_section(client, alpaca):
    demo_accounts()
    demo_account("account_004")
    AlpacaAccount.objects.filter(account_id="account_004").update(type_source="fallback", detection_error="timeout")
    refresh_balances.run()
    token = issue_token(user_id="ops", permissions=["admin"])
    section = client.get("/api/v1/health/detailed", HTTP_AUTHORIZATION=f"Bearer {token}").json()["checks"]["accounts"]
    assert section["status"] == "degraded"
    assert section["by_type"]["fallback"] == 1
    assert section["detection_failures"] == [{"account_id": "account_004", "detection_error": "timeout"}]
    assert section["balance_check"]["last_refresh_age_seconds"] < 30 and section["balance_check"]["refresh_seconds"] == 15


def test_refresh_tasks_write_snapshots(alpaca):
    accounts = demo_accounts()
    result = refresh_balances.run()
    assert result["refreshed"] == 4 and BalanceSnapshot.objects.count() == 4
    refresh_balance.run(accounts[2].pk)
    newest = BalanceSnapshot.objects.filter(account=accounts[2]).first()
    assert newest.cash == 4200 and BalanceSnapshot.objects.count() == 5


def test_refresh_skips_a_failing_account(alpaca):
    demo_accounts()
    alpaca.set_fault("account", status=500, count=1)
    result = refresh_balances.run()
    assert result["refreshed"] == 3 and result["failed"] == 1
