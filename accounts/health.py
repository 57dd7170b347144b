"""The accounts app's checks for /ready (registered in ``AccountsConfig.ready``). Unlike a selector,
readiness builds this process's broker pool: a process is ready when it can reach Alpaca at once."""
from __future__ import annotations

from accounts.broker import pool_accounts


def accounts_readiness() -> str | None:
    """At least one enabled account, and this process's broker pool built."""
    if not pool_accounts():
        return "no enabled account (run manage.py sync_accounts)"
    return None
