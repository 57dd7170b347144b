"""Celery tasks: ids in, a service call, retries (SPEC §1)."""
from __future__ import annotations

import logging
import os

from celery import shared_task
from celery.signals import worker_ready

from accounts import services
from accounts.broker import BrokerTimeout, BrokerUnavailable
from accounts.models import AlpacaAccount

logger = logging.getLogger("opitios.accounts")


# Not acks_late (none of these tasks is): each is a refresh of state that beat sends again on its next
# interval (detection every 10 minutes, balances every balance_refresh_seconds), and an order falls
# back to a live balance fetch when the snapshot is stale, so a message lost with a killed worker
# costs one interval of freshness, never a wrong decision. They are idempotent, but redelivery of a
# stale refresh after a crash would only add load while Alpaca may be the reason the worker died.
@shared_task(name="accounts.detect_types", bind=True, ignore_result=True, max_retries=6)
def detect_types(self, retry_while_unreachable: bool = False) -> dict:
    accounts = AlpacaAccount.objects.filter(enabled=True)
    summary = services.accounts_detect_types(accounts=accounts, actor_id="accounts.detect_types")
    if retry_while_unreachable and summary.failed and not (summary.paper or summary.live):
        # At start-up the broker (alpacasim in demo mode) may still be starting.
        raise self.retry(countdown=5, kwargs={"retry_while_unreachable": True})
    return summary.as_dict()


@shared_task(name="accounts.refresh_balances", ignore_result=True)
def refresh_balances() -> dict:
    return services.accounts_refresh_balances()


@shared_task(
    name="accounts.refresh_balance",
    ignore_result=True,
    autoretry_for=(BrokerUnavailable, BrokerTimeout),
    retry_backoff=1,
    retry_backoff_max=10,
    max_retries=2,
)
def refresh_balance(account_pk: int) -> None:
    account = AlpacaAccount.objects.filter(pk=account_pk, enabled=True).first()
    if account is not None:
        services.account_refresh_balance(account=account)


@worker_ready.connect
def _detect_at_worker_start(sender=None, **kwargs) -> None:
    """``make run`` sets OPITIOS_DETECT_AT_START: the worker detects types once the broker is up."""
    if os.environ.get("OPITIOS_DETECT_AT_START") == "1":
        detect_types.apply_async(kwargs={"retry_while_unreachable": True}, countdown=2)
