import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db

PASSWORD = "Officer-Pa55-word!"


def test_from_the_environment(compliance_group, monkeypatch):
    monkeypatch.setenv("OPITIOS_COMPLIANCE_PASSWORD", PASSWORD)
    call_command("create_compliance_officer", "alice", "--noinput", "--email", "alice@example.com")
    user = get_user_model().objects.get(username="alice")
    assert user.is_staff and not user.is_superuser and user.check_password(PASSWORD)
    assert list(user.groups.values_list("name", flat=True)) == ["Compliance officers"]
    assert user.has_perm("audit.view_auditevent") and user.has_perm("accounts.view_alpacaaccount")
    assert not user.has_perm("audit.change_auditevent") and not user.has_perm("accounts.change_alpacaaccount")
    perms = {p.split(".")[1] for p in user.get_all_permissions()}
    assert all(p.startswith("view_") for p in perms), perms  # officers see, never change
    assert perms >= {
        "view_alpacaaccount", "view_balancesnapshot", "view_accounttypechange", "view_auditevent", "view_auditchaincheck",
        "view_orderrecord", "view_managedposition", "view_selldecision", "view_sellcancellation"}


def test_noinput_needs_the_environment_variable(compliance_group, monkeypatch):
    monkeypatch.delenv("OPITIOS_COMPLIANCE_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="OPITIOS_COMPLIANCE_PASSWORD"):
        call_command("create_compliance_officer", "bob", "--noinput")
    assert not get_user_model().objects.filter(username="bob").exists()


def test_prompts_twice(compliance_group, monkeypatch):
    monkeypatch.delenv("OPITIOS_COMPLIANCE_PASSWORD", raising=False)
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("audit.management.commands.create_compliance_officer._has_terminal", lambda: True)
    call_command("create_compliance_officer", "carol")
    assert get_user_model().objects.get(username="carol").check_password(PASSWORD)


def test_mismatched_prompts_are_refused(compliance_group, monkeypatch):
    monkeypatch.delenv("OPITIOS_COMPLIANCE_PASSWORD", raising=False)
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("audit.management.commands.create_compliance_officer._has_terminal", lambda: True)
    with pytest.raises(CommandError, match="do not match"):
        call_command("create_compliance_officer", "dave")


def test_a_superuser_is_not_downgraded(compliance_group, monkeypatch, django_user_model):
    django_user_model.objects.create_superuser("root", password="x")
    monkeypatch.setenv("OPITIOS_COMPLIANCE_PASSWORD", PASSWORD)
    with pytest.raises(CommandError, match="superuser"):
        call_command("create_compliance_officer", "root", "--noinput")


def test_existing_user_is_updated(compliance_group, monkeypatch, django_user_model):
    django_user_model.objects.create_user("erin", password="old")
    monkeypatch.setenv("OPITIOS_COMPLIANCE_PASSWORD", PASSWORD)
    call_command("create_compliance_officer", "erin", "--noinput")
    user = django_user_model.objects.get(username="erin")
    assert user.is_staff and user.groups.filter(name="Compliance officers").exists() and user.check_password(PASSWORD)
