"""How the console shows values: UTC times to the millisecond (microseconds in detail views), money with its
sign, prices at Alpaca's tick size, quantities without trailing zeros, latencies in ms, human labels.

Every admin takes ``ConsoleFormatMixin``; templates use the same functions through the ``console_format``
filters (audit/templatetags/console_format.py). Exports keep the raw stored values.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.html import format_html

EMPTY = "—"
CURRENCY_SIGNS = {"USD": "$"}

# Labels Django would otherwise derive from the field name ("Pl pct", "Http status").
LABELS = {
    "received_at": "received (UTC)", "submitted_at": "submitted (UTC)", "responded_at": "responded (UTC)",
    "completed_at": "completed (UTC)", "at": "time (UTC)", "ran_at": "ran at (UTC)", "fetched_at": "fetched at (UTC)",
    "changed_at": "changed at (UTC)", "decided_at": "decided at (UTC)", "created_at": "created (UTC)",
    "updated_at": "updated (UTC)", "detected_at": "detected at (UTC)", "opened_at": "opened (UTC)",
    "heartbeat_at": "heartbeat (UTC)", "account_type": "account type", "order_type": "order type",
    "http_status": "HTTP status", "pl_pct": "P&L %", "qty": "qty", "filled_qty": "filled qty",
    "total_ms": "total ms", "broker_ms": "broker ms", "overhead_ms": "overhead ms", "last_broker_ms": "last broker ms",
    "duration_ms": "duration ms", "last_sweep_duration_ms": "last sweep ms", "age_seconds": "age (s)",
    "limit_minutes": "limit (min)", "broker_order_id": "broker order id", "client_order_id": "client order id",
    "order_id": "broker order id", "user_id": "user id", "actor_id": "actor id", "object_id": "object id",
    "seq": "seq", "since_seq": "from seq", "last_seq": "last seq", "first_broken_seq": "first broken seq",
    "filled_avg_price": "avg fill price", "high_water_mark": "high-water mark", "ok": "OK",
    "account_number": "account number", "buying_power": "buying power", "limit_price": "limit price",
    "stop_price": "stop price", "entry_price": "entry price", "last_price": "last price",
}


# Booleans where False is the alarm (a broken chain): these keep Django's ✓/✗ icons.
ICON_BOOLEANS = frozenset({"ok"})


def utc_ms(value: dt.datetime | None) -> str:
    """``2026-11-29 06:56:12.345 UTC``"""
    if value is None:
        return EMPTY
    value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M:%S}.{value.microsecond // 1000:03d} UTC"


def utc_us(value: dt.datetime | None) -> str:
    """``2026-11-29 06:56:12.345678 UTC``"""
    if value is None:
        return EMPTY
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S.%f} UTC"


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None


def _signed(amount: Decimal, places: int, currency: str) -> str:
    sign = CURRENCY_SIGNS.get(currency)
    text = f"{abs(amount):,.{places}f}"
    text = f"{sign}{text}" if sign else f"{text} {currency}"
    return f"−{text}" if amount < 0 else text


def money(value, currency: str = "USD") -> str:
    """An amount (cash, equity, notional): ``$12,345.60``, ``−$3.00``."""
    amount = _decimal(value)
    return EMPTY if amount is None else _signed(amount, 2, currency)


def price(value, currency: str = "USD") -> str:
    """A price at Alpaca's tick size: 2 decimals from $1, 4 below (``$184.95``, ``$0.0412``)."""
    amount = _decimal(value)
    if amount is None:
        return EMPTY
    return _signed(amount, 2 if abs(amount) >= 1 else 4, currency)


def quantity(value) -> str:
    """``1``, ``0.5``, ``1,250`` — never ``1.000000000``."""
    amount = _decimal(value)
    if amount is None:
        return EMPTY
    text = f"{amount:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(value) -> str:
    amount = _decimal(value)
    return EMPTY if amount is None else f"{amount:+.2f} %"


def yes_no(value) -> str:
    """Booleans as words: Django's red ✗ for False reads as an alarm on fields where False is normal."""
    return EMPTY if value is None else ("yes" if value else "no")


def millis(value, places: int = 1) -> str:
    """A latency in ms: ``12.3``."""
    if value is None:
        return EMPTY
    return f"{float(value):,.{places}f}"


def duration_between(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """``+12.345 ms`` (µs precision) between two timestamps; the em dash when either is missing."""
    if start is None or end is None:
        return EMPTY
    micros = (end - start) // dt.timedelta(microseconds=1)
    return f"+{micros / 1000:,.3f} ms" if micros >= 1000 else f"+{micros} µs"


def pretty_json(value):
    return format_html('<pre class="console-json">{}</pre>',
                       json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def label(name: str, field: models.Field | None = None) -> str:
    if name in LABELS:
        return LABELS[name]
    return str(field.verbose_name) if field is not None else name.replace("_", " ")


def formatter_for(field: models.Field, *, precise: bool = False):
    """The display function for a model field, or None when Django's own rendering is right."""
    name = field.name
    if isinstance(field, models.DateTimeField):
        return utc_us if precise else utc_ms
    if isinstance(field, models.BooleanField):
        return None if name in ICON_BOOLEANS else yes_no
    if isinstance(field, models.DecimalField):
        if "qty" in name:
            return quantity
        if name.endswith("pct"):
            return percent
        if "price" in name or name == "high_water_mark":
            return price
        return money if field.decimal_places == 2 else quantity
    if isinstance(field, models.FloatField) and name.endswith("_ms"):
        return millis
    return None


class ConsoleFormatMixin:
    """Formats every model-field column of ``list_display`` and every read-only field of the detail view
    with ``formatter_for``, and labels them with ``LABELS``; sorting on those columns still works."""

    def _console_column(self, name, *, precise: bool):
        if not isinstance(name, str):
            return name
        cache = self.__dict__.setdefault("_console_columns", {})
        key = (name, precise)
        if key not in cache:
            cache[key] = self._make_console_column(name, precise=precise)
        return cache[key]

    def _make_console_column(self, name: str, *, precise: bool):
        try:
            field = self.model._meta.get_field(name)
        except FieldDoesNotExist:
            return name
        if field.is_relation or not field.concrete:
            return name
        show = formatter_for(field, precise=precise)
        if show is None and name not in LABELS:
            return name

        def column(obj):
            value = getattr(obj, name)
            if show is not None:
                return show(value)
            if column.boolean:
                return value
            if value is None or value == "":
                return EMPTY
            return obj._get_FIELD_display(field) if field.choices else value

        column.__name__ = f"{name}_console"
        column.short_description = label(name, field)
        column.admin_order_field = name
        column.boolean = show is None and isinstance(field, models.BooleanField)
        return column

    def get_list_display(self, request):
        return [self._console_column(item, precise=False) for item in super().get_list_display(request)]

    def get_list_display_links(self, request, list_display):
        links = super().get_list_display_links(request, list_display)
        return [self._console_column(item, precise=False) for item in links] if links else links

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        everything = not self.has_change_permission(request, obj)
        readonly = set(super().get_readonly_fields(request, obj))

        def swap(items):
            return [type(item)(swap(item)) if isinstance(item, (list, tuple))
                    else self._console_column(item, precise=True) if everything or item in readonly else item
                    for item in items]

        return [(title, {**options, "fields": swap(options["fields"])}) for title, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        return fields if obj is None else [self._console_column(item, precise=True) for item in fields]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if kwargs.get("fields") is not None:  # the formatted read-only columns are not form fields
            kwargs["fields"] = [item for item in kwargs["fields"] if isinstance(item, str)]
        return super().get_form(request, obj, change, **kwargs)
