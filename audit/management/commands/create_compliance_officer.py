"""Create (or update) a compliance officer: a staff user in the "Compliance officers" group.

The password is prompted twice, or read from OPITIOS_COMPLIANCE_PASSWORD (for scripts);
``--noinput`` requires that variable. Without a terminal to prompt on, the command says so.
"""
import getpass
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from audit.permissions import COMPLIANCE_GROUP

PASSWORD_ENV = "OPITIOS_COMPLIANCE_PASSWORD"


class Command(BaseCommand):
    help = "Create or update a compliance officer (staff, view-only through the Compliance officers group)."
    # desk/management/commands/create_desk_user.py makes desk users the same way, in its own group.
    group_name = COMPLIANCE_GROUP
    role = "compliance officer"
    password_env = PASSWORD_ENV

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive",
                            help=f"Never prompt; the password comes from {self.password_env}.")

    def handle(self, *args, username, email, interactive, **options):
        env, command = self.password_env, self.__module__.rsplit(".", 1)[-1]
        if interactive and os.environ.get(env) is None and not _has_terminal():
            raise CommandError(
                f"no terminal to prompt for the password: set {env} "
                f"(e.g. {env}=... manage.py {command} {username} --noinput)"
            )
        group = Group.objects.filter(name=self.group_name).first()
        if group is None:
            raise CommandError(f'the "{self.group_name}" group is missing: run manage.py migrate')
        User = get_user_model()
        user = User.objects.filter(username=username).first() or User(username=username)
        if user.pk and user.is_superuser:
            raise CommandError(f"{username} is a superuser; refusing to turn it into a {self.role}")
        existed = user.pk is not None
        password = self._password(user, interactive)
        with transaction.atomic():
            user.is_staff = True
            user.is_active = True
            if email:
                user.email = email
            user.set_password(password)
            user.save()
            user.groups.add(group)
        self.stdout.write(f"{self.role} {username} {'updated' if existed else 'created'}")

    def _password(self, user, interactive: bool) -> str:
        password = os.environ.get(self.password_env)
        if password is None:
            if not interactive:
                raise CommandError(f"--noinput needs the password in {self.password_env}")
            try:
                password = getpass.getpass("Password: ")
                again = getpass.getpass("Password (again): ")
            except (EOFError, KeyboardInterrupt) as exc:
                raise CommandError(f"no password entered; nothing changed (or set {self.password_env} and use --noinput)") from exc
            if password != again:
                raise CommandError("the passwords do not match")
        if not password:
            raise CommandError("the password cannot be empty")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        return password


def _has_terminal() -> bool:
    # getpass prompts on the controlling terminal, else on stdin.
    try:
        with open("/dev/tty"):
            return True
    except OSError:
        return sys.stdin is not None and sys.stdin.isatty()
