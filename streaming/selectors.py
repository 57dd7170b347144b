"""What the hub streams besides what clients ask for."""
from __future__ import annotations

from sellbot.models import ManagedPosition, PositionStatus


def managed_option_symbols() -> set[str]:
    """The option symbols of the sell bot's open (or closing) managed positions."""
    from streaming.protocol import data_type

    symbols = ManagedPosition.objects.exclude(status=PositionStatus.CLOSED).values_list("symbol", flat=True).distinct()
    return {s for s in symbols if data_type(s) == "option"}
