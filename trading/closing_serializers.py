"""Shapes of cancel-all, close-position and flatten (docs/api.md, "Order management")."""
from __future__ import annotations

from rest_framework import serializers

from opitios.serializers import ErrorDetailSerializer

from .fields import StrictDecimalField
from .serializers import QTY
from .serializers_out import AccountRefSerializer, PlacedOrderSerializer


class ClosePositionQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(required=False, max_length=64)
    qty = StrictDecimalField(required=False, min_value=0, **QTY)
    percentage = StrictDecimalField(required=False, min_value=0, max_value=100, max_digits=12, decimal_places=9, coerce_to_string=True)

    def validate(self, attrs):
        if attrs.get("qty") is not None and attrs.get("percentage") is not None:
            raise serializers.ValidationError({"qty": ["Give qty or percentage, not both."]})
        for name in ("qty", "percentage"):
            if attrs.get(name) is not None and attrs[name] <= 0:
                raise serializers.ValidationError({name: [f"{name} must be greater than 0."]})
        return attrs


class FlattenInSerializer(serializers.Serializer):
    account_ids = serializers.ListField(child=serializers.CharField(max_length=64), required=False, min_length=1, max_length=5000)
    all = serializers.BooleanField(required=False, default=False, help_text="Every enabled account.")
    reason = serializers.CharField(max_length=400, allow_blank=False, trim_whitespace=True)
    flatten_id = serializers.RegexField(r"^[A-Za-z0-9_-]{1,48}$", required=False,
                                        help_text="The flatten_id of an earlier answer, to retry it (its closes replay, never repeat).")

    def validate(self, attrs):
        if bool(attrs.get("account_ids")) == bool(attrs.get("all")):
            raise serializers.ValidationError({"account_ids": ['Give account_ids or "all": true (one of them).']})
        return attrs


class CancelItemSerializer(serializers.Serializer):
    order_id = serializers.CharField()
    client_order_id = serializers.CharField(allow_null=True)
    symbol = serializers.CharField()
    side = serializers.CharField()
    status = serializers.ChoiceField(choices=["pending_cancel", "failed"])
    status_code = serializers.IntegerField()
    error = ErrorDetailSerializer(required=False)

    class Meta:
        omit_none = ("error",)


class CancelSummarySerializer(serializers.Serializer):
    orders = serializers.IntegerField()
    canceled = serializers.IntegerField()
    failed = serializers.IntegerField()


class CancelAllSerializer(serializers.Serializer):
    account = AccountRefSerializer()
    results = CancelItemSerializer(many=True)
    summary = CancelSummarySerializer()


class CloseItemSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    status_code = serializers.IntegerField()
    order = PlacedOrderSerializer(required=False)
    error = ErrorDetailSerializer(required=False)

    class Meta:
        omit_none = ("order", "error")


class CloseSummarySerializer(serializers.Serializer):
    positions = serializers.IntegerField()
    closing = serializers.IntegerField()
    failed = serializers.IntegerField()


class CloseAllSerializer(serializers.Serializer):
    account = AccountRefSerializer()
    results = CloseItemSerializer(many=True)
    summary = CloseSummarySerializer()


class FlattenAccountSerializer(serializers.Serializer):
    account_id = serializers.CharField()
    status = serializers.ChoiceField(choices=["completed", "incomplete", "failed"])
    cancels = CancelAllSerializer(required=False)
    closes = CloseAllSerializer(required=False)
    error = ErrorDetailSerializer(required=False)

    class Meta:
        omit_none = ("cancels", "closes", "error")


class FlattenSummarySerializer(serializers.Serializer):
    accounts = serializers.IntegerField()
    completed = serializers.IntegerField()
    incomplete = serializers.IntegerField()
    failed = serializers.IntegerField()


class FlattenSerializer(serializers.Serializer):
    flatten_id = serializers.CharField(help_text="Send it back to retry this flatten safely.")
    results = FlattenAccountSerializer(many=True)
    summary = FlattenSummarySerializer()
