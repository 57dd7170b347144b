"""Celery tasks: ids in, a service call, retries; and the worker hooks of the accounts app."""
from __future__ import annotations

import logging
import os
import threading

from celery import shared_task
from celery.signals import worker_process_init, worker_ready
from django.db import connection

from accounts import detection, services
from accounts.broker import BrokerTimeout, BrokerUnavailable, pool_accounts
from accounts.models import AlpacaAccount
from opitios.config import current_config

logger = logging.getLogger("opitios.accounts")


# Not acks_late (none of these tasks is): each is a refresh of state that beat sends again on its next
# interval (detection every 10 minutes, balances every balance_refresh_seconds), and an order falls
# back to a live balance fetch when the snapshot is stale, so a message lost with a killed worker
# costs one interval of freshness, never a wrong decision. They are idempotent, but redelivery of a
# stale refresh after a crash would only add load while Alpaca may be the reason the worker died.
@shared_task(name="accounts.detect_types", bind=True, ignore_result=True, max_retries=6)
def detect_types(self, retry_while_unreachable: bool = False) -> dict:
    accounts = AlpacaAccount.objects.filter(enabled=True)
    summary = detection.accounts_detect_types(accounts=accounts, actor_id="accounts.detect_types")
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


@worker_process_init.connect
def _warm_broker_pool(**kwargs) -> None:
    """Build this pool process's Alpaca clients now, off the first tasks' path (a sweep's checks
    otherwise built one per account). In a thread: a pool process must report ready within
    billiard's few seconds, and a task that needs the pool meanwhile waits on its lock."""

    def warm():
        try:
            current_config()  # parsing secrets.yml for 1000 accounts takes a third of a second
            pool_accounts()
        except Exception as exc:  # the first task builds it then, and reports its own error
            logger.warning("broker pool warm-up failed: %s", exc.__class__.__name__)
        finally:
            connection.close()

    threading.Thread(target=warm, name="broker-pool-warm-up", daemon=True).start()
