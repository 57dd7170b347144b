"""Sell-bot state, managed positions, decisions and cancellations."""
from django.db import models
from django.db.models import Q


class BotStatus(models.TextChoices):
    RUNNING = "running", "running"
    STOPPED = "stopped", "stopped"
    STALLED = "stalled", "stalled"


class DecisionOutcome(models.TextChoices):
    """What became of an exit decision's order: pending while it is being submitted; placed (accepted),
    replayed (already placed by an earlier run), or the order pipeline's refused, rejected, failed."""

    PENDING = "pending"
    PLACED = "placed"
    REPLAYED = "replayed"
    REFUSED = "refused"
    REJECTED = "rejected"
    FAILED = "failed"


class SellBotState(models.Model):
    """The one row (pk=1) every worker reads: the database, not a process, holds whether the bot runs."""

    enabled = models.BooleanField(default=False)
    status = models.CharField(max_length=8, choices=BotStatus.choices, default=BotStatus.STOPPED)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.CharField(max_length=128, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    stalled_at = models.DateTimeField(null=True, blank=True)
    last_sweep_id = models.CharField(max_length=64, blank=True)
    last_sweep_started_at = models.DateTimeField(null=True, blank=True)
    last_sweep_finished_at = models.DateTimeField(null=True, blank=True)
    last_sweep_duration_ms = models.FloatField(null=True, blank=True)
    # accounts dispatched, accounts checked, positions evaluated, sells placed, cancellations dispatched...
    last_sweep_counts = models.JSONField(default=dict, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="Hostname and pid of the worker that ran the last sweep.")
    # The watchdog's grace starts again here: a restarted worker gets 3 x check_interval for its first sweep.
    worker_started_at = models.DateTimeField(null=True, blank=True, help_text="When a Celery worker last started.")

    class Meta:
        verbose_name = "sell-bot state"
        verbose_name_plural = "sell-bot state"

    def __str__(self) -> str:
        return f"sell bot {'enabled' if self.enabled else 'disabled'} ({self.status})"


class SellCounter(models.Model):
    """Monotonic counters the sweeps add to with one atomic UPDATE (price-fetch failures by error type)."""

    name = models.CharField(max_length=100, unique=True)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class PositionStatus(models.TextChoices):
    OPEN = "open", "open"
    CLOSING = "closing", "closing (exit order working)"
    CLOSED = "closed", "closed"


class PositionOrigin(models.TextChoices):
    AUTO_SELL_ORDER = "auto_sell_order", "option buy with auto_sell_enabled"
    MANAGE_ALL = "manage_all", "manage_all_option_positions"


class ManagedPosition(models.Model):
    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="managed_positions")
    symbol = models.CharField(max_length=32, db_index=True)
    qty = models.DecimalField(max_digits=20, decimal_places=9)
    entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    opened_at = models.DateTimeField(help_text="When the first opting-in buy filled; the maximum hold time counts from here.")
    high_water_mark = models.DecimalField(max_digits=20, decimal_places=6)
    status = models.CharField(max_length=8, choices=PositionStatus.choices, default=PositionStatus.OPEN, db_index=True)
    opted_in = models.BooleanField(default=True, db_index=True)
    origin = models.CharField(max_length=16, choices=PositionOrigin.choices, default=PositionOrigin.AUTO_SELL_ORDER)
    source_orders = models.JSONField(default=list, blank=True, help_text="Client order ids of the buys that opened or extended it.")
    exit_reason = models.CharField(max_length=24, blank=True)
    exit_attempts = models.PositiveIntegerField(default=0, help_text="Exit orders placed; the attempt number in the client order id.")
    exit_cancellations = models.PositiveIntegerField(default=0, help_text="Exit orders that ended unfilled (cancelled, expired, rejected).")
    exit_client_order_id = models.CharField(max_length=48, blank=True)
    last_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "symbol"], condition=~Q(status="closed"), name="managed_position_one_live_per_symbol"
            )
        ]
        indexes = [models.Index(fields=["account", "status"], name="managed_position_acct_status")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.symbol} x{self.qty} ({self.status})"


class AutoSellFill(models.Model):
    """An opting-in option buy (``auto_sell_enabled``) as the sweep saw it fill: how much it added to its
    ManagedPosition, and whether the order is final, so the sweep stops asking the broker about it."""

    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="auto_sell_fills")
    client_order_id = models.CharField(max_length=48)
    broker_order_id = models.CharField(max_length=64, blank=True)
    position = models.ForeignKey(ManagedPosition, on_delete=models.PROTECT, null=True, blank=True, related_name="fills")
    symbol = models.CharField(max_length=32)
    filled_qty = models.DecimalField(max_digits=20, decimal_places=9, default=0)
    filled_avg_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    broker_status = models.CharField(max_length=24, blank=True)
    final = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "client_order_id"], name="auto_sell_fill_unique_order")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.client_order_id} filled {self.filled_qty}"


class SellDecision(models.Model):
    """One row per exit order the bot decided to place (each attempt of a position's exit)."""

    position = models.ForeignKey(ManagedPosition, on_delete=models.PROTECT, related_name="decisions")
    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="sell_decisions")
    symbol = models.CharField(max_length=32, db_index=True)
    reason = models.CharField(max_length=24, db_index=True)
    detail = models.CharField(max_length=300, blank=True)
    price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    entry_price = models.DecimalField(max_digits=20, decimal_places=6)
    pl_pct = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    qty = models.DecimalField(max_digits=20, decimal_places=9)
    attempt = models.PositiveIntegerField()
    order_type = models.CharField(max_length=16)
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    client_order_id = models.CharField(max_length=48, unique=True)
    broker_order_id = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=10, choices=DecisionOutcome.choices, default=DecisionOutcome.PENDING, db_index=True)
    error = models.CharField(max_length=500, blank=True)
    decided_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-decided_at"]

    def __str__(self) -> str:
        return f"{self.account_id} {self.symbol} {self.reason} #{self.attempt}"


class CancelOutcome(models.TextChoices):
    PENDING = "pending", "pending"
    RETRYING = "retrying", "retrying"
    CANCELED = "canceled", "canceled"
    ALREADY_FINAL = "already_final", "already final (filled or cancelled)"
    FAILED = "failed", "failed"


class SellCancellation(models.Model):
    order_id = models.CharField(max_length=64, unique=True)
    client_order_id = models.CharField(max_length=48, blank=True)
    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="sell_cancellations")
    symbol = models.CharField(max_length=32, db_index=True)
    order_type = models.CharField(max_length=16)
    side = models.CharField(max_length=8)
    order_status = models.CharField(max_length=24, blank=True, help_text="The broker's status when found stale.")
    filled_qty = models.DecimalField(max_digits=20, decimal_places=9, default=0)
    submitted_at = models.DateTimeField()
    age_seconds = models.FloatField()
    limit_minutes = models.FloatField(help_text="The configured limit for this order type.")
    reason = models.CharField(max_length=100, default="stale")
    attempts = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=16, choices=CancelOutcome.choices, default=CancelOutcome.PENDING, db_index=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_broker_ms = models.FloatField(null=True, blank=True)
    total_ms = models.FloatField(null=True, blank=True, help_text="From detection to the final outcome.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.account_id} cancel {self.order_id} ({self.outcome}, {self.attempts} attempts)"
