"""The one grammar of every money and quantity input (issue 12).

Python's ``Decimal`` (and so DRF's ``DecimalField``) also reads ``"1_0"`` as 10, Arabic-Indic and
fullwidth digits, exponents, signs, surrounding spaces, ``NaN`` and ``Infinity``. An order quantity
must mean exactly what it looks like, so only ASCII digits with at most one point are accepted, as a
JSON number or a string; the number of decimals is bounded by the field.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from rest_framework import serializers

DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
MAX_TEXT_LENGTH = 40


class StrictDecimalField(serializers.DecimalField):
    default_error_messages = {
        "invalid": "A number written with ASCII digits and at most one decimal point, as a JSON number or a string "
                   "(no sign, exponent, separator or spaces).",
    }

    def validate_empty_values(self, data):
        # DecimalField reads "" and "  " as null when null is allowed; here they are not numbers
        return serializers.Field.validate_empty_values(self, data)

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        if isinstance(data, float):
            # a JSON number: its shortest repr, written out without an exponent (1e-07 -> 0.0000001)
            try:
                text = format(Decimal(repr(data)), "f")
            except InvalidOperation:
                self.fail("invalid")
        else:
            text = str(data)
        if len(text) > MAX_TEXT_LENGTH or not DECIMAL_TEXT.fullmatch(text):
            self.fail("invalid")
        return super().to_internal_value(text)


class RoundedFloatField(serializers.FloatField):
    """An output float rounded to ``decimals`` places."""

    def __init__(self, *, decimals: int, **kwargs) -> None:
        self.decimals = decimals
        super().__init__(**kwargs)

    def to_representation(self, value):
        return round(float(value), self.decimals)


class CentsField(serializers.CharField):
    """An output amount to the cent, as a string (``"5000.00"``)."""

    def to_representation(self, value):
        return f"{value:.2f}"
