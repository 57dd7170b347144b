"""Celery tasks of the risk app."""
from __future__ import annotations

import time

from celery import shared_task

from accounts.models import AlpacaAccount

from .states import trading_state_effective


@shared_task(name="risk.trading_state_effective", ignore_result=False)
def trading_state_effective_task(account_id: str) -> dict:
    """The effective trading state of an account as this worker process sees it now (an operations
    probe: every worker must agree with the database within a second), with the time it was read."""
    account = AlpacaAccount.objects.get(account_id=account_id)
    state = trading_state_effective(account=account)
    return {"account_id": account_id, "state": state.state, "reason": state.reason, "scope": state.scope, "read_at": time.time()}
