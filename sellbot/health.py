"""The sell-bot section of /health/detailed (docs/operations.md, "Health")."""
from django.utils import timezone

from opitios.health import DEGRADED, OK

from . import selectors


def sellbot_section() -> dict:
    state = selectors.bot_state()
    now = timezone.now()
    status, healthy, why = selectors.bot_health(state=state, now=now)
    return {
        "status": OK if healthy else DEGRADED,  # the API still serves; exits are what stall
        "bot_status": status,
        "enabled": state.enabled,
        "reason": why,
        "heartbeat_at": state.heartbeat_at.isoformat() if state.heartbeat_at else None,
        "heartbeat_age_seconds": round((now - state.heartbeat_at).total_seconds(), 3) if state.heartbeat_at else None,
        "last_sweep_finished_at": state.last_sweep_finished_at.isoformat() if state.last_sweep_finished_at else None,
        "last_sweep_counts": state.last_sweep_counts,
    }
