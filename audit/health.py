"""The ``audit_chain`` section of /health/detailed: the last stored chain check."""
from datetime import timedelta

from django.utils import timezone

from audit.selectors import chain_status
from opitios.health import DEGRADED, OK, UNHEALTHY, register_section

STALE_AFTER = timedelta(hours=48)  # the check runs daily; two missed runs is worth a look


def check_audit_chain() -> dict:
    status = chain_status()
    check = status["last_check"]
    report = {"head_seq": status["head_seq"], "last_check": check}
    if check is None:
        return {"status": OK, "verified": False, **report}
    if not check["ok"]:
        return {"status": UNHEALTHY, "verified": True, **report}
    stale = timezone.now() - check["ran_at"] > STALE_AFTER
    return {"status": DEGRADED if stale else OK, "verified": True, "stale": stale, **report}


register_section("audit_chain", check_audit_chain)
