"""Fixtures of the trading tests: accounts like the demo ones, tokens, a config file per test."""
from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import AlpacaAccount
from opitios.auth import issue_token

from .fakes import FakeWorld

DEMO = {
    "account_001": {"paper": True, "type": "paper", "number": "PA0000000001"},
    "account_002": {"paper": True, "type": "paper", "number": "PA0000000002"},
    "account_003": {"paper": True, "type": "paper", "number": "PA0000000003"},
    "account_004": {"paper": False, "type": "live", "number": "LV0000000004", "minimum_balance": Decimal("10000")},
}

BASE_CONFIG = {
    "jwt": {"algorithm": "HS256", "leeway_seconds": 0},
    "trading": {"minimum_balance": 5000, "balance_max_age_seconds": 60},
    "rate_limits": {"stock_quote": "10000/min", "quotes_batch": "10000/min", "stock_order": "10000/min",
                    "option_order": "10000/min", "default": "10000/min"},
    "api": {"market_data_public": True},
}


class ConfigFile:
    """A secrets.yml of the test's own, read by ``current_config()`` (no restart)."""

    def __init__(self, path: Path):
        self.path = path
        self.data = yaml.safe_load(yaml.safe_dump(BASE_CONFIG))
        self.write()

    def write(self):
        self.path.write_text(yaml.safe_dump(self.data))
        st = self.path.stat()
        bump = getattr(self, "_bump", 0) + 1
        self._bump = bump
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000))

    def set(self, section: str, **values):
        self.data.setdefault(section, {}).update(values)
        self.write()


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OPITIOS_SECRETS", str(tmp_path / "secrets.yml"))
    return ConfigFile(tmp_path / "secrets.yml")


@pytest.fixture(autouse=True)
def _clean_cache():
    try:
        cache.clear()
    except Exception:
        pass
    yield


@pytest.fixture
def demo_accounts(db):
    rows = {}
    for account_id, spec in DEMO.items():
        rows[account_id] = AlpacaAccount.objects.create(
            account_id=account_id, name=account_id, paper_trading=spec["paper"], account_type=spec["type"],
            type_source="detected", account_number=spec["number"], api_key_encrypted="x", secret_key_encrypted="x",
            minimum_balance=spec.get("minimum_balance"),
        )
    return rows


@pytest.fixture
def world(monkeypatch):
    w = FakeWorld()
    monkeypatch.setattr("accounts.broker.broker_for", w.broker_for)
    monkeypatch.setattr("accounts.broker.market_data", w.market_data)
    return w


def token(user_id="u1", permissions=("account_access", "trading"), account_id="account_001", ttl=3600) -> str:
    return issue_token(user_id=user_id, permissions=list(permissions), account_id=account_id, ttl_seconds=ttl)


def client_for(tok: str | None = None) -> APIClient:
    c = APIClient()
    if tok:
        c.credentials(HTTP_AUTHORIZATION=f"Bearer {tok}")
    return c


@pytest.fixture
def trader(config_file, demo_accounts, world):
    return client_for(token())


@pytest.fixture
def admin(config_file, demo_accounts, world):
    return client_for(token(user_id="admin", permissions=("admin",), account_id=None))
