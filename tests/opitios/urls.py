"""The project's URLs plus views that fail in each way the error handler must shape (test_errors.py)."""
from django.db import IntegrityError, OperationalError
from django.urls import include, path
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from opitios.errors import ApplicationError

LEAKY = "secret_key=Xq7vB2nM9kL4pR8sT1wY6zA3cD5eF0gH2jK4mN6p"


class EchoSerializer(serializers.Serializer):
    qty = serializers.IntegerField(min_value=1)


class Echo(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # the project denies by default

    def post(self, request):
        data = EchoSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(data.validated_data)


class AlwaysThrottled(BaseThrottle):
    def allow_request(self, request, view):
        return False

    def wait(self):
        return 7.2


class Throttled(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # the project denies by default
    throttle_classes = [AlwaysThrottled]

    def get(self, request):
        return Response({})


class Failing(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]  # the project denies by default
    failures = {
        "database": lambda: OperationalError("connection to server at 127.0.0.1 failed"),
        "integrity": lambda: IntegrityError("duplicate key"),
        "bug": lambda: RuntimeError(f"unexpected state {LEAKY}"),
        "application": lambda: ApplicationError(
            "insufficient_balance", "Balance below the minimum.", details={"minimum": "5000"}, headers={"X-Why": "rule"}
        ),
    }

    def get(self, request, kind):
        raise self.failures[kind]()


def plain_django_bug(request):
    """Not a DRF view: the error reaches Django's handler500."""
    raise RuntimeError(f"unexpected state {LEAKY}")


urlpatterns = [
    path("api/v1/test/plain-bug", plain_django_bug),
    path("outside/plain-bug", plain_django_bug),
    path("api/v1/test/echo", Echo.as_view()),
    path("api/v1/test/throttled", Throttled.as_view()),
    path("api/v1/test/fail/<str:kind>", Failing.as_view()),
    path("", include("opitios.urls")),
]
handler400 = "opitios.errors.bad_request"
handler403 = "opitios.errors.permission_denied"
handler500 = "opitios.errors.server_error"
