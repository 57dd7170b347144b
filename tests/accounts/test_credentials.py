"""Credential key rotation as a service: all rows or none, one audit event, no secret in it."""
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from accounts import crypto
from accounts.credentials import CredentialRotationError, credentials_rotate
from accounts.models import AlpacaAccount
from audit.models import AuditEvent
from tests.accounts.factories import AlpacaAccountFactory

pytestmark = pytest.mark.django_db


def use_keys(settings, *keys: str) -> None:
    settings.OPITIOS_FERNET_KEYS = list(keys)
    crypto.reset_keys()


def test_rotation_is_audited_once_without_secrets(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    use_keys(settings, old)
    stale = AlpacaAccountFactory(account_id="rot_stale", api_key="PKROTATE000000000001", secret_key="rotate-secret-1")
    use_keys(settings, new, old)
    AlpacaAccountFactory(account_id="rot_current", api_key="PKROTATE000000000002", secret_key="rotate-secret-2")

    result = credentials_rotate(actor_id="ops@example")

    assert result.rotated == ("rot_stale",) and result.kept == 1
    row = AlpacaAccount.objects.get(pk=stale.pk)
    assert crypto.is_current(row.api_key_encrypted) and crypto.is_current(row.secret_key_encrypted)
    events = list(AuditEvent.objects.filter(action="account.credentials_rotated"))
    assert len(events) == 1
    event = events[0]
    assert (event.actor_type, event.actor_id) == ("system", "ops@example")
    assert event.data == {"rotated": 1, "kept": 1, "account_ids": ["rot_stale"]}
    stored = json.dumps(event.data)
    for secret in ("PKROTATE000000000001", "rotate-secret-1", row.api_key_encrypted, old, new):
        assert secret not in stored


def test_an_undecryptable_row_changes_nothing(settings):
    lost, old, new = (Fernet.generate_key().decode() for _ in range(3))
    use_keys(settings, old)
    first = AlpacaAccountFactory(account_id="rot_a", api_key="PKROTATE000000000003", secret_key="rotate-secret-3")
    use_keys(settings, lost)
    AlpacaAccountFactory(account_id="rot_b", api_key="PKROTATE000000000004", secret_key="rotate-secret-4")
    before = AlpacaAccount.objects.get(pk=first.pk).api_key_encrypted
    use_keys(settings, new, old)  # the key of rot_b is gone

    with pytest.raises(CredentialRotationError) as caught:
        credentials_rotate()
    assert (caught.value.account_id, caught.value.field) == ("rot_b", "api_key_encrypted")
    assert AlpacaAccount.objects.get(pk=first.pk).api_key_encrypted == before, "rot_a's rotation was rolled back"
    assert not AuditEvent.objects.filter(action="account.credentials_rotated").exists()

    with pytest.raises(CommandError, match="rot_b: api_key_encrypted cannot be decrypted"):
        call_command("rotate_fernet_key")
