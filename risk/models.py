"""Trading states (the kill switch, docs/risk.md): one global row and at most one row per account.

The database is the truth: every process reads the rows through ``risk.states`` (a per-process copy
checked against a shared version counter), so a change survives restarts and reaches every web and
worker process within a second.
"""
from django.db import models


class State(models.TextChoices):
    ACTIVE = "active", "active"
    REDUCING = "reducing", "reducing"
    HALTED = "halted", "halted"


# How strict each state is: the effective state of an account is the stricter of global and its own.
STRICTNESS = {State.ACTIVE: 0, State.REDUCING: 1, State.HALTED: 2}
GLOBAL = "global"


class TradingState(models.Model):
    # "global", or "account:<account_id>"; unique, so a set is one upsert of one row.
    scope = models.CharField(max_length=80, unique=True, editable=False)
    account = models.OneToOneField("accounts.AlpacaAccount", null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="trading_state", editable=False)
    state = models.CharField(max_length=8, choices=State.choices, default=State.ACTIVE)
    reason = models.CharField(max_length=500, blank=True)
    changed_by = models.CharField(max_length=128, blank=True, editable=False)
    changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["scope"]

    def __str__(self) -> str:
        return f"{self.scope}: {self.state}"
