"""Celery tasks of the audit app."""
from celery import shared_task

from audit.models import CheckSource
from audit.services import audit_chain_check_run


@shared_task(name="audit.verify_chain", soft_time_limit=3600, time_limit=3700)
def verify_chain() -> dict:
    """Daily (beat): verify the whole chain and store the result."""
    check = audit_chain_check_run(source=CheckSource.BEAT)
    return {"ok": check.ok, "count": check.count, "first_broken_seq": check.first_broken_seq, "reason": check.reason}
