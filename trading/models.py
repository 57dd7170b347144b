"""``OrderRecord``: the compliance timing ledger, one row per order attempt."""
from decimal import Decimal

from django.db import models
from django.db.models import Q

from .intents import intent_fingerprint


def _dec(value) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


class Source(models.TextChoices):
    API = "api", "api"
    BULK = "bulk", "bulk"
    SELLBOT = "sellbot", "sellbot"
    # Seen only on the account's trade-updates stream: placed outside the gateway (e.g. Alpaca's dashboard).
    EXTERNAL = "external", "external"


class Action(models.TextChoices):
    PLACE = "place", "place a new order"
    REPLACE = "replace", "replace an open order (PATCH)"


class Outcome(models.TextChoices):
    PENDING = "pending", "pending (reserved, not yet answered)"
    ACCEPTED = "accepted", "accepted by the broker"
    REFUSED = "refused", "refused by the gateway"
    REJECTED = "rejected", "rejected by the broker"
    FAILED = "failed", "failed (broker fault; outcome unknown upstream)"


FINAL_OUTCOMES = (Outcome.ACCEPTED, Outcome.REFUSED, Outcome.REJECTED)
# Broker statuses after which an order changes no more (trading.ledger and its callers use it from there).
# done_for_day is not final: the order resumes at the next session and may still fill (Alpaca, and alpacasim).
FINAL_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced"})
# An accepted order the broker may still fill: what the desk counts per account and reconcile re-checks.
OPEN_ORDER = Q(outcome=Outcome.ACCEPTED) & ~Q(broker_status__in=sorted(FINAL_STATUSES))


class OrderRecord(models.Model):
    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="order_records", db_index=False)
    account_type = models.CharField(max_length=8)
    source = models.CharField(max_length=8, choices=Source.choices)
    user_id = models.CharField(max_length=128, blank=True)

    client_order_id = models.CharField(max_length=128)  # Alpaca allows 128 (an external order's may be that long)
    # The idempotency key is (account, client_order_id) over the current attempt; a retry after a
    # broker fault supersedes the failed row (is_current=False) so every attempt keeps its record.
    is_current = models.BooleanField(default=True)
    attempt = models.PositiveSmallIntegerField(default=1)
    broker_order_id = models.CharField(max_length=64, blank=True)
    # sha256 of the order's canonical fields (trading.intents.intent_fingerprint): a reused
    # client_order_id with a different order is a 409 conflict, never a replay of the old one.
    intent_hash = models.CharField(max_length=64, blank=True)

    symbol = models.CharField(max_length=32)
    asset_class = models.CharField(max_length=16)
    side = models.CharField(max_length=8)
    order_type = models.CharField(max_length=16)
    time_in_force = models.CharField(max_length=8)
    qty = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True)
    notional = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    limit_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    stop_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    extended_hours = models.BooleanField(default=False)
    # Option buys opted in to the sell bot: it opens a ManagedPosition when the order fills.
    auto_sell_enabled = models.BooleanField(default=False)
    # Order classes and trailing stops (trading/order_classes.py). ``legs``: the requested take_profit /
    # stop_loss, and once accepted the broker's legs (``broker``: id, type, status, prices).
    order_class = models.CharField(max_length=8, default="simple")
    legs = models.JSONField(default=dict, blank=True)
    trail_price = models.DecimalField(max_digits=20, decimal_places=6, null=True, blank=True)
    trail_percent = models.DecimalField(max_digits=9, decimal_places=4, null=True, blank=True)
    # A replacement (PATCH) is its own attempt: action=replace, linked to the record of the order it
    # replaces (when the ledger holds it) and always to that order's broker id.
    action = models.CharField(max_length=8, choices=Action.choices, default=Action.PLACE)
    # No index of its own (each one costs every order a write): a replacement is found from its record.
    replaces = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True, related_name="replacements", db_index=False)
    replaces_order_id = models.CharField(max_length=64, blank=True)

    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.PENDING)
    broker_status = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    balance_status = models.CharField(max_length=24, blank=True)
    # The response returned for this attempt, replayed verbatim for a repeated client_order_id.
    response = models.JSONField(default=dict, blank=True)

    received_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    responded_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Accepted by finding the order at the broker after an attempt whose answer was lost: submitted_at
    # is the broker's, and broker_ms/overhead_ms are unknown (None).
    recovered = models.BooleanField(default=False)
    total_ms = models.FloatField(null=True, blank=True)
    broker_ms = models.FloatField(null=True, blank=True)
    overhead_ms = models.FloatField(null=True, blank=True)

    # The order's life at the broker, from its trade-updates events (trading.ledger; docs/architecture.md).
    filled_qty = models.DecimalField(max_digits=20, decimal_places=9, default=0)
    filled_avg_price = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    first_fill_ms = models.FloatField(null=True, blank=True, help_text="From submission to the first fill.")
    last_fill_ms = models.FloatField(null=True, blank=True, help_text="From submission to the last fill.")

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "client_order_id"],
                condition=Q(is_current=True),
                name="order_record_current_client_order_id",
            )
        ]
        # Every index costs each order two writes (the pending row, then its outcome): the set is
        # what the API, the bot and the admin look up; no LIKE-pattern twins (admin search is icontains).
        indexes = [
            models.Index(fields=["-received_at"], name="order_record_recv"),
            models.Index(fields=["account", "-received_at"], name="order_record_account_recv"),
            models.Index(fields=["account_type", "-received_at"], name="order_record_type_recv"),
            models.Index(fields=["outcome", "-received_at"], name="order_record_outcome_recv"),
            models.Index(fields=["client_order_id"], name="order_record_client_id"),
            models.Index(fields=["broker_order_id"], name="order_record_broker_id"),
            models.Index(fields=["symbol"], name="order_record_symbol"),
            # Partial: only orders still open (few), so the desk's per-account open-order count and
            # reconcile's open_order_ids read a handful of entries instead of every record of the account.
            models.Index(fields=["account"], condition=OPEN_ORDER, name="order_record_open"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.side} {self.symbol} {self.client_order_id} {self.outcome}"

    @property
    def fingerprint(self) -> str:
        if self.intent_hash:
            return self.intent_hash
        legs = self.legs or {}
        return intent_fingerprint(symbol=self.symbol, side=self.side, type=self.order_type, time_in_force=self.time_in_force,
                                  qty=self.qty, notional=self.notional, limit_price=self.limit_price, stop_price=self.stop_price,
                                  asset_class=self.asset_class, extended_hours=self.extended_hours, order_class=self.order_class,
                                  take_profit_limit_price=_dec((legs.get("take_profit") or {}).get("limit_price")),
                                  stop_loss_stop_price=_dec((legs.get("stop_loss") or {}).get("stop_price")),
                                  stop_loss_limit_price=_dec((legs.get("stop_loss") or {}).get("limit_price")),
                                  trail_price=self.trail_price, trail_percent=self.trail_percent,
                                  replaces=self.replaces_order_id or None)


class OrderEvent(models.Model):
    """One event of an order's life at the broker (its trade-updates stream, or reconciliation over REST
    after a gap). Append-only; idempotent by ``dedupe_key``: the execution id of a fill, else
    ``order id:event:broker timestamp``."""

    account = models.ForeignKey("accounts.AlpacaAccount", on_delete=models.PROTECT, related_name="order_events", db_index=False)
    record = models.ForeignKey(OrderRecord, on_delete=models.PROTECT, related_name="events", null=True, blank=True)
    broker_order_id = models.CharField(max_length=64)
    client_order_id = models.CharField(max_length=128, blank=True)
    event = models.CharField(max_length=32)
    symbol = models.CharField(max_length=32, blank=True)
    side = models.CharField(max_length=8, blank=True)
    order_status = models.CharField(max_length=32, blank=True, help_text="The order's status after this event.")
    qty = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True, help_text="This execution's quantity.")
    price = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True, help_text="This execution's price.")
    position_qty = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True)
    order_filled_qty = models.DecimalField(max_digits=20, decimal_places=9, default=0, help_text="The order's cumulative fill.")
    execution_id = models.CharField(max_length=64, blank=True)
    broker_at = models.DateTimeField(help_text="The broker's timestamp (UTC, microseconds).")
    received_at = models.DateTimeField(help_text="When the gateway received it (UTC, microseconds).")
    reconciled = models.BooleanField(default=False, help_text="Recovered over REST after a gap in the stream.")
    dedupe_key = models.CharField(max_length=160, unique=True)

    class Meta:
        ordering = ["-broker_at"]
        indexes = [
            models.Index(fields=["account", "-broker_at"], name="order_event_account_at"),
            models.Index(fields=["broker_order_id", "broker_at"], name="order_event_order_at"),
            models.Index(fields=["event", "-broker_at"], name="order_event_event_at"),
            models.Index(fields=["-received_at"], name="order_event_recv"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.event} {self.symbol} {self.broker_order_id}"
