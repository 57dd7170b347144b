"""Response shapes of the accounts API (documentation and serialization)."""
from rest_framework import serializers


class LastBalanceSerializer(serializers.Serializer):
    cash = serializers.DecimalField(max_digits=16, decimal_places=2)
    buying_power = serializers.DecimalField(max_digits=16, decimal_places=2)
    equity = serializers.DecimalField(max_digits=16, decimal_places=2)
    fetched_at = serializers.DateTimeField()
    age_seconds = serializers.FloatField()


class PoolAccountSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    enabled = serializers.BooleanField()
    type = serializers.ChoiceField(choices=["paper", "live"])
    type_source = serializers.ChoiceField(choices=["detected", "fallback", "unknown"])
    configured_type = serializers.ChoiceField(choices=["paper", "live"])
    type_mismatch = serializers.BooleanField()
    config_error = serializers.CharField(help_text="Why the account's secrets.yml entry is invalid (not tradable); empty when valid.")
    account_number = serializers.CharField()
    detected_at = serializers.DateTimeField(allow_null=True)
    detection_error = serializers.CharField()
    rate_limit_per_minute = serializers.IntegerField()
    requests_last_minute = serializers.IntegerField()
    errors_last_minute = serializers.IntegerField()
    avg_latency_ms = serializers.FloatField(allow_null=True)
    budget_remaining = serializers.IntegerField()
    last_balance = LastBalanceSerializer(allow_null=True)


class TypeTotalsSerializer(serializers.Serializer):
    paper = serializers.IntegerField()
    live = serializers.IntegerField()
    fallback = serializers.IntegerField()
    undetected = serializers.IntegerField()


class StateTotalsSerializer(serializers.Serializer):
    enabled = serializers.IntegerField()
    disabled = serializers.IntegerField()
    mismatch = serializers.IntegerField()


class PoolSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_type = TypeTotalsSerializer()
    by_state = StateTotalsSerializer()
    routing_strategy = serializers.CharField()
    budget_store = serializers.ChoiceField(choices=["shared", "process"])
    accounts = PoolAccountSerializer(many=True)
