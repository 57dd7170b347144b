"""A from/to date range filter for admin changelists: ``list_filter = [("at", DateRangeFilter)]``."""
from __future__ import annotations

from django.contrib import admin


class DateRangeFilter(admin.FieldListFilter):
    """Two date inputs (UTC days, both inclusive) as ``<field>__date__gte`` / ``<field>__date__lte``."""

    template = "admin/date_range_filter.html"

    def __init__(self, field, request, params, model, model_admin, field_path):
        self.lookup_kwarg_since = f"{field_path}__date__gte"
        self.lookup_kwarg_until = f"{field_path}__date__lte"
        super().__init__(field, request, params, model, model_admin, field_path)

    def expected_parameters(self):
        return [self.lookup_kwarg_since, self.lookup_kwarg_until]

    def _current(self, name: str) -> str:
        value = self.used_parameters.get(name)
        if isinstance(value, list):
            value = value[-1] if value else ""
        return value or ""

    def choices(self, changelist):
        own = set(self.expected_parameters())
        hidden = [(name, value) for name, values in changelist.params.items() if name not in own
                  for value in (values if isinstance(values, list) else [values])]
        yield {
            "since_name": self.lookup_kwarg_since,
            "until_name": self.lookup_kwarg_until,
            "since": self._current(self.lookup_kwarg_since),
            "until": self._current(self.lookup_kwarg_until),
            "hidden": hidden,
            "active": bool(self.used_parameters),
            "reset_url": changelist.get_query_string(remove=self.expected_parameters()),
            "selected": bool(self.used_parameters),
        }
