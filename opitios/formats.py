"""How values appear in JSON the project writes (API bodies, cached snapshots, log lines)."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal


def iso(dt: datetime | None, timespec: str = "microseconds") -> str | None:
    """An aware datetime as UTC ISO 8601 with microseconds (or ``timespec``) and ``Z`` (``2026-01-02T03:04:05.678901Z``)."""
    return None if dt is None else dt.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def num(value: Decimal | int | None) -> str | None:
    """A decimal as its exact string (amounts and quantities are never floats in JSON)."""
    return None if value is None else str(value)
