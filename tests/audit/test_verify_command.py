import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from audit.health import check_audit_chain
from audit.models import AuditChainCheck
from audit.services import audit_record
from audit.tasks import verify_chain as verify_chain_task
from opitios.health import detailed_report
from tests.audit.conftest import tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def events():
    for n in range(12):
        audit_record(actor_type="sellbot", actor_id="worker-1", action="sell.decision", data={"n": n})


def run(capsys, *args):
    try:
        call_command("verify_audit_chain", *args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ok_with_the_count(events, capsys):
    code, out, _ = run(capsys)
    assert code == 0 and out.startswith("OK 12 events")
    check = AuditChainCheck.objects.get()
    assert (check.ok, check.count, check.last_seq, check.source) == (True, 12, 12, "command")


def test_an_empty_chain_is_ok(capsys):
    assert run(capsys)[:2] == (0, "OK 0 events (last seq 0)\n")


def test_broken_exits_non_zero_with_the_seq_and_why(events, capsys):
    tamper("UPDATE audit_auditevent SET actor_id = 'forged' WHERE seq = 8")
    code, _, err = run(capsys)
    assert code == 1
    assert "BROKEN at seq 8" in err and "row altered" in err
    check = AuditChainCheck.objects.get()
    assert (check.ok, check.first_broken_seq, check.count) == (False, 8, 7)


def test_since(events, capsys):
    tamper("UPDATE audit_auditevent SET actor_id = 'forged' WHERE seq = 3")
    code, out, _ = run(capsys, "--since", "4")
    assert code == 0 and out.startswith("OK 9 events from seq 4")
    assert run(capsys, "--since", "3")[0] == 1
    with pytest.raises(CommandError):
        call_command("verify_audit_chain", "--since", "0")


def test_daily_beat_task_stores_the_result_for_health(events):
    assert settings.CELERY_BEAT_SCHEDULE["audit.verify_chain"]["task"] == "audit.verify_chain"
    assert check_audit_chain()["verified"] is False
    result = verify_chain_task.apply().get()
    assert result == {"ok": True, "count": 12, "first_broken_seq": None, "reason": ""}
    assert AuditChainCheck.objects.get().source == "beat"
    section = detailed_report()["checks"]["audit_chain"]
    assert section["status"] == "ok" and section["verified"] and section["last_check"]["count"] == 12


def test_health_is_unhealthy_when_the_last_check_found_a_break(events):
    tamper("DELETE FROM audit_auditevent WHERE seq = 5")
    verify_chain_task.apply()
    section = check_audit_chain()
    assert section["status"] == "unhealthy" and section["last_check"]["first_broken_seq"] == 5
