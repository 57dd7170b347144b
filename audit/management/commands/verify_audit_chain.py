"""Verify the audit hash chain: ``OK <count>`` or the first broken seq and why; exit 1 when broken."""
from django.core.management.base import BaseCommand, CommandError

from audit.models import CheckSource
from audit.services import audit_chain_check_run


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain (streamed). Exits non-zero when the chain is broken."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=int, default=None, metavar="SEQ",
                            help="Check from this seq on, trusting the stored hash of the row before it.")

    def handle(self, *args, since=None, **options):
        if since is not None and since < 1:
            raise CommandError("--since must be 1 or more")
        check = audit_chain_check_run(since=since, source=CheckSource.COMMAND)
        scope = f" from seq {since}" if since else ""
        if check.ok:
            self.stdout.write(f"OK {check.count} events{scope} (last seq {check.last_seq or 0})")
            return
        self.stderr.write(f"BROKEN at seq {check.first_broken_seq}: {check.reason} ({check.count} events verified before it{scope})")
        raise SystemExit(1)
