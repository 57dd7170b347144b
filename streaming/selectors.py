"""What the hub streams besides what clients ask for."""
from __future__ import annotations

from opitios.config import current_config
from sellbot.models import ManagedPosition, PositionStatus
from sellbot.strategy import exit_bounds


def managed_option_symbols() -> set[str]:
    """The option symbols of the sell bot's open (or closing) managed positions."""
    from streaming.protocol import data_type

    symbols = ManagedPosition.objects.exclude(status=PositionStatus.CLOSED).values_list("symbol", flat=True).distinct()
    return {s for s in symbols if data_type(s) == "option"}


def managed_exit_bounds() -> dict[str, tuple[float, float]]:
    """Per managed option symbol, the bid bounds outside which a tick may fire an exit of one of its open,
    opted-in positions (``sellbot.strategy.exit_bounds``): the highest low and the lowest high."""
    config = current_config().sell_module
    out: dict[str, tuple[float, float]] = {}
    rows = ManagedPosition.objects.filter(status=PositionStatus.OPEN, opted_in=True).values_list("symbol", "entry_price", "high_water_mark")
    for symbol, entry, hwm in rows:
        bounds = exit_bounds(entry, hwm, config)
        if bounds is None:
            continue
        low, high = float(bounds[0]), float(bounds[1])
        if symbol in out:
            low, high = max(low, out[symbol][0]), min(high, out[symbol][1])
        out[symbol] = (low, high)
    return out
