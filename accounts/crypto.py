"""Credential encryption: MultiFernet over ``OPITIOS_FERNET_KEYS``.

``OPITIOS_FERNET_KEYS`` is a comma-separated list, newest first: the first key encrypts, all keys
decrypt. Embedded environments (no variable set) generate one key and keep it in
``var/fernet-keys`` (same format). Production settings refuse to start without the variable.

Rotating: put a new key in front (``manage.py rotate_fernet_key --generate`` prints one, or writes it
into ``var/fernet-keys`` in embedded mode), restart, run ``manage.py rotate_fernet_key`` to re-encrypt
every row with it, then drop the old key from the list.
"""
from __future__ import annotations

import functools
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

from opitios.logging import register_secret
from opitios.secrets_store import persistent_secret


class CredentialError(Exception):
    """A stored credential cannot be decrypted with any configured key."""


def key_file() -> Path:
    return Path(settings.VAR_DIR) / "fernet-keys"


def configured_keys() -> list[str]:
    keys = [k.strip() for k in (settings.OPITIOS_FERNET_KEYS or []) if k.strip()]
    if keys:
        return keys
    stored = persistent_secret(key_file(), factory=lambda: Fernet.generate_key().decode())
    return [k.strip() for k in stored.split(",") if k.strip()]


@functools.cache
def _fernet() -> MultiFernet:
    keys = configured_keys()
    for key in keys:
        register_secret(key)
    return MultiFernet([Fernet(k.encode()) for k in keys])


def reset_keys() -> None:
    """Forget the loaded keys (after a rotation or in tests that change them)."""
    _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, register: bool = True) -> str:
    """The plaintext, registered with the log masker before anyone can log it.

    ``register=False`` is for callers that register a whole batch at once (``register_secrets``)."""
    try:
        value = _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise CredentialError("stored credential cannot be decrypted with the configured Fernet keys") from None
    if register:
        register_secret(value)
    return value


def rotate(token: str) -> str:
    """The same plaintext encrypted with the newest key."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise CredentialError("stored credential cannot be decrypted with the configured Fernet keys") from None


def is_current(token: str) -> bool:
    """Whether ``token`` was encrypted with the newest key (rotation skips those)."""
    try:
        Fernet(configured_keys()[0].encode()).decrypt(token.encode())
    except InvalidToken:
        return False
    return True
