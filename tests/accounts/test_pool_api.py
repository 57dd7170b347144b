import pytest

from accounts.broker import broker_for
from accounts.detection import accounts_detect_types
from accounts.models import AlpacaAccount
from accounts.services import accounts_refresh_balances
from opitios.auth import issue_token
from tests.accounts.factories import demo_account, demo_accounts

pytestmark = pytest.mark.django_db

URL = "/api/v1/admin/pool"


def bearer(*perms):
    return {"HTTP_AUTHORIZATION": f"Bearer {issue_token(user_id='u1', permissions=list(perms))}"}


def test_anonymous_is_401(client):
    response = client.get(URL)
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert "WWW-Authenticate" in response.headers


def test_non_admin_is_403(client):
    response = client.get(URL, **bearer("market_data", "trading", "account_access"))
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


def test_admin_sees_totals_and_per_account_figures(client, alpaca):
    demo_accounts()
    demo_account("account_002")
    AlpacaAccount.objects.filter(account_id="account_002").update(paper_trading=False)
    accounts_detect_types(accounts=AlpacaAccount.objects.all())
    alpaca.set_fault("account", status=503, count=1)
    with pytest.raises(Exception):  # noqa: B017
        broker_for(AlpacaAccount.objects.get(account_id="account_001")).get_account()
    accounts_refresh_balances()
    body = client.get(URL, **bearer("admin")).json()
    assert body["total"] == 4
    assert body["budget_store"] == "shared"  # Redis when configured, else the embedded counter table
    assert body["by_type"] == {"paper": 3, "live": 1, "fallback": 0, "undetected": 0}
    assert body["by_state"] == {"enabled": 4, "disabled": 0, "mismatch": 1}
    rows = {r["id"]: r for r in body["accounts"]}
    assert rows["account_002"]["type_mismatch"] is True and rows["account_002"]["configured_type"] == "live"
    a1 = rows["account_001"]
    assert a1["errors_last_minute"] == 1 and a1["requests_last_minute"] >= 3 and a1["avg_latency_ms"] > 0
    assert a1["last_balance"]["cash"] == "100000.00" and 0 <= a1["last_balance"]["age_seconds"] < 30
    assert rows["account_003"]["last_balance"]["cash"] == "4200.00"
    assert {"api_key", "secret_key", "api_key_encrypted", "secret_key_encrypted"}.isdisjoint(a1)


def test_schema_documents_the_endpoint_with_errors(client):
    schema = client.get("/api/v1/schema", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/admin/pool" in schema and "admin_pool" in schema
