"""The sell bot's writes (docs/architecture.md, "Sell bot"): control, sweeps, per-account checks,
positions, exits and cancellations, one module each; pure rules are in ``sellbot/strategy.py``.

Safety rules:
- An exit order's ``client_order_id`` is ``sb-{position_pk}-{attempt}``, persisted (with its
  SellDecision) before the order is submitted (``exits.py``): a position is never sold twice.
- Everything for one account runs under a per-account lock (``locks.held_lock``).
- Positions not opted in are never evaluated, priced or sold.
"""
from ..strategy import (
    BOT_ORDER_PREFIX,
    exit_client_order_id,
    exit_order_shape,
    order_age_seconds,
    order_in_scope,
    retry_delay,
)
from .account_check import ACCOUNT_LOCK_TTL, account_check
from .cancellations import TRANSIENT_ERRORS, CancelAttempt, cancellation_attempt, stale_orders_flag
from .check_result import AccountCheck, counter_add
from .control import bot_control, bot_state_ensure, bot_watchdog, sweep_begin, sweep_finish, worker_started
from .exits import EXIT_CANCELLED_STATUSES, WORKING_STATUSES
from .positions import FINAL_STATUSES, fills_absorb, position_close, position_extend, position_set_opt_in
from .quotes import CLOCK_CACHE_SECONDS, market_snapshot_take

__all__ = [
    "ACCOUNT_LOCK_TTL", "BOT_ORDER_PREFIX", "CLOCK_CACHE_SECONDS", "EXIT_CANCELLED_STATUSES", "FINAL_STATUSES", "TRANSIENT_ERRORS",
    "WORKING_STATUSES", "AccountCheck", "CancelAttempt", "account_check", "bot_control", "bot_state_ensure", "bot_watchdog", "cancellation_attempt",
    "counter_add", "exit_client_order_id", "exit_order_shape", "fills_absorb", "market_snapshot_take", "order_age_seconds",
    "order_in_scope", "position_close", "position_extend", "position_set_opt_in", "retry_delay", "stale_orders_flag", "sweep_begin", "sweep_finish",
    "worker_started",
]
