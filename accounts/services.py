"""Account writes: sync from secrets.yml, balance refresh, admin edits (paper/live detection: ``detection.py``)."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from accounts import broker as broker_seam
from accounts import crypto
from accounts.account_cache import accounts_changed
from accounts.audit_log import audit
from accounts.balance_cache import snapshots_remember
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
    skipped: dict[str, str] = field(default_factory=dict)  # account_id -> why its entry was not loaded
    blocked: list[str] = field(default_factory=list)  # existing accounts made non-tradable by an invalid entry
    failed: dict[str, str] = field(default_factory=dict)  # account_id -> why its write failed
    detection: DetectionSummary | None = None

    def summary(self) -> dict:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "disabled": len(self.disabled),
            "unchanged": len(self.unchanged),
            "skipped": len(self.skipped),
            "blocked": len(self.blocked),
            "failed": len(self.failed),
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


def _new_account(account_id: str, entry: AccountConfig) -> AlpacaAccount:
    return AlpacaAccount(
        account_id=account_id,
        api_key_encrypted=crypto.encrypt(entry.api_key),
        secret_key_encrypted=crypto.encrypt(entry.secret_key),
        synced_config=_file_values(entry),
        config_warning="; ".join(entry.dropped),
        **{f: getattr(entry, f) for f in SYNCED_FIELDS},
    )


def _apply_entry(account: AlpacaAccount, entry: AccountConfig) -> list[str]:
    """Apply a valid entry to an existing account; the names of the fields that changed."""
    file_values = _file_values(entry)
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
    for name, value in (("config_error", ""), ("config_warning", "; ".join(entry.dropped))):
        if getattr(account, name) != value:
            setattr(account, name, value)
            changed.append(name)
    if last != file_values:
        account.synced_config = file_values
        changed.append("synced_config")
    return changed


def _write(account: AlpacaAccount, fields: list[str] | None) -> None:
    """One account in its own transaction, validated first: the sync never writes a value the
    column cannot hold (on SQLite such a value made every later read of the table fail)."""
    account.clean_fields()
    with transaction.atomic():
        if fields is None:
            account.save(force_insert=True)
        else:
            account.save(update_fields=sorted({*fields, "updated_at"}))


def account_sync(
    *,
    config: OpitiosConfig | None = None,
    detect: bool = True,
    progress: Callable[[int], None] | None = None,
    actor_id: str = "sync_accounts",
) -> SyncResult:
    """Make the accounts table match the configuration: create, update, disable (never delete).

    Idempotent: an unchanged file writes nothing. Settings follow a three-way merge: a value
    changed in the file since the last sync wins; otherwise an admin edit is kept. Each account is
    written in its own transaction: one that cannot be written is reported and the others proceed.
    An existing account whose entry is invalid keeps its settings but is made non-tradable
    (``config_error``) until the entry is valid again.
    """
    config = config or current_config()
    result = SyncResult(skipped=dict(config.account_errors))
    existing = {a.account_id: a for a in AlpacaAccount.objects.all()}
    writes: list[tuple[str, AlpacaAccount, list[str] | None, list[str]]] = []  # id, account, fields (None: new), bucket

    for account_id, entry in config.accounts.items():
        account = existing.get(account_id)
        if account is None:
            writes.append((account_id, _new_account(account_id, entry), None, result.created))
        else:
            changed = _apply_entry(account, entry)
            if changed:
                visible = [c for c in changed if c != "synced_config"]
                writes.append((account_id, account, changed, result.updated if visible else result.unchanged))
            else:
                result.unchanged.append(account_id)
        if progress:
            progress(1)

    for account_id, reason in config.account_errors.items():
        account = existing.get(account_id)
        if account is not None and account.config_error != reason:
            account.config_error = reason
            writes.append((account_id, account, ["config_error"], result.blocked))
        elif account is not None:
            result.blocked.append(account_id)

    for account_id, account in existing.items():
        if account_id in config.accounts or account_id in config.account_errors:
            continue
        if account.enabled:
            account.enabled = False
            account.synced_config = {}  # if it comes back, the file's values apply again
            writes.append((account_id, account, ["enabled", "synced_config"], result.disabled))

    for account_id, account, fields, bucket in writes:
        try:
            _write(account, fields)
        except (ValidationError, DatabaseError) as exc:
            reason = _write_failure(exc)
            result.failed[account_id] = reason
            logger.error("account=%s not written by sync: %s", account_id, reason)
            if fields is not None:
                _block(account, f"the sync could not store this entry: {reason}")
        else:
            bucket.append(account_id)

    for account_id in result.skipped:
        # The reason itself is a config error, logged once by log_config_errors().
        state = "is not tradable until its entry is valid" if account_id in existing else "was not created"
        logger.warning("account=%s %s: its secrets.yml entry is invalid (see the config error)", account_id, state)

    if writes:
        audit(
            "account.synced",
            actor_id=actor_id,
            data={
                "source": str(config.source) if config.source else None,
                **result.summary(),
                "created_ids": result.created,
                "updated_ids": result.updated,
                "disabled_ids": result.disabled,
                "blocked_ids": result.blocked,
                "skipped": result.skipped,
                "failed": result.failed,
            },
        )
        broker_seam.pool().invalidate()
    logger.info("accounts synced from %s: %s", config.source, " ".join(f"{k}={v}" for k, v in result.summary().items()))

    if detect:
        result.detection = accounts_detect_types(accounts=AlpacaAccount.objects.filter(enabled=True))
    return result


def _write_failure(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in exc.message_dict.items())
    return f"database refused the write ({exc.__class__.__name__})"


def _block(account: AlpacaAccount, reason: str) -> None:
    """Fail safe: an account whose entry could not be applied must not keep trading on the old one."""
    try:
        with transaction.atomic():
            AlpacaAccount.objects.filter(pk=account.pk).update(config_error=reason, updated_at=timezone.now())
            accounts_changed()  # a queryset update sends no post_save
    except DatabaseError:
        logger.exception("account=%s could not be marked non-tradable", account.account_id)
# --- balances ------------------------------------------------------------------------------------


def account_refresh_balance(*, account: AlpacaAccount, timeout: float | None = None) -> BalanceSnapshot:
    info = broker_seam.broker_for(account).get_account(timeout=timeout)
    snapshot = BalanceSnapshot.objects.create(
        account=account, cash=info.cash, buying_power=info.buying_power, equity=info.equity, fetched_at=timezone.now()
    )
    snapshots_remember([snapshot])  # the order's balance check reads it from the cache
    return snapshot


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
    snapshots_remember(snapshots)
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
