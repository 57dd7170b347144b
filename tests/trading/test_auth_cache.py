"""The per-process cache of verified tokens (opitios/auth.py, VerifiedTokens): a hit skips the signature check,
its expiry is checked at every use, it is bounded, and it never serves a token the current keys did not verify."""
from datetime import timedelta
from unittest import mock

import pytest
from rest_framework_simplejwt.backends import TokenBackend

from opitios import auth
from opitios.auth import VerifiedTokens, token_backend, verified_tokens

from .conftest import client_for, token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    verified_tokens.clear()
    yield
    verified_tokens.clear()


def _decodes():
    return mock.patch.object(TokenBackend, "decode", autospec=True, side_effect=TokenBackend.decode)


def test_a_second_request_with_the_same_token_is_not_decoded_again(config_file, demo_accounts, world):
    client = client_for(token())
    with _decodes() as decode:
        assert client.get("/api/v1/account").status_code == 200
        assert client.get("/api/v1/account").status_code == 200
    assert decode.call_count == 1
    assert len(verified_tokens) == 1


def test_a_cached_token_that_has_expired_since_is_a_401_and_leaves_the_cache(config_file, demo_accounts, world):
    tok = token(ttl=60)
    client = client_for(tok)
    assert client.get("/api/v1/account").status_code == 200
    later = auth.aware_utcnow() + timedelta(seconds=120)
    with mock.patch("opitios.auth.aware_utcnow", return_value=later), \
            mock.patch("rest_framework_simplejwt.tokens.aware_utcnow", return_value=later):
        r = client.get("/api/v1/account")
    assert r.status_code == 401, r.content
    assert r.json()["error"]["code"] == "invalid_token"
    assert tok.encode() not in verified_tokens._tokens


def test_a_rejected_token_is_not_cached(config_file, demo_accounts, world):
    assert client_for("not.a.jwt").get("/api/v1/account").status_code == 401
    assert len(verified_tokens) == 0


def test_new_keys_empty_the_cache_and_old_tokens_fail(config_file, demo_accounts, world, settings):
    tok = token()
    assert client_for(tok).get("/api/v1/account").status_code == 200
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "SIGNING_KEY": "another-secret-" * 4, "VERIFYING_KEY": ""}
    assert len(verified_tokens) == 0
    r = client_for(tok).get("/api/v1/account")
    assert r.status_code == 401, r.content


def test_a_token_verified_by_another_backend_is_not_served():
    cache = VerifiedTokens()
    backend = token_backend()
    other = TokenBackend(backend.algorithm, backend.signing_key, backend.verifying_key)
    tok = auth.ClaimsToken(token().encode())
    cache.put(b"raw", other, tok)
    assert cache.get(b"raw", backend) is None
    assert len(cache) == 0


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = VerifiedTokens(maxsize=2)
    backend = token_backend()
    tok = auth.ClaimsToken(token().encode())
    cache.put(b"a", backend, tok)
    cache.put(b"b", backend, tok)
    assert cache.get(b"a", backend) is tok  # a is now the most recently used
    cache.put(b"c", backend, tok)
    assert len(cache) == 2
    assert cache.get(b"b", backend) is None
    assert cache.get(b"a", backend) is tok and cache.get(b"c", backend) is tok
