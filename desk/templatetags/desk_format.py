"""Desk-only formatting on top of the console's (``console_format``): rates, signed P&L and its colour."""
import datetime as dt

from django import template

from opitios import admin_format

register = template.Library()


@register.filter
def rate(value) -> str:
    """A share in percent: ``12.5 %``; the em dash when there is nothing to divide."""
    return admin_format.EMPTY if value is None else f"{float(value):.1f} %"


@register.filter
def pl(value) -> str:
    """Signed money: ``+$12.00``, ``−$3.00``, ``$0.00``."""
    text = admin_format.money(value)
    amount = admin_format._decimal(value)
    return f"+{text}" if amount is not None and amount > 0 else text


@register.filter
def pl_class(value) -> str:
    amount = admin_format._decimal(value)
    if amount is None or amount == 0:
        return ""
    return "console-ok" if amount > 0 else "console-bad"


@register.filter
def elapsed(start, end) -> str:
    """``{{ start|elapsed:end }}``: the time between two steps at a readable scale: ``+850 µs``, ``+12.345 ms``,
    ``+1.234 s``, ``+4 min 05 s``, ``+2 h 03 min``, ``+1 d 02 h``."""
    if not isinstance(start, dt.datetime) or not isinstance(end, dt.datetime):
        return admin_format.EMPTY
    seconds = (end - start).total_seconds()
    if seconds < 1:
        return admin_format.duration_between(start, end) if seconds >= 0 else f"−{admin_format.duration_between(end, start)[1:]}"
    if seconds < 60:
        return f"+{seconds:.3f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"+{days} d {hours:02d} h"
    return f"+{hours} h {minutes:02d} min" if hours else f"+{minutes} min {secs:02d} s"
