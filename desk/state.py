"""An account's trading state as the desk shows it: the risk controls' effective state (docs/risk.md) when the
account can trade at all."""
from __future__ import annotations

from accounts.models import AlpacaAccount
from risk.states import trading_state_effective

DISABLED, NOT_TRADABLE = "disabled", "not tradable"


def account_trading_state(account: AlpacaAccount) -> str:
    """``disabled`` (off in secrets.yml or the admin), ``not tradable`` (an invalid entry, a type mismatch, or a
    type not yet trusted: ``AlpacaAccount.tradable``), else ``active``, ``reducing`` or ``halted`` (the stricter
    of the global and the account's trading state; read from the per-process copy, no query per row)."""
    if not account.enabled:
        return DISABLED
    if not account.tradable:
        return NOT_TRADABLE
    return str(trading_state_effective(account=account).state)
