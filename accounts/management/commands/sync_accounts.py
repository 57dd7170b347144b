"""`manage.py sync_accounts [--file PATH] [--no-detect]`: secrets.yml into the database (docs/configuration.md)."""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from accounts.detection import accounts_detect_types
from accounts.models import AlpacaAccount
from accounts.services import account_sync
from opitios.config import ConfigError, current_config, log_config_errors, parse_config, read_yaml


class Command(BaseCommand):
    help = "Create, update and disable accounts from secrets.yml (never deletes), then detect paper/live types."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, help="Read this file instead of OPITIOS_SECRETS / secrets.yml.")
        parser.add_argument("--no-detect", action="store_true", help="Skip paper/live detection (e.g. the broker is not up yet).")

    def handle(self, *args, file: Path | None, no_detect: bool, **options):
        try:
            config = parse_config(read_yaml(file), source=file, demo=False) if file else current_config()
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        # `make run` runs this once at start: the one place each config error is printed.
        log_config_errors(config)
        show = len(config.accounts) >= 50
        with tqdm(total=len(config.accounts), desc="sync", unit="acct", disable=not show) as bar:
            result = account_sync(config=config, detect=False, progress=bar.update)
        s = result.summary()
        self.stdout.write(
            f"Accounts from {config.source}: created {s['created']}, updated {s['updated']}, "
            f"disabled {s['disabled']}, unchanged {s['unchanged']}, skipped {s['skipped']}, "
            f"not tradable {s['blocked']}, failed {s['failed']}"
        )
        for account_id, reason in result.skipped.items():
            state = "not tradable until its entry is valid" if account_id in result.blocked else "not created"
            self.stdout.write(self.style.WARNING(f"  skipped {account_id} ({state}): {reason}"))
        for account_id, reason in result.failed.items():
            self.stdout.write(self.style.ERROR(f"  failed {account_id}: {reason}"))
        if config.config_errors:
            self.stdout.write(self.style.WARNING(
                f"  {len(config.config_errors)} config errors, each logged once above and in logs/errors/errors.log; "
                "also in /health/detailed and the admin"
            ))
        if no_detect:
            return
        accounts = list(AlpacaAccount.objects.filter(enabled=True))
        with tqdm(total=len(accounts), desc="detect", unit="acct", disable=len(accounts) < 50) as bar:
            d = accounts_detect_types(accounts=accounts, progress=bar.update, actor_id="sync_accounts")
        self.stdout.write(
            f"Types detected: paper {d.paper}, live {d.live}, mismatch {d.mismatch}, failed {d.failed}, changed {d.changed}"
        )
        if d.mismatch or d.failed:
            self.stdout.write(self.style.WARNING("  see logs/errors/errors.log for the accounts with a mismatch or a failed detection"))
