"""Credential key rotation: re-encrypt every stored Alpaca credential with the newest Fernet key,
as one transaction with one audit event (``account.credentials_rotated``).

How to rotate (docs/operations.md, "Rotating the credential key"): put a new key first in
OPITIOS_FERNET_KEYS and restart, run ``manage.py rotate_fernet_key``, then drop the old key and
restart again. In embedded mode ``rotate_fernet_key --generate`` installs the key itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet
from django.db import transaction

from accounts import crypto
from accounts.audit_log import audit
from accounts.broker import pool
from accounts.models import AlpacaAccount

CREDENTIAL_FIELDS = ("api_key_encrypted", "secret_key_encrypted")


class CredentialRotationError(Exception):
    """A stored credential decrypts with no configured key; nothing was changed."""

    def __init__(self, account_id: str, field: str) -> None:
        super().__init__(f"{account_id}: {field} cannot be decrypted with any configured key")
        self.account_id = account_id
        self.field = field


@dataclass(frozen=True)
class RotationResult:
    rotated: tuple[str, ...]  # account ids re-encrypted
    kept: int  # accounts already on the newest key


def credentials_rotate(*, actor_id: str = "rotate_fernet_key") -> RotationResult:
    """Re-encrypt every row not yet on the newest key. All or nothing: one undecryptable credential
    rolls back every row and raises ``CredentialRotationError``."""
    rotated: list[str] = []
    kept = 0
    with transaction.atomic():
        for account in AlpacaAccount.objects.select_for_update().order_by("pk"):
            fields = []
            for name in CREDENTIAL_FIELDS:
                token = getattr(account, name)
                if crypto.is_current(token):
                    continue
                try:
                    setattr(account, name, crypto.rotate(token))
                except crypto.CredentialError:
                    raise CredentialRotationError(account.account_id, name) from None
                fields.append(name)
            if fields:
                account.save(update_fields=[*fields, "updated_at"])
                rotated.append(account.account_id)
            else:
                kept += 1
        audit("account.credentials_rotated", actor_id=actor_id,
              data={"rotated": len(rotated), "kept": kept, "account_ids": rotated})
    pool().invalidate()
    return RotationResult(rotated=tuple(rotated), kept=kept)


def embedded_key_install() -> Path:
    """Embedded mode (no OPITIOS_FERNET_KEYS): put a new key in front of ``var/fernet-keys`` and use it
    from now on. Returns the key file."""
    path = crypto.key_file()
    path.write_text(",".join([Fernet.generate_key().decode(), *crypto.configured_keys()]))
    crypto.reset_keys()
    return path
