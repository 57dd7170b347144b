"""JWT attacks: each gives 401 invalid_token with WWW-Authenticate; and issue_token."""
import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command
from rest_framework_simplejwt.settings import api_settings

from .conftest import client_for, token

pytestmark = pytest.mark.django_db


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(**over):
    return {"user_id": "u1", "account_id": "account_001", "permissions": ["admin"], "exp": int(time.time()) + 600, **over}


def _assert_401(client):
    r = client.get("/api/v1/account")
    assert r.status_code == 401, r.content
    assert r.json()["error"]["code"] == "invalid_token"
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert "Given token" in r.json()["error"]["message"] or r.json()["error"]["message"]


def test_valid_token_passes(trader):
    assert trader.get("/api/v1/account").status_code == 200


def test_alg_none(trader):
    tok = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    _assert_401(client_for(tok))


def test_wrong_algorithm(trader):
    _assert_401(client_for(jwt.encode(_claims(), api_settings.SIGNING_KEY, algorithm="HS512")))


def test_bad_signature(trader):
    _assert_401(client_for(jwt.encode(_claims(), "another-secret-of-at-least-32-characters!", algorithm="HS256")))


def test_expired(trader):
    _assert_401(client_for(jwt.encode(_claims(exp=int(time.time()) - 60), api_settings.SIGNING_KEY, algorithm="HS256")))


def test_missing_exp(trader):
    claims = _claims()
    del claims["exp"]
    _assert_401(client_for(jwt.encode(claims, api_settings.SIGNING_KEY, algorithm="HS256")))


def test_missing_user_id(trader):
    claims = _claims()
    del claims["user_id"]
    _assert_401(client_for(jwt.encode(claims, api_settings.SIGNING_KEY, algorithm="HS256")))


def test_garbage_token(trader):
    _assert_401(client_for("not.a.jwt"))


def test_hs_rs_confusion(trader, settings):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    settings.SIMPLE_JWT = {**settings.SIMPLE_JWT, "ALGORITHM": "RS256", "SIGNING_KEY": private, "VERIFYING_KEY": public}
    assert client_for(token(permissions=["admin"])).get("/api/v1/account").status_code == 200  # RS256 works
    # an HS256 token "signed" with the public key as the HMAC secret
    forged = jwt.api_jws.PyJWS()
    forged._algorithms["HS256"].prepare_key = lambda k: k  # PyJWT refuses PEM HMAC keys; an attacker would not
    tok = forged.encode(json.dumps(_claims()).encode(), public.encode(), algorithm="HS256")
    _assert_401(client_for(tok))


def test_issue_token_command(capsys, demo_accounts):
    call_command("issue_token", "--user-id", "ops", "--account-id", "account_001", "--permissions", "account_access,trading", "--ttl", "60")
    tok = capsys.readouterr().out.strip()
    payload = jwt.decode(tok, api_settings.SIGNING_KEY, algorithms=["HS256"])
    assert payload["user_id"] == "ops" and payload["account_id"] == "account_001"
    assert payload["permissions"] == ["account_access", "trading"] and payload["exp"] - payload["iat"] == 60
    with pytest.raises(CommandError, match="unknown"):
        call_command("issue_token", "--user-id", "ops", "--permissions", "trading,root")
    with pytest.raises(CommandError):
        call_command("issue_token", "--user-id", "ops", "--permissions", "trading", "--ttl", "0")


def test_no_token_endpoint(client):
    for path in ("/api/v1/token", "/api/v1/auth/token", "/api/v1/token/obtain", "/api/v1/demo/token"):
        assert client.post(path).status_code == 404


def _signed(claims: dict) -> str:
    return jwt.encode(claims, api_settings.SIGNING_KEY, algorithm="HS256")


def _raw_signed(payload_json: str) -> str:
    """A token whose payload is written by hand (JSON that json.dumps would not produce, e.g. 1e400)."""
    return jwt.api_jws.PyJWS().encode(payload_json.encode(), api_settings.SIGNING_KEY, algorithm="HS256")


@pytest.mark.parametrize(
    "over",
    [
        {"exp": str(int(time.time()) + 600)}, {"exp": "soon"}, {"exp": 1e30}, {"exp": 1e308}, {"exp": 10**30}, {"exp": True},
        {"exp": float(int(time.time()) + 600)}, {"exp": None}, {"exp": [1]}, {"iat": 1e308}, {"nbf": "0"},
        {"user_id": None}, {"user_id": ""}, {"user_id": {}}, {"user_id": 7}, {"user_id": "a\x00b"}, {"user_id": "a\nb"},
        {"user_id": "a\u200bb"}, {"user_id": "u" * 129},
        {"permissions": "admin,trading"}, {"permissions": "admin"}, {"permissions": ["admin", "root"]}, {"permissions": [["admin"]]},
        {"permissions": {"admin": True}}, {"permissions": None},
        {"account_id": 1}, {"account_id": ["account_001"]}, {"account_id": "account 001"},
    ],
    ids=repr,
)
def test_mistyped_claims_are_a_401(trader, over):
    _assert_401(client_for(_signed(_claims(**over))))


@pytest.mark.parametrize("exp", ["1e400", "-1e400", "1" * 400])
def test_an_exp_beyond_any_float_is_a_401(trader, exp):
    _assert_401(client_for(_raw_signed(f'{{"user_id": "u1", "account_id": "account_001", "permissions": ["admin"], "exp": {exp}}}')))


def test_a_comma_string_of_permissions_never_grants_admin(trader):
    tok = _signed({**_claims(permissions="admin,trading"), "account_id": "account_002"})
    r = client_for(tok).get("/api/v1/account?account_id=account_001")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


def test_well_typed_claims_pass(trader):
    ok = _claims(user_id="user-Ω_1", permissions=["account_access"], account_id="account_001")
    r = client_for(_signed(ok)).get("/api/v1/account")
    assert r.status_code == 200, r.json()
    del ok["permissions"]  # no permissions claim: authenticated, allowed nothing
    r = client_for(_signed(ok)).get("/api/v1/account")
    assert r.status_code == 403 and r.json()["error"]["code"] == "permission_denied"
