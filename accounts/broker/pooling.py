"""The per-process pool: every enabled account's ``AlpacaAccountBroker``, built at first use (or at
worker start) without network calls, refreshed when accounts are added, disabled or edited."""
from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings
from django.db.models import Count, Max

from accounts import crypto
from accounts.broker.adapter import AlpacaAccountBroker, ClientSpec
from accounts.broker.contract import AccountBroker, AccountInfo
from accounts.models import AlpacaAccount
from opitios.logging import register_secrets

logger = logging.getLogger("opitios.broker")

_POOL_FIELDS = (
    "pk", "account_id", "paper_trading", "enabled", "api_key_encrypted", "secret_key_encrypted",
    "rate_limit_per_minute", "max_connections",
)


def _fingerprint(row: dict) -> tuple:
    return (
        row["api_key_encrypted"],
        row["secret_key_encrypted"],
        row["paper_trading"],
        row["max_connections"],
        settings.ALPACA_PAPER_URL,
        settings.ALPACA_LIVE_URL,
        settings.ALPACA_DATA_URL,
        settings.BROKER_CONNECT_TIMEOUT,
        settings.BROKER_READ_TIMEOUT,
    )


def _build(row: dict, *, register: bool = True, paper_endpoint: bool | None = None) -> AlpacaAccountBroker:
    spec = ClientSpec(row["pk"], row["account_id"], row["paper_trading"], row["rate_limit_per_minute"], _fingerprint(row))
    return AlpacaAccountBroker(
        spec,
        api_key=crypto.decrypt(row["api_key_encrypted"], register=register),
        secret_key=crypto.decrypt(row["secret_key_encrypted"], register=register),
        max_connections=row["max_connections"],
        paper_endpoint=paper_endpoint,
    )


def _row(account: AlpacaAccount) -> dict:
    return {"pk": account.pk, **{f: getattr(account, f) for f in _POOL_FIELDS if f != "pk"}}


class BrokerPool:
    """Every enabled account's clients in this process; notices added, disabled and edited accounts
    (checked at most every ``ACCOUNTS_POOL_REFRESH_SECONDS``) without a restart."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._brokers: dict[int, AlpacaAccountBroker] = {}
        self._enabled: tuple[AlpacaAccountBroker, ...] = ()
        self._by_account_id: dict[str, AlpacaAccountBroker] = {}
        self._version: tuple | None = None
        self._checked_at = 0.0
        self._exhausted: dict[int, float] = {}  # pk -> monotonic time its budget frees up (this process's view)

    def enabled(self) -> tuple[AlpacaAccountBroker, ...]:
        self.refresh()
        return self._enabled

    def get(self, account_id: str) -> AlpacaAccountBroker | None:
        self.refresh()
        return self._by_account_id.get(account_id)

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked_at < settings.ACCOUNTS_POOL_REFRESH_SECONDS:
            return
        with self._lock:
            if not force and now - self._checked_at < settings.ACCOUNTS_POOL_REFRESH_SECONDS:
                return
            try:
                agg = AlpacaAccount.objects.aggregate(n=Count("pk"), latest=Max("updated_at"))
                version = (agg["n"], agg["latest"], _fingerprint({k: None for k in _POOL_FIELDS}))
                if force or version != self._version:
                    self._rebuild(list(AlpacaAccount.objects.filter(enabled=True).order_by("account_id").values(*_POOL_FIELDS)))
                    self._version = version
            except Exception as exc:
                if self._version is None and not self._brokers:
                    raise
                logger.error("broker pool refresh failed, keeping the current pool: %s", exc.__class__.__name__)
            self._checked_at = now

    def _rebuild(self, rows: list[dict]) -> None:
        fresh: dict[int, AlpacaAccountBroker] = {}
        secrets: list[str] = []
        for row in rows:
            existing = self._brokers.get(row["pk"])
            if existing is not None and existing.fingerprint == _fingerprint(row):
                existing.rate_limit_per_minute = row["rate_limit_per_minute"]
                fresh[row["pk"]] = existing
                continue
            try:
                broker = _build(row, register=False)
            except crypto.CredentialError as exc:
                logger.error("account=%s cannot join the broker pool: %s", row["account_id"], exc)
                continue
            secrets += [broker._trading._api_key, broker._trading._secret_key]
            fresh[row["pk"]] = broker
        register_secrets(secrets)
        # Replaced clients are not closed here: another thread may be mid-request on them.
        self._brokers = fresh
        self._enabled = tuple(fresh.values())
        self._by_account_id = {b.account_id: b for b in self._enabled}
        logger.info("broker pool ready: %d enabled accounts", len(self._enabled))

    def for_account(self, account: AlpacaAccount) -> AlpacaAccountBroker:
        fingerprint = _fingerprint(_row(account))
        broker = self._brokers.get(account.pk)
        if broker is None or broker.fingerprint != fingerprint:
            with self._lock:
                broker = self._brokers.get(account.pk)
                if broker is None or broker.fingerprint != fingerprint:
                    broker = _build(_row(account))
                    if account.enabled:
                        self._brokers[account.pk] = broker
                        self.invalidate()
        broker.rate_limit_per_minute = account.rate_limit_per_minute
        return broker

    def invalidate(self) -> None:
        """Re-read the accounts table at the next use (after a sync or an admin edit)."""
        self._version = None
        self._checked_at = 0.0

    # --- budget view of this process ---
    def mark_exhausted(self, pk: int, retry_after: int | None) -> None:
        self._exhausted[pk] = time.monotonic() + (retry_after or 1)

    def is_exhausted(self, pk: int) -> bool:
        until = self._exhausted.get(pk)
        if until is None:
            return False
        if time.monotonic() >= until:
            self._exhausted.pop(pk, None)
            return False
        return True

    def close(self) -> None:
        for broker in self._brokers.values():
            broker.close()
        self._brokers = {}
        self._enabled = ()
        self._by_account_id = {}
        self._version = None
        self._checked_at = 0.0
        self._exhausted.clear()


_pool = BrokerPool()


def reset_pool() -> None:
    """Forget every client (tests, and a forked child that must not share its parent's sockets)."""
    global _pool
    _pool.close()
    _pool = BrokerPool()


os.register_at_fork(after_in_child=lambda: globals().__setitem__("_pool", BrokerPool()))


def pool() -> BrokerPool:
    return _pool


def pool_accounts() -> tuple[AlpacaAccountBroker, ...]:
    """Build (or refresh) this process's pool and return its enabled accounts."""
    return _pool.enabled()


def broker_for(account: AlpacaAccount) -> AccountBroker:
    """The clients of ``account`` on its configured endpoint (paper or live). Trading is never routed:
    callers name the account; they check that it is enabled and not mismatched."""
    return _pool.for_account(account)


def probe_account(account: AlpacaAccount, *, paper: bool, timeout: float | None = None) -> AccountInfo:
    """``get_account`` on the paper or live endpoint regardless of the configured flag (type detection)."""
    broker = _build(_row(account), paper_endpoint=paper)
    try:
        return broker.get_account(timeout=timeout)
    finally:
        broker.close()
