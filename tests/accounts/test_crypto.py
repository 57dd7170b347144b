import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts import crypto
from accounts.models import AlpacaAccount
from tests.accounts.factories import AlpacaAccountFactory

pytestmark = pytest.mark.django_db


def test_round_trip_and_masking(caplog):
    token = crypto.encrypt("sk-very-secret-value")
    assert "very-secret" not in token
    assert crypto.decrypt(token) == "sk-very-secret-value"
    with caplog.at_level(logging.INFO):
        logging.getLogger("opitios.test").info("oops %s", "sk-very-secret-value")
    from opitios.logging import mask_secrets

    assert "sk-very-secret-value" not in mask_secrets(caplog.records[-1].getMessage())


def test_wrong_key_is_a_clear_error(settings):
    token = crypto.encrypt("abcdefgh")
    settings.OPITIOS_FERNET_KEYS = [Fernet.generate_key().decode()]
    crypto.reset_keys()
    with pytest.raises(crypto.CredentialError):
        crypto.decrypt(token)


def test_rotate_fernet_key_reencrypts_every_row(settings, capsys):
    old = Fernet.generate_key().decode()
    settings.OPITIOS_FERNET_KEYS = [old]
    crypto.reset_keys()
    accounts = [AlpacaAccountFactory(api_key=f"PKROT{i:014d}", secret_key=f"rot-secret-{i}") for i in range(3)]
    new = Fernet.generate_key().decode()
    settings.OPITIOS_FERNET_KEYS = [new, old]
    crypto.reset_keys()
    call_command("rotate_fernet_key")
    assert "Re-encrypted 3 accounts" in capsys.readouterr().out
    settings.OPITIOS_FERNET_KEYS = [new]  # the old key is gone: everything still decrypts
    crypto.reset_keys()
    for i, a in enumerate(accounts):
        row = AlpacaAccount.objects.get(pk=a.pk)
        assert crypto.decrypt(row.api_key_encrypted) == f"PKROT{i:014d}"
        assert crypto.decrypt(row.secret_key_encrypted) == f"rot-secret-{i}"
    call_command("rotate_fernet_key")
    assert "Re-encrypted 0 accounts" in capsys.readouterr().out


def test_embedded_generate_installs_a_new_key(settings, tmp_path, capsys):
    settings.OPITIOS_FERNET_KEYS = []
    settings.VAR_DIR = tmp_path
    crypto.reset_keys()
    a = AlpacaAccountFactory(api_key="PKEMBEDDED000000001", secret_key="embedded-secret")
    first = crypto.configured_keys()
    call_command("rotate_fernet_key", "--generate")
    keys = (tmp_path / "fernet-keys").read_text().split(",")
    assert len(keys) == 2 and keys[1] == first[0]
    row = AlpacaAccount.objects.get(pk=a.pk)
    assert crypto.is_current(row.api_key_encrypted) and crypto.decrypt(row.secret_key_encrypted) == "embedded-secret"
    crypto.reset_keys()
