"""What the order pipeline returns (docs/architecture.md, "The order pipeline")."""
from __future__ import annotations

from dataclasses import dataclass, field

from .models import OrderRecord


@dataclass
class OrderResult:
    http_status: int
    body: dict
    record: OrderRecord | None = None
    headers: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.http_status < 400


@dataclass
class _Refusal:
    code: str
    message: str
    http_status: int
    details: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)


