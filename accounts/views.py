from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import pool_statistics
from accounts.serializers import PoolSerializer
from opitios.permissions import IsAdmin
from opitios.serializers import ErrorResponseSerializer


class PoolView(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        operation_id="admin_pool",
        summary="Broker pool statistics (admin)",
        description="Accounts by type (paper, live, fallback) and state (enabled, disabled, mismatch); per account its "
        "type and type source, upstream requests and errors in the last minute, average upstream latency, remaining "
        "budget and last balance with its age. Credentials are never included.",
        tags=["admin"],
        responses={
            200: PoolSerializer,
            401: OpenApiResponse(ErrorResponseSerializer, description="Missing or invalid token (`invalid_token`, `not_authenticated`)."),
            403: OpenApiResponse(ErrorResponseSerializer, description="The token lacks the `admin` permission (`permission_denied`)."),
            503: OpenApiResponse(ErrorResponseSerializer, description="The database is unavailable (`database_unavailable`)."),
        },
    )
    def get(self, request):
        return Response(PoolSerializer(pool_statistics()).data)
