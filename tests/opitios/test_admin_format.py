"""The console's value formatting (opitios.admin_format)."""
import datetime as dt
from decimal import Decimal

import pytest

from opitios import admin_format as fmt

MOMENT = dt.datetime(2026, 11, 29, 6, 56, 12, 345678, tzinfo=dt.UTC)


def test_times_are_utc_to_the_millisecond_or_microsecond():
    assert fmt.utc_ms(MOMENT) == "2026-11-29 06:56:12.345 UTC"
    assert fmt.utc_us(MOMENT) == "2026-11-29 06:56:12.345678 UTC"
    new_york = dt.timezone(dt.timedelta(hours=-5))
    assert fmt.utc_ms(MOMENT.astimezone(new_york)) == "2026-11-29 06:56:12.345 UTC"
    assert fmt.utc_ms(None) == fmt.utc_us(None) == "—"


@pytest.mark.parametrize(("show", "value", "text"), [
    (fmt.money, Decimal("12345.6"), "$12,345.60"),
    (fmt.money, Decimal("-3"), "−$3.00"),
    (fmt.money, None, "—"),
    (fmt.price, Decimal("184.947976"), "$184.95"),
    (fmt.price, Decimal("0.041234"), "$0.0412"),
    (fmt.quantity, Decimal("1.000000000"), "1"),
    (fmt.quantity, Decimal("0.500000000"), "0.5"),
    (fmt.quantity, Decimal("1250"), "1,250"),
    (fmt.quantity, Decimal("1E+1"), "10"),
    (fmt.percent, Decimal("-4.5"), "-4.50 %"),
    (fmt.millis, 12.345, "12.3"),
])
def test_numbers(show, value, text):
    assert show(value) == text


def test_money_in_another_currency_names_it():
    assert fmt.money(Decimal("5"), "EUR") == "5.00 EUR"


def test_durations_between_steps():
    assert fmt.duration_between(MOMENT, MOMENT + dt.timedelta(microseconds=850)) == "+850 µs"
    assert fmt.duration_between(MOMENT, MOMENT + dt.timedelta(milliseconds=12, microseconds=345)) == "+12.345 ms"
    assert fmt.duration_between(MOMENT, None) == "—"


def test_labels_replace_the_generated_ones():
    assert fmt.label("pl_pct") == "P&L %" and fmt.label("http_status") == "HTTP status"


def test_booleans_are_words_not_alarm_icons():
    assert (fmt.yes_no(True), fmt.yes_no(False), fmt.yes_no(None)) == ("yes", "no", "—")
