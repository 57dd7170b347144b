"""sync_accounts: create, update, disable, idempotent, broken entries skipped (docs/configuration.md)."""
import logging
from decimal import Decimal

import pytest
import yaml
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import crypto
from accounts.models import AlpacaAccount
from accounts.services import account_sync, account_update
from audit.models import AuditEvent
from opitios.config import parse_config
from tests.accounts.factories import demo_config_dict

pytestmark = pytest.mark.django_db


def config(**overrides):
    return parse_config(demo_config_dict(**overrides), source=None, demo=False)


def writes(ctx) -> list[str]:
    return [q["sql"] for q in ctx.captured_queries if q["sql"].split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]


def test_creates_encrypted_accounts(caplog):
    with caplog.at_level(logging.INFO):
        result = account_sync(config=config(), detect=False)
    assert result.summary() == {"created": 4, "updated": 0, "disabled": 0, "unchanged": 0, "skipped": 0, "blocked": 0, "failed": 0}
    account = AlpacaAccount.objects.get(account_id="account_004")
    assert account.paper_trading is False and account.enabled
    assert "AKDEMO" not in account.api_key_encrypted
    assert crypto.decrypt(account.api_key_encrypted) == "AKDEMO0000000000004"
    assert AuditEvent.objects.filter(action="account.synced").exists()


def test_second_sync_writes_nothing():
    account_sync(config=config(), detect=False)
    stamps = dict(AlpacaAccount.objects.values_list("account_id", "updated_at"))
    tokens = dict(AlpacaAccount.objects.values_list("account_id", "api_key_encrypted"))
    with CaptureQueriesContext(connection) as ctx:
        result = account_sync(config=config(), detect=False)
    assert writes(ctx) == []
    assert result.summary()["unchanged"] == 4 and result.updated == [] and result.created == []
    assert dict(AlpacaAccount.objects.values_list("account_id", "updated_at")) == stamps
    assert dict(AlpacaAccount.objects.values_list("account_id", "api_key_encrypted")) == tokens


def test_updates_only_what_changed():
    account_sync(config=config(), detect=False)
    before = dict(AlpacaAccount.objects.values_list("account_id", "secret_key_encrypted"))
    entry = demo_config_dict()["accounts"]["account_002"]
    result = account_sync(config=config(account_002={**entry, "secret_key": "rotated-secret-2", "minimum_balance": 7500}), detect=False)
    assert result.updated == ["account_002"]
    a2 = AlpacaAccount.objects.get(account_id="account_002")
    assert crypto.decrypt(a2.secret_key_encrypted) == "rotated-secret-2" and a2.minimum_balance == Decimal("7500")
    after = dict(AlpacaAccount.objects.values_list("account_id", "secret_key_encrypted"))
    assert {k for k in before if before[k] != after[k]} == {"account_002"}


def test_removed_accounts_are_disabled_never_deleted():
    account_sync(config=config(), detect=False)
    result = account_sync(config=config(account_003=None), detect=False)
    assert result.disabled == ["account_003"]
    assert AlpacaAccount.objects.get(account_id="account_003").enabled is False
    assert AlpacaAccount.objects.count() == 4
    result = account_sync(config=config(), detect=False)  # back in the file: enabled again
    assert result.updated == ["account_003"] and AlpacaAccount.objects.get(account_id="account_003").enabled


def test_broken_entry_is_skipped_while_the_others_load(caplog):
    broken = {"name": "no secret", "api_key": "PKBROKEN00000000000", "paper_trading": "maybe"}
    with caplog.at_level(logging.WARNING):
        result = account_sync(config=config(account_009=broken), detect=False)
    assert set(result.skipped) == {"account_009"}
    assert "secret_key" in result.skipped["account_009"] and "paper_trading" in result.skipped["account_009"]
    assert sorted(result.created) == ["account_001", "account_002", "account_003", "account_004"]
    assert not AlpacaAccount.objects.filter(account_id="account_009").exists()
    assert "account=account_009 was not created: its secrets.yml entry is invalid" in caplog.text


def test_admin_edits_survive_a_resync_but_file_changes_win():
    account_sync(config=config(), detect=False)
    a1 = AlpacaAccount.objects.get(account_id="account_001")
    account_update(account=a1, changes={"minimum_balance": Decimal("9000"), "enabled": False}, actor_id="ops")
    account_sync(config=config(), detect=False)
    a1.refresh_from_db()
    assert a1.minimum_balance == Decimal("9000") and a1.enabled is False
    entry = demo_config_dict()["accounts"]["account_001"]
    account_sync(config=config(account_001={**entry, "minimum_balance": 6000}), detect=False)
    a1.refresh_from_db()
    assert a1.minimum_balance == Decimal("6000") and a1.enabled is False


def test_command_with_file_and_detection(alpaca, tmp_path, capsys):
    data = demo_config_dict()
    data["accounts"]["account_009"] = {"api_key": "x"}
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump(data))
    call_command("sync_accounts", "--file", str(path))
    out = capsys.readouterr().out
    assert "created 4, updated 0, disabled 0, unchanged 0, skipped 1" in out
    assert "skipped account_009" in out
    assert "paper 3, live 1, mismatch 0, failed 0" in out
    call_command("sync_accounts", "--file", str(path), "--no-detect")
    assert "created 0, updated 0, disabled 0, unchanged 4, skipped 1" in capsys.readouterr().out


def test_each_account_is_written_in_its_own_transaction():
    accounts = {f"acct_{i:04d}": {"api_key": f"PKSIM{i:010d}", "secret_key": f"simsecret{i:010d}", "paper_trading": True} for i in range(300)}
    cfg = parse_config({"accounts": accounts}, source=None, demo=False)
    with CaptureQueriesContext(connection) as ctx:
        result = account_sync(config=cfg, detect=False)
    assert len(result.created) == 300
    inserts = [w for w in writes(ctx) if "accounts_alpacaaccount" in w]
    assert len(inserts) == 300  # one per account: a bad one cannot roll back the others
