"""`manage.py detect_account_types [ACCOUNT_ID ...]`: paper/live detection now."""
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.detection import accounts_detect_types
from accounts.models import AlpacaAccount


class Command(BaseCommand):
    help = "Detect the paper/live type of every enabled account (or the named ones), concurrently."

    def add_arguments(self, parser):
        parser.add_argument("account_ids", nargs="*", help="Only these accounts (default: every enabled account).")

    def handle(self, *args, account_ids: list[str], **options):
        accounts = AlpacaAccount.objects.filter(enabled=True)
        if account_ids:
            accounts = AlpacaAccount.objects.filter(account_id__in=account_ids)
            missing = set(account_ids) - set(accounts.values_list("account_id", flat=True))
            if missing:
                raise CommandError(f"Unknown accounts: {', '.join(sorted(missing))}")
        accounts = list(accounts)
        with tqdm(total=len(accounts), desc="detect", unit="acct", disable=len(accounts) < 50) as bar:
            d = accounts_detect_types(accounts=accounts, progress=bar.update, actor_id="detect_account_types")
        self.stdout.write(
            f"Types detected: paper {d.paper}, live {d.live}, mismatch {d.mismatch}, failed {d.failed}, changed {d.changed}"
        )
        for account in AlpacaAccount.objects.filter(pk__in=[a.pk for a in accounts]).filter(type_mismatch=True):
            self.stdout.write(self.style.ERROR(f"  MISMATCH {account.account_id}: configured "
                                               f"{'paper' if account.paper_trading else 'live'}, detected {account.account_type}"))
        for account in AlpacaAccount.objects.filter(pk__in=[a.pk for a in accounts], type_source="fallback"):
            self.stdout.write(self.style.WARNING(f"  FAILED {account.account_id}: {account.detection_error}"))
