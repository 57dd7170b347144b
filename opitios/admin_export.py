"""Admin building blocks shared by every compliance model: read-only admins and streamed exports.

``ExportMixin`` adds "Export CSV" and "Export JSONL" to a changelist. The export holds exactly the
rows the changelist shows (its filters, search and ordering), read with ``values_list`` over a
chunked iterator (a server-side cursor on PostgreSQL), so a million rows never sit in memory.
Every export is recorded before it streams: ``record_export`` has no default, and the audit app's
``AuditedExportMixin`` records it as ``admin.exported``.

    @admin.register(OrderRecord)
    class OrderRecordAdmin(AuditedExportMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
        export_fields = ("id", "received_at", ("account", "account__account_id"), "outcome", "total_ms")
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal

from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone

EXPORT_FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ReadOnlyAdminMixin:
    """View-only for everyone, superusers included: no add, change, delete or bulk actions."""

    actions = None

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExportMixin:
    change_list_template = "admin/export_change_list.html"
    # Field paths ("account__account_id") or (header, field path) pairs; empty means every concrete field.
    export_fields: Sequence[str | tuple[str, str]] = ()
    export_chunk_size = 2000

    def get_export_columns(self) -> list[tuple[str, str]]:
        fields = self.export_fields or [f.attname for f in self.model._meta.concrete_fields]
        return [(item, item) if isinstance(item, str) else tuple(item) for item in fields]

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_export"
        return [path("export/<str:fmt>/", self.admin_site.admin_view(self.export_view), name=name), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        name = f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_export"
        query = request.GET.copy()
        query.pop("p", None)
        suffix = f"?{query.urlencode()}" if query else ""
        extra = {"export_links": [(label, reverse(name, args=[fmt]) + suffix) for fmt, label in (("csv", "Export CSV"), ("jsonl", "Export JSONL"))]}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def export_view(self, request, fmt: str):
        if fmt not in EXPORT_FORMATS:
            raise Http404("unknown export format")
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("invalid filter parameters")
        columns = self.get_export_columns()
        rows = changelist.queryset.values_list(*(field for _, field in columns)).iterator(chunk_size=self.export_chunk_size)
        headers = [header for header, _ in columns]
        self.record_export(request, fmt)
        body = _csv_lines(headers, rows) if fmt == "csv" else _jsonl_lines(headers, rows)
        response = StreamingHttpResponse(body, content_type=EXPORT_FORMATS[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="{self.opts.model_name}-{stamp}.{fmt}"'
        response["Cache-Control"] = "no-store"
        return response

    def record_export(self, request, fmt: str) -> None:
        """Record the export before it streams; an exception here stops it. No default: an export that
        is not recorded is not served."""
        raise NotImplementedError(f"{type(self).__name__} must record its exports (audit.admin_export.AuditedExportMixin)")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, str):
        # Spreadsheets run cells that start like a formula; client-supplied text must stay text.
        return f"'{value}" if value.startswith(_FORMULA_START) else value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_json_default)
    return str(value)


def _csv_lines(headers: list[str], rows: Iterator[tuple]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(headers)
    for row in rows:
        yield writer.writerow([_csv_cell(value) for value in row])


def _json_default(value):
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _jsonl_lines(headers: list[str], rows: Iterator[tuple]) -> Iterator[str]:
    for row in rows:
        yield json.dumps(dict(zip(headers, row, strict=True)), ensure_ascii=False, default=_json_default) + "\n"
