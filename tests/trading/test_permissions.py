"""The access table (docs/api.md, "Access"): every endpoint as anonymous, owner, another account's owner, a token
with the wrong permission, and admin."""
import pytest

from .conftest import client_for, token

pytestmark = pytest.mark.django_db

OID = "00000000-0000-0000-0000-000000000001"
ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day", "account_id": "account_001"}
OPTION = {"option_symbol": "AAPL260116C00190000", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day",
          "account_id": "account_001"}

# (method, path, body, {role: expected status})
# Roles: anon, owner (account_access+trading on account_001), other (same on account_002),
# wrong (market_data only, on account_001), admin.
MARKET = {"anon": 200, "owner": 200, "other": 200, "wrong": 200, "admin": 200}
ACCOUNT = {"anon": 401, "owner": 200, "other": 403, "wrong": 403, "admin": 200}
PLACE = {"anon": 401, "owner": 201, "other": 403, "wrong": 403, "admin": 201}
MATRIX = [
    ("get", "/api/v1/stocks/AAPL/quote", None, MARKET),
    ("post", "/api/v1/stocks/quotes/batch", {"symbols": ["AAPL"]}, MARKET),
    ("get", "/api/v1/stocks/AAPL/bars", None, MARKET),
    ("get", "/api/v1/options/AAPL/chain", None, MARKET),
    ("post", "/api/v1/options/quotes/batch", {"option_symbols": ["AAPL260116C00190000"]}, MARKET),
    ("get", "/api/v1/account?account_id=account_001", None, ACCOUNT),
    ("get", "/api/v1/positions?account_id=account_001", None, ACCOUNT),
    ("get", "/api/v1/orders?account_id=account_001", None, ACCOUNT),
    ("get", f"/api/v1/orders/{OID}?account_id=account_001", None, {**ACCOUNT, "owner": 404, "admin": 404}),
    ("delete", f"/api/v1/orders/{OID}?account_id=account_001", None, {**ACCOUNT, "owner": 404, "admin": 404}),
    ("post", "/api/v1/stocks/order", ORDER, PLACE),
    ("post", "/api/v1/options/order", OPTION, PLACE),
    ("post", "/api/v1/stocks/AAPL/buy?qty=1&account_id=account_001", None, PLACE),
    ("post", "/api/v1/stocks/AAPL/sell?qty=1&account_id=account_001", None, {**PLACE, "owner": 201, "admin": 201}),
    ("post", "/api/v1/orders/bulk", {"stock": ORDER, "account_ids": ["account_001"]},
     {"anon": 401, "owner": 403, "other": 403, "wrong": 403, "admin": 200}),
    ("get", "/api/v1/health/detailed", None, {"anon": 401, "owner": 403, "other": 403, "wrong": 403, "admin": 200}),
]


def _clients():
    return {
        "anon": client_for(None),
        "owner": client_for(token(user_id="owner", account_id="account_001")),
        "other": client_for(token(user_id="other", account_id="account_002")),
        "wrong": client_for(token(user_id="wrong", permissions=("market_data",), account_id="account_001")),
        "admin": client_for(token(user_id="admin", permissions=("admin",), account_id=None)),
    }


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_permission_matrix(config_file, demo_accounts, world, monkeypatch, method, path, body, expected):
    monkeypatch.setattr("opitios.health.check_workers", lambda: {"status": "ok"})
    for role, client in _clients().items():
        kwargs = {"format": "json"} if body is not None else {}
        r = getattr(client, method)(path, body, **kwargs) if body is not None else getattr(client, method)(path)
        assert r.status_code == expected[role], (role, r.status_code, r.content[:300])


def test_market_data_private_when_configured(config_file, demo_accounts, world):
    config_file.set("api", market_data_public=False)
    assert client_for(None).get("/api/v1/stocks/AAPL/quote").status_code == 401
    assert client_for(token(permissions=("trading",))).get("/api/v1/stocks/AAPL/quote").status_code == 403
    assert client_for(token(permissions=("market_data",))).get("/api/v1/stocks/AAPL/quote").status_code == 200


def test_account_resolution_errors(config_file, demo_accounts, world):
    no_account = client_for(token(account_id=None))
    r = no_account.get("/api/v1/account")
    assert r.status_code == 400 and r.json()["error"]["code"] == "account_required"
    admin = client_for(token(permissions=("admin",), account_id=None))
    r = admin.get("/api/v1/account?account_id=account_999")
    assert r.status_code == 404 and r.json()["error"]["code"] == "account_not_found"
    r = client_for(token()).get("/api/v1/account?account_id=account_999")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_forbidden"
