"""``manage.py issue_token --user-id U [--account-id A] --permissions p1,p2 [--ttl 3600]``: mint an API token."""
from django.core.management.base import BaseCommand, CommandError

from accounts.models import AlpacaAccount
from opitios.auth import PERMISSIONS, issue_token, unknown_permissions


class Command(BaseCommand):
    help = "Mint a JWT for an API client (operators only; there is no token endpoint)."

    def add_arguments(self, parser):
        parser.add_argument("--user-id", required=True)
        parser.add_argument("--account-id", default=None, help="The bearer's own account (the token's account_id claim).")
        parser.add_argument("--permissions", required=True, help=f"Comma-separated: {', '.join(PERMISSIONS)}.")
        parser.add_argument("--ttl", type=int, default=3600, help="Lifetime in seconds (default 3600).")

    def handle(self, *args, user_id, account_id, permissions, ttl, **options):
        perms = [p.strip() for p in permissions.split(",") if p.strip()]
        if not perms:
            raise CommandError("--permissions: give at least one of " + ", ".join(PERMISSIONS))
        unknown = unknown_permissions(perms)
        if unknown:
            raise CommandError(f"--permissions: unknown {', '.join(unknown)}; expected any of {', '.join(PERMISSIONS)}")
        if ttl <= 0:
            raise CommandError("--ttl: must be a positive number of seconds")
        if account_id and not AlpacaAccount.objects.filter(account_id=account_id).exists():
            self.stderr.write(self.style.WARNING(f"warning: account {account_id} is not in the database (yet)"))
        try:
            token = issue_token(user_id=user_id, permissions=perms, account_id=account_id, ttl_seconds=ttl)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(token)
