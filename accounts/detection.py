"""Paper/live detection: read the account number from Alpaca (``PA...`` is paper), store it with its log
line, audit events and type-change record, and flag a type that contradicts ``paper_trading``."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from accounts import broker as broker_seam
from accounts.audit_log import audit
from accounts.models import AccountType, AccountTypeChange, AlpacaAccount, TypeSource

logger = logging.getLogger("opitios.accounts")


@dataclass(frozen=True)
class Detection:
    """What one detection run found out about an account (computed off the database thread)."""

    account_number: str = ""
    account_type: str = ""
    error: str = ""
    endpoint_rejected: bool = False  # the configured endpoint refused the keys; the other one accepted them

    @property
    def failed(self) -> bool:
        return bool(self.error)


def type_of(account_number: str) -> str:
    return (AccountType.PAPER if account_number.startswith("PA") else AccountType.LIVE).value


def _label(paper: bool) -> str:
    return (AccountType.PAPER if paper else AccountType.LIVE).value


def account_probe_type(*, account: AlpacaAccount) -> Detection:
    """Ask Alpaca which account the keys belong to. Network only; no database writes.

    The configured endpoint is asked first. If it refuses the keys (401/403, e.g. a paper key on the
    live host), the other endpoint is asked: if that one accepts them, the account's true type is
    known and it is a mismatch. Any other failure (timeout, 5xx) says nothing about the type.
    """
    try:
        info = broker_seam.broker_for(account).get_account()
        return Detection(account_number=info.account_number, account_type=type_of(info.account_number))
    except broker_seam.BrokerError as exc:
        first = exc
    if first.upstream_status not in (401, 403):
        return Detection(error=f"{_label(account.paper_trading)} endpoint: {first.message}")
    try:
        info = broker_seam.probe_account(account, paper=not account.paper_trading)
    except broker_seam.BrokerError as exc:
        return Detection(
            error=f"{_label(account.paper_trading)} endpoint: {first.message} {_label(not account.paper_trading)} endpoint: {exc.message}"
        )
    return Detection(account_number=info.account_number, account_type=type_of(info.account_number), endpoint_rejected=True)


def account_apply_detection(*, account: AlpacaAccount, detection: Detection, actor_type: str = "system", actor_id: str = "detection") -> None:
    """Store a detection outcome with its log line, audit events and type-change record."""
    now = timezone.now()
    configured = _label(account.paper_trading)
    who = {"actor_type": actor_type, "actor_id": actor_id, "account": account}
    if detection.failed:
        account.account_type = AccountType.PAPER
        account.type_source = TypeSource.FALLBACK
        account.detection_error = detection.error[:300]
        account.detected_at = now
        # type_mismatch is left as it was: a failed call is no evidence either way.
        account.save(update_fields=["account_type", "type_source", "detection_error", "detected_at"])
        logger.error(
            "account=%s type=paper source=fallback configured=%s detection failed, safe mode: %s",
            account.account_id, configured, detection.error,
        )
        audit("account.type_detection_failed", data={"error": detection.error, "configured": configured, "fallback_type": "paper"}, **who)
        return

    new_type = detection.account_type
    previous_number = account.account_number
    previous = {"type": account.account_type, "source": account.type_source, "number": previous_number, "mismatch": account.type_mismatch}
    mismatch = (new_type == AccountType.PAPER) != account.paper_trading or detection.endpoint_rejected

    if previous_number and type_of(previous_number) != new_type:
        AccountTypeChange.objects.create(
            account=account, old_type=type_of(previous_number), new_type=new_type,
            old_account_number=previous_number, new_account_number=detection.account_number, changed_at=now,
        )
        logger.error(
            "account=%s type changed %s -> %s (number %s -> %s)",
            account.account_id, type_of(previous_number), new_type, previous_number, detection.account_number,
        )
        audit(
            "account.type_changed",
            data={"old_type": type_of(previous_number), "new_type": new_type, "old_account_number": previous_number, "new_account_number": detection.account_number},
            **who,
        )

    account.account_number = detection.account_number
    account.account_type = new_type
    account.type_source = TypeSource.DETECTED
    account.detected_at = now
    account.detection_error = ""
    account.type_mismatch = mismatch
    account.save(update_fields=["account_number", "account_type", "type_source", "detected_at", "detection_error", "type_mismatch"])

    data = {"account_number": detection.account_number, "type": new_type, "configured": configured, "mismatch": mismatch}
    if mismatch:
        reason = "the configured endpoint refused the keys" if detection.endpoint_rejected else "the account number says otherwise"
        logger.error(
            "account=%s type=%s source=detected configured=%s TYPE MISMATCH, trading blocked (%s)",
            account.account_id, new_type, configured, reason,
        )
        if not previous["mismatch"] or previous["type"] != new_type or previous["source"] != TypeSource.DETECTED:
            audit("account.type_mismatch", data={**data, "reason": reason}, **who)
    else:
        logger.info("account=%s type=%s source=detected configured=%s number=%s", account.account_id, new_type, configured, detection.account_number)
    if previous != {"type": new_type, "source": TypeSource.DETECTED, "number": detection.account_number, "mismatch": mismatch}:
        audit("account.type_detected", data=data, **who)


def account_detect_type(*, account: AlpacaAccount, actor_type: str = "system", actor_id: str = "detection") -> Detection:
    detection = account_probe_type(account=account)
    with transaction.atomic():
        account_apply_detection(account=account, detection=detection, actor_type=actor_type, actor_id=actor_id)
    return detection


@dataclass
class DetectionSummary:
    paper: int = 0
    live: int = 0
    mismatch: int = 0
    failed: int = 0
    changed: int = 0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _probe_in_thread(account: AlpacaAccount) -> Detection:
    try:
        return account_probe_type(account=account)
    except Exception as exc:  # a bug must not stop the other accounts' detection
        logger.exception("account=%s detection crashed", account.account_id)
        return Detection(error=f"internal error ({exc.__class__.__name__})")
    finally:
        close_old_connections()


def accounts_detect_types(
    *,
    accounts: Iterable[AlpacaAccount],
    progress: Callable[[int], None] | None = None,
    actor_type: str = "system",
    actor_id: str = "detection",
) -> DetectionSummary:
    """Detect many accounts: calls run concurrently (bounded); results are stored on this thread."""
    accounts = list(accounts)
    summary = DetectionSummary()
    broker_seam.pool().refresh(force=True)  # every client built at once (one log-masker update), then reused
    changes_before = AccountTypeChange.objects.count()
    def probe(account: AlpacaAccount) -> Detection:
        detection = _probe_in_thread(account)
        if progress:
            progress(1)
        return detection

    # The network calls run first, outside any transaction, so no database lock is held while
    # waiting on Alpaca; the outcomes are then stored in short transactions.
    with ThreadPoolExecutor(max_workers=max(1, min(settings.ACCOUNTS_CONCURRENCY, len(accounts) or 1))) as executor:
        detections = list(executor.map(probe, accounts))
    for start in range(0, len(accounts), 100):
        with transaction.atomic():
            for account, detection in zip(accounts[start : start + 100], detections[start : start + 100], strict=True):
                account_apply_detection(account=account, detection=detection, actor_type=actor_type, actor_id=actor_id)
                if detection.failed:
                    summary.failed += 1
                else:
                    summary.paper += detection.account_type == AccountType.PAPER
                    summary.live += detection.account_type == AccountType.LIVE
                    summary.mismatch += account.type_mismatch
    summary.changed = AccountTypeChange.objects.count() - changes_before
    logger.info("account type detection: %s", " ".join(f"{k}={v}" for k, v in summary.as_dict().items()))
    return summary
