"""Create (or update) a desk user: a staff user in the "Desk" group, which may open /desk/ and nothing
in the admin's models. The password is prompted twice, or read from OPITIOS_DESK_PASSWORD (for scripts);
``--noinput`` requires that variable. Idempotent: run it again to reset the password."""
from audit.management.commands.create_compliance_officer import Command as AccountCommand
from desk.permissions import DESK_GROUP


class Command(AccountCommand):
    help = "Create or update a desk user (staff, in the Desk group: the desk dashboard at /desk/)."
    group_name = DESK_GROUP
    role = "desk user"
    password_env = "OPITIOS_DESK_PASSWORD"
