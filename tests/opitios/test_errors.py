"""Every error has one shape: {"error": {"code", "message", "details"}}."""
import logging

import pytest
from django.test import Client

from opitios.auth import issue_token
from tests.opitios.urls import LEAKY

pytestmark = pytest.mark.urls("tests.opitios.urls")


def error_of(response, status):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]


def test_malformed_json_is_400(client):
    response = client.post("/api/v1/test/echo", data="{not json", content_type="application/json")
    assert error_of(response, 400)["code"] == "malformed_request"


def test_invalid_fields_are_400_with_field_details(client):
    response = client.post("/api/v1/test/echo", data={"qty": 0}, content_type="application/json")
    error = error_of(response, 400)
    assert error["code"] == "invalid_request"
    assert "qty" in error["details"]["fields"]


def test_unsupported_media_type_is_415(client):
    response = client.post("/api/v1/test/echo", data="qty=1", content_type="application/x-www-form-urlencoded")
    assert error_of(response, 415)["code"] == "unsupported_media_type"


def test_missing_token_is_401_with_a_challenge(client):
    response = client.get("/api/v1/health/detailed")
    assert error_of(response, 401)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoieCJ9."])
def test_bad_token_is_401(client, header):
    response = client.get("/api/v1/health/detailed", HTTP_AUTHORIZATION=header)
    assert error_of(response, 401)["code"] == "invalid_token"


def test_missing_permission_is_403(client):
    token = issue_token(user_id="trader", permissions=["market_data", "trading"])
    response = client.get("/api/v1/health/detailed", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert error_of(response, 403)["code"] == "permission_denied"


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/health", "/api/"])
def test_unknown_api_route_is_json_404(client, path):
    error = error_of(client.get(path), 404)
    assert error["code"] == "not_found"
    assert path in error["message"]


def test_wrong_method_is_405(client):
    response = client.post("/api/v1/health", data={}, content_type="application/json")
    assert error_of(response, 405)["code"] == "method_not_allowed"


def test_throttled_is_429_with_retry_after(client):
    response = client.get("/api/v1/test/throttled")
    error = error_of(response, 429)
    assert error["code"] == "rate_limited"
    assert response["Retry-After"] == "8"
    assert error["details"] == {"retry_after_seconds": 8}


def test_application_error_keeps_its_code_status_details_and_headers(client):
    response = client.get("/api/v1/test/fail/application")
    error = error_of(response, 422)
    assert error == {"code": "insufficient_balance", "message": "Balance below the minimum.", "details": {"minimum": "5000"}}
    assert response["X-Why"] == "rule"


def test_database_outage_is_503(client, caplog):
    with caplog.at_level(logging.ERROR, logger="opitios.errors"):
        response = client.get("/api/v1/test/fail/database")
    assert error_of(response, 503)["code"] == "database_unavailable"
    assert response["Retry-After"] == "5"
    assert "database unavailable" in caplog.text


@pytest.mark.parametrize("kind", ["bug", "integrity"])
def test_a_bug_is_a_json_500_without_a_traceback(client, kind, caplog, settings):
    settings.DEBUG = True  # even in debug, an API error never carries a traceback
    with caplog.at_level(logging.ERROR, logger="opitios.errors"):
        response = client.get(f"/api/v1/test/fail/{kind}")
    error = error_of(response, 500)
    assert error["code"] == "internal_error"
    text = response.content.decode()
    assert "Traceback" not in text and "Error" not in text and LEAKY not in text
    assert "unhandled error in GET" in caplog.text  # logged, with its traceback, for the operators


def test_a_bug_outside_drf_under_api_is_a_json_500():
    response = Client(raise_request_exception=False).get("/api/v1/test/plain-bug")
    assert error_of(response, 500)["code"] == "internal_error"
    assert LEAKY not in response.content.decode()


def test_a_bug_outside_the_api_is_django_plain_500():
    response = Client(raise_request_exception=False).get("/outside/plain-bug")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert "Traceback" not in response.content.decode() and LEAKY not in response.content.decode()
