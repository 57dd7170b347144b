"""What the order pipeline returns: domain values, no HTTP (docs/architecture.md, "The order pipeline").

The HTTP status and headers of a refusal are the edge's business (``trading/errors.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from accounts.broker import BrokerOrder

from .models import OrderRecord, Outcome


@dataclass(frozen=True)
class Refusal:
    """Why an order was not accepted: a stable code, a sentence, and details for the client."""

    code: str
    message: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Placement:
    """One placement attempt's result.

    ``outcome`` is the record's (accepted, refused, rejected, failed); ``order`` is the broker's order when
    it was accepted in this call; ``refusal`` says why it was not. ``replayed``: the key was seen before,
    nothing was sent, and ``body`` is the stored answer (marked replayed). ``body`` is the answer as
    stored on the record (``OrderRecord.response``), rendered by the view.
    """

    outcome: str
    record: OrderRecord
    body: dict
    order: BrokerOrder | None = None
    refusal: Refusal | None = None
    replayed: bool = False

    @property
    def accepted(self) -> bool:
        return self.outcome == Outcome.ACCEPTED
