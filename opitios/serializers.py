"""The error envelope every API error answers with (``opitios/errors.py``), for the OpenAPI schema."""
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable machine-readable code, e.g. insufficient_balance.")
    message = serializers.CharField(help_text="A human sentence.")
    details = serializers.DictField(help_text="Structured context: fields in error, account, checks, timing.")


class ErrorResponseSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()
