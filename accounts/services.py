"""Account writes: sync from secrets.yml, balance refresh, admin edits (paper/live detection: ``detection.py``)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from accounts import broker as broker_seam
from accounts import crypto
from accounts.audit_log import audit
from accounts.detection import DetectionSummary, account_detect_type, accounts_detect_types
from accounts.models import AlpacaAccount, BalanceSnapshot, TypeSource
from opitios.config import AccountConfig, OpitiosConfig, current_config

logger = logging.getLogger("opitios.accounts")

# Settings a sync takes from the file (credentials are compared separately, as plaintext).
SYNCED_FIELDS = (
    "name", "tier", "enabled", "paper_trading", "max_connections",
    "minimum_balance", "balance_check_enabled", "rate_limit_per_minute",
)
BATCH = 500


# --- sync ----------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # account_id -> reason
    detection: DetectionSummary | None = None

    def summary(self) -> dict:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "disabled": len(self.disabled),
            "unchanged": len(self.unchanged),
            "skipped": len(self.skipped),
        }


def _file_values(entry: AccountConfig) -> dict:
    """The synced settings of one entry, JSON-safe (stored as ``synced_config``)."""
    values = {f: getattr(entry, f) for f in SYNCED_FIELDS}
    values["minimum_balance"] = str(values["minimum_balance"]) if values["minimum_balance"] is not None else None
    return values


def _db_value(name: str, value):
    if name == "minimum_balance" and value is not None:
        return Decimal(value)
    return value


def _credential_changed(token: str, plaintext: str) -> bool:
    try:  # compared only, never logged: no need to register it with the log masker
        return crypto.decrypt(token, register=False) != plaintext
    except crypto.CredentialError:
        return True  # undecryptable with today's keys: store the file's value


def account_sync(
    *,
    config: OpitiosConfig | None = None,
    detect: bool = True,
    progress: Callable[[int], None] | None = None,
    actor_id: str = "sync_accounts",
) -> SyncResult:
    """Make the accounts table match the configuration: create, update, disable (never delete).

    Idempotent: an unchanged file writes nothing. Settings follow a three-way merge: a value
    changed in the file since the last sync wins; otherwise an admin edit is kept.
    """
    config = config or current_config()
    result = SyncResult(skipped=dict(config.account_errors))
    now = timezone.now()
    existing = {a.account_id: a for a in AlpacaAccount.objects.all()}
    to_create: list[AlpacaAccount] = []
    to_update: list[AlpacaAccount] = []
    update_fields: set[str] = set()

    for account_id, entry in config.accounts.items():
        file_values = _file_values(entry)
        account = existing.get(account_id)
        if account is None:
            to_create.append(
                AlpacaAccount(
                    account_id=account_id,
                    api_key_encrypted=crypto.encrypt(entry.api_key),
                    secret_key_encrypted=crypto.encrypt(entry.secret_key),
                    synced_config=file_values,
                    **{f: getattr(entry, f) for f in SYNCED_FIELDS},
                )
            )
            result.created.append(account_id)
        else:
            changed = []
            last = account.synced_config or {}
            for name in SYNCED_FIELDS:
                if name not in last or last[name] != file_values[name]:
                    wanted = _db_value(name, file_values[name])
                    if getattr(account, name) != wanted:
                        setattr(account, name, wanted)
                        changed.append(name)
            if _credential_changed(account.api_key_encrypted, entry.api_key):
                account.api_key_encrypted = crypto.encrypt(entry.api_key)
                changed.append("api_key_encrypted")
            if _credential_changed(account.secret_key_encrypted, entry.secret_key):
                account.secret_key_encrypted = crypto.encrypt(entry.secret_key)
                changed.append("secret_key_encrypted")
            if {"api_key_encrypted", "secret_key_encrypted", "paper_trading"} & set(changed):
                # The detected type belonged to the old keys or endpoint: no orders until detected again.
                account.type_source = TypeSource.UNKNOWN
                changed.append("type_source")
            if last != file_values:
                account.synced_config = file_values
                changed.append("synced_config")
            if changed:
                account.updated_at = now
                update_fields.update(changed)
                to_update.append(account)
                visible = [c for c in changed if c != "synced_config"]
                (result.updated if visible else result.unchanged).append(account_id)
            else:
                result.unchanged.append(account_id)
        if progress:
            progress(1)

    for account_id, account in existing.items():
        if account_id in config.accounts or account_id in config.account_errors:
            continue  # a broken entry keeps the account as it was
        if account.enabled:
            account.enabled = False
            account.synced_config = {}  # if it comes back, the file's values apply again
            account.updated_at = now
            update_fields.update({"enabled", "synced_config"})
            to_update.append(account)
            result.disabled.append(account_id)

    for account_id, reason in result.skipped.items():
        logger.error("account=%s skipped by sync: %s", account_id, reason)

    if to_create or to_update:
        with transaction.atomic():
            AlpacaAccount.objects.bulk_create(to_create, batch_size=BATCH)
            if to_update:
                AlpacaAccount.objects.bulk_update(to_update, sorted(update_fields | {"updated_at"}), batch_size=BATCH)
            audit(
                "account.synced",
                actor_id=actor_id,
                data={
                    "source": str(config.source) if config.source else None,
                    **result.summary(),
                    "created_ids": result.created,
                    "updated_ids": result.updated,
                    "disabled_ids": result.disabled,
                    "skipped": result.skipped,
                },
            )
        broker_seam.pool().invalidate()
    logger.info("accounts synced from %s: %s", config.source, " ".join(f"{k}={v}" for k, v in result.summary().items()))

    if detect:
        result.detection = accounts_detect_types(accounts=AlpacaAccount.objects.filter(enabled=True))
    return result


# --- balances ------------------------------------------------------------------------------------


def account_refresh_balance(*, account: AlpacaAccount, timeout: float | None = None) -> BalanceSnapshot:
    info = broker_seam.broker_for(account).get_account(timeout=timeout)
    return BalanceSnapshot.objects.create(
        account=account, cash=info.cash, buying_power=info.buying_power, equity=info.equity, fetched_at=timezone.now()
    )


def _fetch_balance(account: AlpacaAccount):
    try:
        return broker_seam.broker_for(account).get_account(), timezone.now()
    except broker_seam.BrokerError as exc:
        logger.warning("account=%s balance refresh failed: %s %s", account.account_id, exc.code, exc.message)
        return None, None
    finally:
        close_old_connections()


def accounts_refresh_balances(*, accounts: Iterable[AlpacaAccount] | None = None, retention_days: int | None = None) -> dict:
    """A snapshot per enabled account (concurrent, bounded); prunes snapshots past the retention."""
    accounts = list(accounts if accounts is not None else AlpacaAccount.objects.filter(enabled=True))
    snapshots = []
    if accounts:
        with ThreadPoolExecutor(max_workers=max(1, min(settings.ACCOUNTS_CONCURRENCY, len(accounts)))) as executor:
            for account, (info, at) in zip(accounts, executor.map(_fetch_balance, accounts), strict=True):
                if info is not None:
                    snapshots.append(BalanceSnapshot(account=account, cash=info.cash, buying_power=info.buying_power, equity=info.equity, fetched_at=at))
    BalanceSnapshot.objects.bulk_create(snapshots, batch_size=BATCH)
    days = settings.ACCOUNTS_SNAPSHOT_RETENTION_DAYS if retention_days is None else retention_days
    pruned, _ = BalanceSnapshot.objects.filter(fetched_at__lt=timezone.now() - timedelta(days=days)).delete()
    return {"refreshed": len(snapshots), "failed": len(accounts) - len(snapshots), "pruned": pruned}


# --- admin edits -----------------------------------------------------------------------------------

ADMIN_EDITABLE = ("name", "tier", "enabled", "minimum_balance", "balance_check_enabled", "rate_limit_per_minute", "max_connections")


def account_update(
    *,
    account: AlpacaAccount,
    changes: dict,
    api_key: str | None = None,
    secret_key: str | None = None,
    actor_id: str,
) -> AlpacaAccount:
    """An operator's edit: applies to the next order (the database is read at check time) and is
    audited as ``config.changed`` with old and new values; secrets only as "changed"."""
    before = AlpacaAccount.objects.get(pk=account.pk)
    diff = {}
    for name, value in changes.items():
        if name not in ADMIN_EDITABLE:
            raise ValueError(f"{name} is not editable")
        old = getattr(before, name)
        if old != value:
            diff[name] = {"old": None if old is None else str(old), "new": None if value is None else str(value)}
            setattr(account, name, value)
    replaced = []  # which credentials were replaced; never their values
    if api_key and _credential_changed(before.api_key_encrypted, api_key):
        account.api_key_encrypted = crypto.encrypt(api_key)
        replaced.append("api_key")
    if secret_key and _credential_changed(before.secret_key_encrypted, secret_key):
        account.secret_key_encrypted = crypto.encrypt(secret_key)
        replaced.append("secret_key")
    if replaced:
        diff["replaced_fields"] = replaced
        account.type_source = TypeSource.UNKNOWN  # the detected type belonged to the old keys
    if not diff:
        return account
    with transaction.atomic():
        account.save()
        audit("config.changed", actor_type="admin", actor_id=actor_id, account=account, data={"object": "account", "account_id": account.account_id, "changes": diff})
    logger.info("account=%s edited by %s: %s", account.account_id, actor_id, ", ".join(sorted(diff)))
    broker_seam.pool().invalidate()
    if account.enabled and (replaced or (not before.enabled and account.enabled)):
        # Orders are refused until the type is known: detect now rather than at the next beat.
        # A failed call leaves the account in fallback (audited) like any other detection.
        try:
            account_detect_type(account=account, actor_type="admin", actor_id=actor_id)
        except Exception:  # the edit is saved; the beat detection retries
            logger.exception("account=%s detection after the edit crashed", account.account_id)
    return account
