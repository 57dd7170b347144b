"""`manage.py rotate_fernet_key`: re-encrypt every stored credential with the newest Fernet key
(``accounts.credentials``; the steps are in docs/operations.md, "Rotating the credential key")."""
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.credentials import CredentialRotationError, credentials_rotate, embedded_key_install


class Command(BaseCommand):
    help = "Re-encrypt account credentials with the newest key of OPITIOS_FERNET_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--generate", action="store_true", help="Print a new key (embedded mode: install it and rotate).")

    def handle(self, *args, generate: bool, **options):
        if generate:
            if settings.OPITIOS_FERNET_KEYS:
                self.stdout.write(Fernet.generate_key().decode())
                self.stdout.write("Put it first in OPITIOS_FERNET_KEYS, restart, then run rotate_fernet_key.", ending="\n")
                return
            self.stdout.write(f"New key installed in front of {embedded_key_install()}.")
        try:
            result = credentials_rotate()
        except CredentialRotationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Re-encrypted {len(result.rotated)} accounts with the newest key; {result.kept} already used it.")
