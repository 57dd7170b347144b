"""Alpaca accounts, their balance snapshots and their type changes."""
from django.db import models

from opitios.limits import RANGES


class AccountType(models.TextChoices):
    PAPER = "paper", "paper"
    LIVE = "live", "live"


class TypeSource(models.TextChoices):
    DETECTED = "detected", "detected"
    FALLBACK = "fallback", "fallback"
    UNKNOWN = "unknown", "not yet detected"


class AlpacaAccount(models.Model):
    account_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    tier = models.CharField(max_length=64, blank=True, db_index=True)
    enabled = models.BooleanField(default=True, db_index=True)
    paper_trading = models.BooleanField(default=True, help_text="As configured in secrets.yml (paper_trading).")

    # Fernet tokens (MultiFernet over OPITIOS_FERNET_KEYS); never returned, logged or shown.
    api_key_encrypted = models.TextField(editable=False)
    secret_key_encrypted = models.TextField(editable=False)

    account_number = models.CharField(max_length=64, blank=True)
    account_type = models.CharField(max_length=8, choices=AccountType.choices, default=AccountType.PAPER, db_index=True)
    type_source = models.CharField(max_length=8, choices=TypeSource.choices, default=TypeSource.UNKNOWN, db_index=True)
    detected_at = models.DateTimeField(null=True, blank=True)
    detection_error = models.CharField(max_length=300, blank=True)
    type_mismatch = models.BooleanField(default=False, db_index=True)

    # Validators from the range table secrets.yml is checked against, so the admin form and the
    # sync accept the same values and never write one the column cannot hold.
    minimum_balance = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, validators=RANGES["accounts.minimum_balance"].validators(),
        help_text="Overrides trading.minimum_balance when set.",
    )
    balance_check_enabled = models.BooleanField(null=True, blank=True, help_text="Overrides trading.balance_check_enabled when set.")
    rate_limit_per_minute = models.PositiveIntegerField(default=200, validators=RANGES["accounts.rate_limit_per_minute"].validators())
    max_connections = models.PositiveIntegerField(default=10, validators=RANGES["accounts.max_connections"].validators())

    # Set by the sync from secrets.yml. config_error: the account's entry is invalid, so the account
    # is not tradable until it is valid again. config_warning: settings of the entry were invalid and
    # dropped (their defaults apply); the account trades.
    config_error = models.TextField(blank=True, default="", editable=False)
    config_warning = models.TextField(blank=True, default="", editable=False)

    # The non-secret values of the last sync, so a re-sync applies what changed in the file
    # and keeps what was edited in the admin since (a three-way merge).
    synced_config = models.JSONField(default=dict, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ["account_id"]

    def __str__(self) -> str:
        return self.account_id

    @property
    def configured_paper(self) -> bool:
        return self.paper_trading

    @property
    def type_trusted(self) -> bool:
        """Its paper/live label can be relied on: detected, or a fallback of a paper-configured account
        (whose orders go to the paper endpoint). Never-detected and live fallback accounts are not."""
        if self.type_source == TypeSource.DETECTED:
            return True
        return self.type_source == TypeSource.FALLBACK and self.paper_trading

    @property
    def tradable(self) -> bool:
        return self.enabled and not self.config_error and not self.type_mismatch and self.type_trusted


class BalanceSnapshot(models.Model):
    account = models.ForeignKey(AlpacaAccount, on_delete=models.PROTECT, related_name="balance_snapshots")
    cash = models.DecimalField(max_digits=16, decimal_places=2)
    buying_power = models.DecimalField(max_digits=16, decimal_places=2)
    equity = models.DecimalField(max_digits=16, decimal_places=2)
    fetched_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-fetched_at"]
        indexes = [models.Index(fields=["account", "-fetched_at"])]

    def __str__(self) -> str:
        return f"{self.account_id} cash={self.cash} at {self.fetched_at:%Y-%m-%d %H:%M:%S}"


class AccountTypeChange(models.Model):
    account = models.ForeignKey(AlpacaAccount, on_delete=models.PROTECT, related_name="type_changes")
    old_type = models.CharField(max_length=8, choices=AccountType.choices)
    new_type = models.CharField(max_length=8, choices=AccountType.choices)
    old_account_number = models.CharField(max_length=64, blank=True)
    new_account_number = models.CharField(max_length=64, blank=True)
    changed_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.old_type} -> {self.new_type} at {self.changed_at:%Y-%m-%d %H:%M:%S}"
