"""`manage.py trading_state show | set STATE --reason TEXT [--account ID]`: the kill switch without the API.

It writes the database directly (the truth every process reads), so it works when the web
processes are down; the change is audited like any other (actor ``system``, the OS user)."""
import getpass

from django.core.management.base import BaseCommand, CommandError

from accounts.models import AlpacaAccount
from risk.models import State
from risk.states import trading_state_set, trading_states_list


class Command(BaseCommand):
    help = "Show or set the global or an account's trading state (active, reducing, halted)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="command", required=True)
        sub.add_parser("show", help="List the global state and every account's state.")
        setter = sub.add_parser("set", help="Set a state.")
        setter.add_argument("state", choices=State.values)
        setter.add_argument("--reason", required=True, help="Why (recorded in the audit trail).")
        setter.add_argument("--account", help="An account id (default: the global state).")

    def handle(self, *args, command: str, **options):
        if command == "show":
            for s in trading_states_list():
                when = s.changed_at.isoformat(timespec="seconds") if s.changed_at else "-"
                self.stdout.write(f"{s.scope:<40} {s.state:<9} {when:<26} {s.changed_by or '-':<20} {s.reason}")
            return
        account = None
        if options.get("account"):
            account = AlpacaAccount.objects.filter(account_id=options["account"]).first()
            if account is None:
                raise CommandError(f"Unknown account {options['account']}")
        if not options["reason"].strip():
            raise CommandError("--reason must not be empty")
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no login name (a container): still audited
            user = "manage.py"
        change = trading_state_set(account=account, state=options["state"], reason=options["reason"], actor_type="system",
                                   actor_id=f"manage.py:{user}")
        verb = "set" if change.changed else "unchanged"
        self.stdout.write(f"{change.new.scope}: {change.old.state} -> {change.new.state} ({verb})")
