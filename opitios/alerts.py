"""Alerts to a human through Apprise (docs/deployment.md, "Alerts").

``alert_raise(key, title, body)`` when a condition needs a person, ``alert_resolve(key)`` when it
is over. Keys name the condition (``sellbot_stalled``, ``type_mismatch:account_001``). A condition
that only counts once it has lasted a while (``stream_down:<stream>``) goes through
``alert_down_for(key, since, seconds, ...)`` and ``alert_up(key)`` instead.

- One message per raised condition: a raise of a key already raised sends nothing, unless it has
  stayed raised for ``alerts.repeat_minutes`` (a reminder).
- One "resolved" per condition, sent only once it has stayed resolved for ``RESOLVE_HOLD_SECONDS``:
  a condition flapping inside that hold sends no new message at all.
- Sent by the Celery task ``opitios.alerts.send`` after the caller's transaction commits (never in
  the request), retried with exponential backoff; the text passes the log masker first.
- The state lives in the shared cache (Redis in production), so every process agrees on it.
"""
from __future__ import annotations

import functools
import logging
import time
import uuid

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from opitios.config import current_config
from opitios.logging import mask_secrets

logger = logging.getLogger("opitios.alerts")

PREFIX = "alert:"
SINCE_PREFIX = "alert-since:"
SINCE_TTL = 7 * 86400
TITLE_PREFIX = "[Opitios]"


class AlertNotSent(Exception):
    """Apprise reported that no target took the message; the task retries."""


def _hold() -> float:
    return settings.ALERT_RESOLVE_HOLD_SECONDS


def _send_later(title: str, body: str, *, direct: bool = False) -> None:
    if not current_config().alerts.urls:
        return
    title, body = mask_secrets(title)[:250], mask_secrets(body)[:2000]
    if direct:  # the supervisor's listener: the workers may be the ones down
        send.apply((title, body))
        return
    transaction.on_commit(lambda: send.delay(title, body), robust=True)  # a broker hiccup never fails the caller


def _never_raises(fn):
    """An alert must never fail what raised it (a detection, a watchdog): a cache or broker outage is logged."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            logger.error("alert %s not recorded: %s", args[0] if args else "?", exc.__class__.__name__)
            return False

    return wrapper


@_never_raises
def alert_raise(key: str, title: str, body: str = "", *, direct: bool = False) -> bool:
    """Report ``key`` as needing a person. True when a message was queued (sent, with ``direct``)."""
    now = time.time()
    state = {"raised": True, "since": now, "notified_at": now, "title": title, "token": ""}
    if cache.add(PREFIX + key, state, timeout=None):
        _send_later(f"{TITLE_PREFIX} {title}", body, direct=direct)
        return True
    current = cache.get(PREFIX + key) or state
    repeat = current_config().alerts.repeat_minutes * 60
    if current.get("raised") and now - current.get("notified_at", now) < repeat:
        return False
    reminder = current.get("raised")  # still raised past the repeat interval; else it flapped back during the hold
    cache.set(PREFIX + key, {**current, "raised": True, "token": "", "notified_at": now if reminder else current["notified_at"]},
              timeout=None)
    if reminder:
        _send_later(f"{TITLE_PREFIX} still: {title}", body, direct=direct)
    return bool(reminder)


@_never_raises
def alert_resolve(key: str, body: str = "") -> None:
    """Report ``key`` as over. The "resolved" message goes out once it stays over for the hold."""
    current = cache.get(PREFIX + key)
    if not current or not current.get("raised"):
        return
    token = uuid.uuid4().hex
    cache.set(PREFIX + key, {**current, "raised": False, "token": token}, timeout=None)
    transaction.on_commit(lambda: resolve_after_hold.apply_async((key, token, body), countdown=_hold()), robust=True)


@_never_raises
def alert_down_for(key: str, since: float | None, seconds: float, title: str, body: str = "") -> bool:
    """Raise ``key`` once its condition has lasted ``seconds``. ``since`` is when it began, as whoever
    publishes it says; None when nobody can (a dead process): then from the last known ``since``, or
    from the first call that saw the condition. True when a message was queued."""
    now = time.time()
    if since is None:
        since = cache.get_or_set(SINCE_PREFIX + key, now, timeout=SINCE_TTL)
    else:
        cache.set(SINCE_PREFIX + key, since, timeout=SINCE_TTL)
    if now - since < seconds:
        return False
    return alert_raise(key, title, f"{body} Down for {round(now - since)} s.".strip())


@_never_raises
def alert_up(key: str, body: str = "") -> None:
    """The condition of ``alert_down_for`` is over: forget when it began, and resolve it if it was raised."""
    cache.delete(SINCE_PREFIX + key)
    alert_resolve(key, body)


def alert_active(key: str) -> bool:
    current = cache.get(PREFIX + key)
    return bool(current and current.get("raised"))


@shared_task(name="opitios.alerts.resolve_after_hold", ignore_result=True)
def resolve_after_hold(key: str, token: str, body: str = "") -> bool:
    current = cache.get(PREFIX + key)
    if not current or current.get("raised") or current.get("token") != token:
        return False  # raised again (or resolved again later) within the hold
    cache.delete(PREFIX + key)
    _send_later(f"{TITLE_PREFIX} resolved: {current.get('title', key)}", body)
    return True


@shared_task(name="opitios.alerts.send", bind=True, ignore_result=True, autoretry_for=(AlertNotSent,), retry_backoff=2,
             retry_backoff_max=300, retry_jitter=True, max_retries=8)
def send(self, title: str, body: str) -> bool:
    import apprise

    urls = current_config().alerts.urls
    if not urls:
        return False
    notifier = apprise.Apprise()
    for url in urls:
        notifier.add(url)
    if not notifier.notify(title=title, body=body or title):
        logger.warning("alert not delivered yet (attempt %s): %s", self.request.retries + 1, title)
        raise AlertNotSent(title)
    logger.info("alert sent: %s", title)
    return True
