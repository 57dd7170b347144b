"""Paper/live detection over real HTTP against alpacasim."""
import logging

import pytest
from django.core.management import call_command

from accounts.detection import account_detect_type, accounts_detect_types
from accounts.models import AccountTypeChange, AlpacaAccount
from audit.models import AuditEvent
from tests.accounts.factories import demo_account, demo_accounts

pytestmark = pytest.mark.django_db


def test_paper_account_detected_as_paper(alpaca, caplog):
    account = demo_account("account_001")
    with caplog.at_level(logging.INFO, logger="opitios.accounts"):
        detection = account_detect_type(account=account)
    account.refresh_from_db()
    assert not detection.failed
    assert account.account_number.startswith("PA")
    assert (account.account_type, account.type_source, account.type_mismatch) == ("paper", "detected", False)
    assert account.detected_at is not None
    assert "account=account_001 type=paper source=detected configured=paper" in caplog.text
    [event] = AuditEvent.objects.filter(action="account.type_detected", account=account)
    assert event.data == {"account_number": account.account_number, "type": "paper", "configured": "paper", "mismatch": False}
    account_detect_type(account=account)  # nothing changed: no second event
    assert AuditEvent.objects.filter(action="account.type_detected", account=account).count() == 1


def test_live_account_detected_as_live(alpaca):
    account = demo_account("account_004")
    account_detect_type(account=account)
    account.refresh_from_db()
    assert not account.account_number.startswith("PA")
    assert (account.account_type, account.type_source, account.type_mismatch) == ("live", "detected", False)


def test_live_keys_configured_as_paper_are_a_mismatch(alpaca, caplog):
    # A live key on the paper host gets 401; the live host accepts it: a detected live account.
    account = demo_account("account_004", paper_trading=True)
    with caplog.at_level(logging.INFO):
        account_detect_type(account=account)
    account.refresh_from_db()
    assert (account.account_type, account.type_source, account.type_mismatch) == ("live", "detected", True)
    assert not account.tradable
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("account=account_004 type=live" in r.getMessage() and "MISMATCH" in r.getMessage() for r in errors)
    assert AuditEvent.objects.filter(action="account.type_mismatch").exists()


def test_paper_keys_configured_as_live_are_a_mismatch(alpaca):
    account = demo_account("account_002", paper_trading=False)
    account_detect_type(account=account)
    account.refresh_from_db()
    assert (account.account_type, account.type_source, account.type_mismatch) == ("paper", "detected", True)


def test_failure_falls_back_to_paper_safe_mode(alpaca, caplog):
    account = demo_account("account_004")
    alpaca.set_fault("account", status=500)
    with caplog.at_level(logging.INFO):
        detection = account_detect_type(account=account)
    account.refresh_from_db()
    assert detection.failed
    assert (account.account_type, account.type_source) == ("paper", "fallback")
    assert "unavailable" in account.detection_error.lower()
    assert any(r.levelno == logging.ERROR and "source=fallback" in r.getMessage() for r in caplog.records)
    assert AuditEvent.objects.filter(action="account.type_detection_failed").exists()


def test_timeout_falls_back_and_keeps_a_known_mismatch(alpaca, settings):
    settings.BROKER_READ_TIMEOUT = 0.3
    account = demo_account("account_004", paper_trading=True)
    account_detect_type(account=account)
    account.refresh_from_db()
    assert account.type_mismatch
    alpaca.set_fault("account", hang=True)
    try:
        detection = account_detect_type(account=account)
    finally:
        alpaca.clear_faults()
    account.refresh_from_db()
    assert detection.failed and "in time" in detection.error
    assert account.type_source == "fallback"
    assert account.type_mismatch, "a failed detection is no evidence: the mismatch must keep blocking trading"


def test_type_change_is_recorded(alpaca, caplog):
    account = demo_account("account_001")
    account_detect_type(account=account)
    account.refresh_from_db()
    old_number = account.account_number
    # The same keys now belong to a live account (the broker changed it).
    alpaca.upsert_account("PKDEMO0000000000001", "demo-secret-0000000001", paper=False, account_number="123456789")
    with caplog.at_level(logging.INFO):
        account_detect_type(account=account)
    account.refresh_from_db()
    change = AccountTypeChange.objects.get(account=account)
    assert (change.old_type, change.new_type) == ("paper", "live")
    assert (change.old_account_number, change.new_account_number) == (old_number, "123456789")
    assert account.account_type == "live" and account.type_mismatch
    assert any(r.levelno == logging.ERROR and "type changed paper -> live" in r.getMessage() for r in caplog.records)
    assert AuditEvent.objects.filter(action="account.type_changed").exists()


def test_bulk_detection_and_command(alpaca, capsys):
    demo_accounts()
    demo_account("account_003", paper_trading=False)  # get_or_create: keeps paper_trading=True
    AlpacaAccount.objects.filter(account_id="account_003").update(paper_trading=False)
    summary = accounts_detect_types(accounts=AlpacaAccount.objects.all())
    assert (summary.paper, summary.live, summary.mismatch, summary.failed) == (3, 1, 1, 0)
    call_command("detect_account_types")
    out = capsys.readouterr().out
    assert "paper 3, live 1, mismatch 1, failed 0" in out
    assert "MISMATCH account_003" in out


def test_periodic_task_runs_the_same_service(alpaca, settings):
    from accounts.tasks import detect_types

    demo_accounts()
    assert detect_types.run() == {"paper": 3, "live": 1, "mismatch": 0, "failed": 0, "changed": 0}
    assert "accounts.detect_types" in settings.CELERY_BEAT_SCHEDULE
    assert AlpacaAccount.objects.filter(type_source="detected").count() == 4
