"""The console's formatting (opitios.admin_format) as template filters: ``{% load console_format %}``."""
from django import template

from opitios import admin_format

register = template.Library()

for _name in ("utc_ms", "utc_us", "money", "price", "quantity", "percent", "millis"):
    register.filter(_name, getattr(admin_format, _name))


@register.filter
def since(start, end):
    """``{{ start|since:end }}``: ``+12.345 ms`` or ``+850 µs``."""
    return admin_format.duration_between(start, end)
