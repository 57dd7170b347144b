"""Bad configuration never bricks the system (issue 12): through `manage.py sync_accounts`, the API
(alpaca-py over HTTP to alpacasim), /health/detailed and the admin, on SQLite and PostgreSQL alike.

In every case the sync succeeds, the valid accounts trade, and the error is shown, naming its key
path and the allowed range."""
from __future__ import annotations

import io
import os
import subprocess
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command
from django.db import connection

from accounts.models import AlpacaAccount
from opitios.auth import issue_token
from opitios.config import DEFAULT_RATE_LIMITS, SellModuleConfig, TradingConfig, current_config
from tests.accounts.factories import DEMO, demo_config_dict
from tests.trading.conftest import client_for, token

pytestmark = pytest.mark.django_db

ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}
THIRTEEN_DIGITS = 1_000_000_000_000  # the column holds 12 digits before the point


def base(**accounts) -> dict:
    data = demo_config_dict(**accounts)
    data["jwt"] = {"algorithm": "HS256"}
    data["rate_limits"] = {scope: "10000/min" for scope in DEFAULT_RATE_LIMITS}
    return data


@pytest.fixture
def secrets(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yml"
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    stamp = [0]

    def write(data: dict) -> None:
        path.write_text(yaml.safe_dump(data))
        stamp[0] += 1  # a distinct mtime, so current_config() re-reads it
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + stamp[0] * 1_000_000))

    return write


@pytest.fixture
def start(alpaca, secrets):
    """Write the file and run what `make run` runs at start: `manage.py sync_accounts`."""

    def run(data: dict) -> str:
        secrets(data)
        out = io.StringIO()
        call_command("sync_accounts", stdout=out)
        return out.getvalue()

    return run


def order(account_id: str, **extra):
    client = client_for(token(user_id=f"user-{account_id}", account_id=account_id))
    return client.post("/api/v1/stocks/order", {**ORDER, **extra}, format="json")


def detailed_health(client) -> dict:
    response = client.get("/api/v1/health/detailed", HTTP_AUTHORIZATION=f"Bearer {issue_token(user_id='ops', permissions=['admin'])}")
    assert response.status_code == 200
    return response.json()["checks"]


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("ops", "ops@example.com", "pw-ops-123456"))
    return client


def assert_serves(*account_ids: str) -> None:
    for account_id in account_ids:
        r = order(account_id)
        assert r.status_code == 201, (account_id, r.json())
    assert len(list(AlpacaAccount.objects.all())) == 4  # and the table reads back


def errors_of(client, prefix: str) -> list[str]:
    return [e for e in detailed_health(client)["config"]["config_errors"] if e.startswith(prefix)]


# --- out-of-range values: the section's default applies --------------------------------------------


def test_out_of_range_trading_values(start, client):
    data = base()
    data["trading"] = {"minimum_balance": THIRTEEN_DIGITS, "balance_refresh_seconds": 0, "max_order_qty": "1e30"}
    out = start(data)
    assert "created 4" in out and "3 config errors" in out
    trading = current_config().trading
    assert (trading.minimum_balance, trading.balance_refresh_seconds, trading.max_order_qty) == (
        TradingConfig().minimum_balance, TradingConfig().balance_refresh_seconds, None)
    assert_serves("account_001")
    [error] = errors_of(client, "trading.minimum_balance")
    assert "at most 999999999999.99" in error and "using the default" in error


def test_out_of_range_sell_module_values_including_zero_and_negative(start, client):
    data = base()
    data["sell_module"] = {"check_interval": 0, "order_cancel_minutes": -1, "max_exit_attempts": 10**6,
                           "order_cancel_minutes_by_type": {"limit": 0}, "strategy_one": {"stop_loss_rate": 5}}
    start(data)
    sell = current_config().sell_module
    assert sell.check_interval == SellModuleConfig().check_interval > 0
    assert sell.order_cancel_minutes == SellModuleConfig().order_cancel_minutes > 0
    assert sell.max_exit_attempts == SellModuleConfig().max_exit_attempts
    assert sell.order_cancel_minutes_by_type == {} and sell.strategy_one == SellModuleConfig().strategy_one
    assert_serves("account_001")
    assert errors_of(client, "sell_module.check_interval") == [
        "sell_module.check_interval: must be a number at least 0.5 and at most 3600; got 0; using the default"]
    assert "greater than 0" in errors_of(client, "sell_module.order_cancel_minutes:")[0]
    assert len(errors_of(client, "sell_module.")) == 5


def test_a_zero_rate_limit_is_an_error_and_orders_still_flow(start, client):
    data = base()
    data["rate_limits"] = {"stock_order": "0/min", "default": "-5/min", "stock_quote": "99999999999/min"}
    start(data)
    rates = current_config().rate_limits
    assert (rates["stock_order"], rates["default"], rates["stock_quote"]) == (
        DEFAULT_RATE_LIMITS["stock_order"], DEFAULT_RATE_LIMITS["default"], DEFAULT_RATE_LIMITS["stock_quote"])
    for _ in range(3):  # "0/min" refused every order with 429; the default (10/min) lets these through
        assert_serves("account_001")
    health = detailed_health(client)
    assert health["config"]["status"] == "degraded"
    assert sorted(e.split(":")[0] for e in health["config"]["config_errors"]) == [
        "rate_limits.default", "rate_limits.stock_order", "rate_limits.stock_quote"]
    assert all("at least 1 and at most 1000000000" in e for e in health["config"]["config_errors"])


def test_an_out_of_range_account_override_is_dropped_and_the_account_flagged(start, client, admin_client):
    entry = {**demo_config_dict()["accounts"]["account_001"], "minimum_balance": THIRTEEN_DIGITS,
             "rate_limit_per_minute": 0, "max_connections": 10**9}
    out = start(base(account_001=entry))
    assert "created 4" in out and "skipped 0" in out
    a1 = AlpacaAccount.objects.get(account_id="account_001")
    assert (a1.minimum_balance, a1.rate_limit_per_minute, a1.max_connections) == (None, 200, 10)
    assert "accounts.account_001.minimum_balance" in a1.config_warning and a1.config_error == ""
    assert_serves("account_001")  # flagged, still tradable: the trading default applies
    flagged = detailed_health(client)["accounts"]["config_flagged"]
    assert [f["account_id"] for f in flagged] == ["account_001"]
    page = admin_client.get("/admin/accounts/alpacaaccount/").content.decode()
    assert "settings dropped" in page and "accounts.account_001.minimum_balance" in page
    assert "accounts.account_001.rate_limit_per_minute" in admin_client.get("/admin/").content.decode()


# --- invalid entries: not created, or an existing account is not tradable -----------------------------


def test_a_10000_character_api_key_is_refused_without_echoing_it(start, client):
    huge = "PK" + "A" * 9998
    out = start(base(account_005={"api_key": huge, "secret_key": "s" * 20, "paper_trading": True}))
    assert "skipped 1" in out and "skipped account_005 (not created)" in out and huge not in out
    assert not AlpacaAccount.objects.filter(account_id="account_005").exists()
    assert_serves("account_001")
    errors = detailed_health(client)["config"]["account_errors"]
    assert errors == {"account_005": "accounts.account_005.api_key: must be at most 256 characters; got 10000"}


def test_a_broken_entry_for_an_existing_account_stops_its_trading_until_fixed(start, client, admin_client):
    start(base())
    assert_serves("account_002")
    out = start(base(account_002={"name": "rotating", "api_key": DEMO["account_002"][0], "paper_trading": True}))
    assert "not tradable 1" in out and "skipped account_002 (not tradable until its entry is valid)" in out

    r = order("account_002")
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_config_invalid", r.json()
    assert "accounts.account_002.secret_key: is required" in r.json()["error"]["message"]
    assert_serves("account_001")  # the others trade on

    health = detailed_health(client)
    assert health["accounts"]["config_invalid"] == [
        {"account_id": "account_002", "enabled": True, "config_error": "accounts.account_002.secret_key: is required"}]
    assert health["config"]["account_errors"] == {"account_002": "accounts.account_002.secret_key: is required"}
    a2 = AlpacaAccount.objects.get(account_id="account_002")
    for url in ("/admin/accounts/alpacaaccount/", f"/admin/accounts/alpacaaccount/{a2.pk}/change/", "/admin/"):
        page = admin_client.get(url).content.decode()
        assert "accounts.account_002.secret_key: is required" in page, url
    assert "invalid, not tradable" in admin_client.get("/admin/accounts/alpacaaccount/?config=invalid").content.decode()

    out = start(base())  # the entry is valid again
    assert "not tradable 0" in out
    assert_serves("account_002")


def test_a_second_account_with_the_same_api_key_is_not_tradable(start, client):
    start(base())
    twin = {**demo_config_dict()["accounts"]["account_003"], "api_key": DEMO["account_001"][0]}
    out = start(base(account_003=twin))
    assert "not tradable 1" in out
    r = order("account_003")
    assert r.status_code == 422 and r.json()["error"]["code"] == "account_config_invalid"
    assert "the same api_key as accounts.account_001" in r.json()["error"]["message"]
    assert DEMO["account_001"][0] not in str(r.json())
    assert_serves("account_001")
    assert "account_003" in detailed_health(client)["config"]["account_errors"]


def test_every_error_is_logged_once_and_readable(start, caplog):
    data = base(account_002={"api_key": DEMO["account_002"][0]})
    data["trading"] = {"minimum_balance": THIRTEEN_DIGITS}
    with caplog.at_level("ERROR", logger="opitios.config"):
        start(data)
    lines = [r.getMessage() for r in caplog.records if r.name == "opitios.config"]
    assert len(lines) == 2 == len(set(lines))
    assert any(line.endswith("accounts.account_002.secret_key: is required") for line in lines)


# --- the database never holds a value it cannot read back ----------------------------------------------


def test_the_sync_validates_before_it_writes(alpaca):
    from accounts.services import account_sync
    from opitios.config import AccountConfig, parse_config

    config = parse_config(base(), source=None, demo=False)
    bad = AccountConfig(account_id="account_001", api_key=DEMO["account_001"][0], secret_key=DEMO["account_001"][1],
                        minimum_balance=Decimal(THIRTEEN_DIGITS))  # as if a range were missing
    config.accounts["account_001"] = bad
    result = account_sync(config=config, detect=False)
    assert "account_001" in result.failed and "minimum_balance" in result.failed["account_001"]
    assert sorted(result.created) == ["account_002", "account_003", "account_004"]
    assert len(list(AlpacaAccount.objects.all())) == 3


@pytest.mark.skipif(connection.vendor != "sqlite", reason="PostgreSQL refuses to store such a value at all")
def test_the_migration_repairs_an_unreadable_sqlite_row(alpaca, secrets):
    import importlib

    secrets(base())
    call_command("sync_accounts", "--no-detect", stdout=io.StringIO())
    with connection.cursor() as cursor:  # what a sync before the ranges existed could write
        cursor.execute("UPDATE accounts_alpacaaccount SET minimum_balance = %s WHERE account_id = 'account_001'", [THIRTEEN_DIGITS])
    with pytest.raises(Exception):  # noqa: B017 - decimal.InvalidOperation inside the ORM's converter
        list(AlpacaAccount.objects.all())
    repair = importlib.import_module("accounts.migrations.0003_config_checks").REPAIR
    with connection.cursor() as cursor:
        for sql in repair:
            cursor.execute(sql)
    a1 = AlpacaAccount.objects.get(account_id="account_001")
    assert a1.minimum_balance is None and "out of range" in a1.config_warning
    call_command("sync_accounts", "--no-detect", stdout=io.StringIO())
    assert len(list(AlpacaAccount.objects.all())) == 4


# --- the real command, in its own process ---------------------------------------------------------------


def test_manage_py_sync_accounts_in_a_subprocess(tmp_path):
    from tests.helpers.stack import PY, REPO_ROOT, stack_environment

    path = tmp_path / "secrets.yml"
    env, database = stack_environment(tmp_path, env={"OPITIOS_SECRETS": str(path)})
    try:
        def manage(*args):
            return subprocess.run([PY, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

        data = base(account_002={"api_key": DEMO["account_002"][0]},
                    account_003={**demo_config_dict()["accounts"]["account_003"], "minimum_balance": THIRTEEN_DIGITS})
        data["trading"] = {"minimum_balance": THIRTEEN_DIGITS}
        data["rate_limits"]["stock_order"] = "0/min"
        path.write_text(yaml.safe_dump(data))
        assert manage("migrate", "--noinput", "--verbosity", "0").returncode == 0
        for _ in range(2):  # two starts; the second reads back what the first wrote
            done = manage("sync_accounts", "--no-detect")
            assert done.returncode == 0, done.stderr[-3000:]
            assert "skipped 1" in done.stdout and "4 config errors" in done.stdout, done.stdout
        assert "unchanged 3" in done.stdout, done.stdout
        errors_log = (tmp_path / "logs" / "errors" / "errors.log").read_text()
        for path_key in ("trading.minimum_balance", "rate_limits.stock_order", "accounts.account_003.minimum_balance",
                         "accounts.account_002.secret_key: is required"):
            assert errors_log.count(path_key) == 2, (path_key, errors_log)  # once per start, two starts
        assert "****" not in errors_log
    finally:
        if database:
            database.drop()
