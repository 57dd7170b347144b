"""An account's trading state as the desk shows it.

One function, so the risk controls (a ``risk`` app with halts and kill switches) can point it at their
effective state without touching the pages that show it."""
from __future__ import annotations

from accounts.models import AlpacaAccount

ACTIVE, DISABLED, NOT_TRADABLE = "active", "disabled", "not tradable"


def account_trading_state(account: AlpacaAccount) -> str:
    """``active``, ``disabled`` (off in secrets.yml or the admin) or ``not tradable`` (an invalid entry, a type
    mismatch, or a type not yet trusted: ``AlpacaAccount.tradable``)."""
    if not account.enabled:
        return DISABLED
    return ACTIVE if account.tradable else NOT_TRADABLE
