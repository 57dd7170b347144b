"""Schemathesis against our own /api/v1/schema: zero 5xx and zero schema violations in a
bounded run, with an admin token (own account account_001) and alpacasim behind the API."""
import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from tests.helpers.sim import sim, sim_server  # noqa: F401 - fixtures

from .conftest import token
from .test_api_sim import live  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def keep_test_connection():
    """Raw WSGI calls fire request_finished, which would close the test transaction's connection
    (Django's test client disconnects the same handler)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def test_schema_fuzz(live, keep_test_connection):  # noqa: F811
    headers = {"Authorization": f"Bearer {token(user_id='fuzz', permissions=('admin',), account_id='account_001')}"}
    schema = schemathesis.from_wsgi("/api/v1/schema?format=json", get_wsgi_application())
    failures, statuses = [], []
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len([op for op in operations if op.path.startswith("/api/v1/")]) >= 15
    for operation in operations:
        if operation.path in ("/api/v1/health/detailed", "/api/v1/docs", "/api/v1/schema"):
            continue  # health pings workers with timeouts; docs and schema are not JSON APIs

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), derandomize=True)
        def run(case):
            response = case.call_wsgi(headers=headers)
            statuses.append(response.status_code)
            try:
                case.validate_response(response, checks=(not_a_server_error, status_code_conformance, response_schema_conformance))
            except AssertionError as exc:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {str(exc)[:400]}")

        run()
    assert failures == [], "\n".join(dict.fromkeys(failures))
    assert len(statuses) > 200 and {200, 201} & set(statuses) and 400 in statuses
    assert not [s for s in statuses if s >= 500 and s not in (502, 503, 504)]
