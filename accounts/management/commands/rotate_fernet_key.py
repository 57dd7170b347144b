"""`manage.py rotate_fernet_key`: re-encrypt every stored credential with the newest Fernet key.

How to rotate:
1. Make a key: ``manage.py rotate_fernet_key --generate`` prints one (in embedded mode, without
   OPITIOS_FERNET_KEYS, it also puts it in front of ``var/fernet-keys`` and re-encrypts at once).
2. Production: put it first in OPITIOS_FERNET_KEYS (``new,old``), restart web and workers.
3. Run ``manage.py rotate_fernet_key``: every row is re-encrypted with the new key.
4. Drop the old key from OPITIOS_FERNET_KEYS and restart again.
"""
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts import crypto
from accounts.broker import pool
from accounts.models import AlpacaAccount


class Command(BaseCommand):
    help = "Re-encrypt account credentials with the newest key of OPITIOS_FERNET_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true", help="Print a new key (embedded mode: install it and rotate).")

    def handle(self, *args, generate: bool, **options):
        if generate:
            key = Fernet.generate_key().decode()
            if settings.OPITIOS_FERNET_KEYS:
                self.stdout.write(key)
                self.stdout.write("Put it first in OPITIOS_FERNET_KEYS, restart, then run rotate_fernet_key.", ending="\n")
                return
            path = crypto.key_file()
            path.write_text(",".join([key, *crypto.configured_keys()]))
            crypto.reset_keys()
            self.stdout.write(f"New key installed in front of {path}.")
        rotated = kept = 0
        with transaction.atomic():
            for account in AlpacaAccount.objects.select_for_update().order_by("pk"):
                fields = []
                for name in ("api_key_encrypted", "secret_key_encrypted"):
                    token = getattr(account, name)
                    if crypto.is_current(token):
                        continue
                    try:
                        setattr(account, name, crypto.rotate(token))
                    except crypto.CredentialError:
                        raise CommandError(f"{account.account_id}: {name} cannot be decrypted with any configured key") from None
                    fields.append(name)
                if fields:
                    account.save(update_fields=[*fields, "updated_at"])
                    rotated += 1
                else:
                    kept += 1
        pool().invalidate()
        self.stdout.write(f"Re-encrypted {rotated} accounts with the newest key; {kept} already used it.")
