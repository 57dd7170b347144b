"""Desk-only formatting on top of the console's (``console_format``): rates, signed P&L and its colour."""
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
