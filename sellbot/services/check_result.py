"""What one account check did (``AccountCheck``), and the bot's persistent counters."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import F

from ..models import SellCounter


@dataclass
class AccountCheck:
    account_pk: int
    skipped: str = ""
    cancellations: list[int] = field(default_factory=list)  # SellCancellation pks to dispatch
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, n: int = 1) -> None:
        self.counts[key] = self.counts.get(key, 0) + n


def counter_add(*, name: str, n: int = 1) -> None:
    if not SellCounter.objects.filter(name=name).update(value=F("value") + n):
        SellCounter.objects.get_or_create(name=name)
        SellCounter.objects.filter(name=name).update(value=F("value") + n)
