import logging

import pytest

from audit.models import AuditEvent
from audit.secrets_guard import REDACTED, is_credential_key
from audit.services import audit_record
from opitios.logging import register_secret

pytestmark = pytest.mark.django_db

RUNTIME_SECRET = "decrypted-secret-value-8f7e6d"


@pytest.mark.parametrize("key", ["api_key", "API-Key", "apiKey", "secret_key", "APCA-API-SECRET-KEY", "APCA-API-KEY-ID", "password",
                                 "access_token", "refresh_token", "Authorization", "api_key_encrypted", "fernet_keys", "auth", "private_key"])
def test_credential_keys(key):
    assert is_credential_key(key)


@pytest.mark.parametrize("key", ["symbol", "qty", "client_order_id", "order_id", "account_id", "idempotency_key", "key_count"])
def test_ordinary_keys(key):
    assert not is_credential_key(key)


def test_secrets_are_never_stored_at_any_depth(caplog):
    register_secret(RUNTIME_SECRET)
    caplog.set_level(logging.WARNING, logger="opitios.audit")
    event = audit_record(actor_type="admin", actor_id="root", action="config.changed", data={
        "field": "credentials",
        "old": {"api_key": "PKABCDEFGHIJKLMNOP", "nested": [{"secret_key": "s3cr3t-value"}, {"Authorization": "Bearer abc.def"}]},
        "new": {"password": "hunter2-hunter2", "note": f"rotated to {RUNTIME_SECRET}"},
        "headers": {"APCA-API-KEY-ID": "PKZYXWVUTSRQPONMLK"},
    })
    stored = AuditEvent.objects.get(seq=event.seq)
    text = str(stored.data)
    for secret in ("PKABCDEFGHIJKLMNOP", "s3cr3t-value", "abc.def", "hunter2-hunter2", RUNTIME_SECRET, "PKZYXWVUTSRQPONMLK"):
        assert secret not in text
    assert stored.data["old"]["api_key"] == REDACTED and stored.data["old"]["nested"][0]["secret_key"] == REDACTED
    assert stored.data["field"] == "credentials"
    assert "old.api_key" in caplog.text and "new.note" in caplog.text
    assert "hunter2" not in caplog.text and "s3cr3t" not in caplog.text


def test_symbols_are_kept_verbatim_but_key_ids_elsewhere_are_masked():
    event = audit_record(actor_type="user", actor_id="u1", action="order.submitted", data={
        "order": {"symbol": "AKAM260116C00190000", "side": "buy"},
        "details": {"existing": {"symbol": "PKG270115P00150000"}, "symbols": ["AKAM", "CKX260116C00005000"]},
        "note": "sent with PKDEMO0000000000001",
        "symbol": "PKDEMO0000000000001X-not-a-symbol",
    })
    stored = AuditEvent.objects.get(seq=event.seq).data
    assert stored["order"]["symbol"] == "AKAM260116C00190000"
    assert stored["details"]["existing"]["symbol"] == "PKG270115P00150000"
    assert stored["details"]["symbols"] == ["AKAM", "CKX260116C00005000"]
    assert "PKDEMO0000000000001" not in str(stored)
