"""One request reads the configuration file once (opitios/config.py, config_per_request; RequestTimingMiddleware
opens it): later calls in that request return the same configuration; the next request sees an edit."""
import os
from decimal import Decimal

import pytest
from django.test import RequestFactory

from opitios import config as config_module
from opitios.config import config_per_request, current_config
from opitios.request_timing import RequestTimingMiddleware


def _edit(path, minimum_balance: int) -> None:
    """Rewrite the file with a stamp of its own: two writes within one clock tick may share an mtime."""
    path.write_text(f"trading:\n  minimum_balance: {minimum_balance}\n")
    os.utime(path, ns=(minimum_balance, minimum_balance))


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yml"
    path.write_text("trading:\n  minimum_balance: 100\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    monkeypatch.setattr(config_module, "_cache", {})
    return path


def test_within_a_request_the_first_read_holds_and_the_next_request_sees_the_edit(config_file):
    with config_per_request():
        first = current_config()
        _edit(config_file, 250)
        assert current_config() is first
    assert current_config().trading.minimum_balance == Decimal("250")


def test_outside_a_request_every_call_checks_the_file(config_file):
    assert current_config().trading.minimum_balance == Decimal("100")
    _edit(config_file, 300)
    assert current_config().trading.minimum_balance == Decimal("300")


def test_the_middleware_scopes_the_read_to_its_request(config_file):
    seen = []

    def view(request):
        seen.append(current_config())
        _edit(config_file, 400)
        seen.append(current_config())
        from django.http import HttpResponse
        return HttpResponse("ok")

    middleware = RequestTimingMiddleware(view)
    assert middleware(RequestFactory().get("/x")).status_code == 200
    assert seen[0] is seen[1] and seen[0].trading.minimum_balance == Decimal("100")
    middleware(RequestFactory().get("/x"))
    assert seen[2].trading.minimum_balance == Decimal("400")
