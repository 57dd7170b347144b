"""Sell-bot control and status API (docs/api.md, "Sell bot"), admin only."""
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from opitios.auth import token_claims
from opitios.errors import ApplicationError
from opitios.permissions import IsAdmin

from . import selectors, services, workers

_ERRORS = {
    400: OpenApiResponse(description="Malformed input (`malformed_request`, `validation_error`)."),
    401: OpenApiResponse(description="Missing or bad token (`invalid_token`, `not_authenticated`)."),
    403: OpenApiResponse(description="The token lacks the `admin` permission (`permission_denied`)."),
}


class ControlIn(serializers.Serializer):
    action = serializers.ChoiceField(choices=["start", "stop", "restart"])


class LastSweepOut(serializers.Serializer):
    id = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.FloatField(allow_null=True)
    counts = serializers.DictField()
    worker = serializers.CharField()


class StatusOut(serializers.Serializer):
    enabled = serializers.BooleanField()
    running = serializers.BooleanField(help_text="Enabled, sweeping, and the heartbeat is fresh (within 3 x check_interval).")
    status = serializers.ChoiceField(choices=["running", "starting", "stopped", "stalled"])
    healthy = serializers.BooleanField()
    status_reason = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    changed_by = serializers.CharField()
    heartbeat_at = serializers.DateTimeField(allow_null=True)
    check_interval_seconds = serializers.FloatField()
    last_sweep = LastSweepOut()
    positions = serializers.DictField(child=serializers.IntegerField(), help_text="Opted-in managed positions by status.")
    orders = serializers.DictField(child=serializers.IntegerField(), help_text="Exit orders placed, succeeded and failed.")
    cancellations = serializers.DictField(child=serializers.IntegerField(), help_text="Succeeded, failed and retrying.")
    price_fetch_failures = serializers.DictField(child=serializers.IntegerField(), help_text="By error code.")
    holds = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Evaluations that sold nothing, by reason: market_closed, no_price, hold (no rule met), trading_halted (the kill switch). "
        "Counted since the counters began.",
    )
    success_rates = serializers.DictField(help_text="orders and cancellations, over last_hour and last_24h: total, succeeded, rate.")
    workers = serializers.ListField(child=serializers.CharField(), allow_null=True, help_text="Celery workers answering a ping.")
    report_ms = serializers.FloatField()


class HealthOut(serializers.Serializer):
    status = serializers.ChoiceField(choices=["running", "starting", "stopped", "stalled"])
    healthy = serializers.BooleanField()
    enabled = serializers.BooleanField()
    reason = serializers.CharField()
    last_sweep_finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class SellStatusView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: StatusOut, **_ERRORS}, tags=["sell bot"], summary="Sell-bot state, last sweep and metrics (admin)")
    def get(self, request):
        return Response(StatusOut(selectors.bot_report(workers=workers.live_workers())).data)


class SellControlView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(request=ControlIn, responses={200: StatusOut, **_ERRORS}, tags=["sell bot"],
                   summary="Start, stop or restart the sell bot (admin, audited)")
    def post(self, request):
        body = ControlIn(data=request.data)
        if not body.is_valid():
            raise ApplicationError("validation_error", "action must be one of start, stop, restart.", details=body.errors)
        actor = str(token_claims(request).get("user_id") or "admin")
        services.bot_control(action=body.validated_data["action"], actor_id=actor)
        return Response(StatusOut(selectors.bot_report()).data)


class SellHealthView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={200: HealthOut, 503: HealthOut, **_ERRORS}, tags=["sell bot"],
                   summary="200 when the bot is healthy (running, starting, or stopped on purpose); 503 when enabled but stalled")
    def get(self, request):
        state = selectors.bot_state()
        status, healthy, why = selectors.bot_health(state=state)
        body = {"status": status, "healthy": healthy, "enabled": state.enabled, "reason": why,
                "last_sweep_finished_at": state.last_sweep_finished_at, "heartbeat_at": state.heartbeat_at}
        return Response(HealthOut(body).data, status=200 if healthy else 503)
