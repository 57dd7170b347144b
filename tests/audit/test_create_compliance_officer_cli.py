"""`manage.py create_compliance_officer` run as an operator's script would: no terminal, no traceback."""
import subprocess
import sys

from tests.helpers.stack import REPO_ROOT, stack_environment

PASSWORD = "c0mpliance-Officer-pw"


def manage(env, *args, **extra):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env | extra, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True, timeout=180,  # a new session: no controlling terminal
    )


def test_without_a_terminal_it_says_what_to_do_and_noinput_works(tmp_path):
    env, database = stack_environment(tmp_path)
    env.pop("OPITIOS_COMPLIANCE_PASSWORD", None)
    try:
        assert manage(env, "migrate", "--noinput", "--verbosity", "0").returncode == 0

        prompted = manage(env, "create_compliance_officer", "alice")
        assert prompted.returncode == 1, prompted
        assert "Traceback" not in prompted.stderr and "EOFError" not in prompted.stderr, prompted.stderr
        assert "no terminal to prompt for the password" in prompted.stderr
        assert "OPITIOS_COMPLIANCE_PASSWORD" in prompted.stderr and "--noinput" in prompted.stderr

        refused = manage(env, "create_compliance_officer", "alice", "--noinput")
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused
        assert "--noinput needs the password in OPITIOS_COMPLIANCE_PASSWORD" in refused.stderr

        created = manage(env, "create_compliance_officer", "alice", "--noinput", OPITIOS_COMPLIANCE_PASSWORD=PASSWORD)
        assert created.returncode == 0, created.stderr
        assert "compliance officer alice created" in created.stdout
        check = manage(env, "shell", "-c", (
            "from django.contrib.auth import get_user_model as m; u = m().objects.get(username='alice'); "
            f"print(u.is_staff, u.groups.filter(name='Compliance officers').exists(), u.check_password({PASSWORD!r}))"
        ))
        assert check.stdout.splitlines()[-1].split() == ["True", "True", "True"], check
    finally:
        if database is not None:
            database.drop()
