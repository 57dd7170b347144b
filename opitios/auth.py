"""Stateless JWT auth over claims issued by an external provider.

Tokens carry ``user_id``, optional ``account_id``, ``permissions`` and ``exp``. No user table:
``request.user`` is simplejwt's ``TokenUser`` and ``request.auth`` the verified token.

The algorithm and keys come from ``settings.SIMPLE_JWT`` (built from the ``jwt`` section of
secrets.yml by ``JwtConfig.simple_jwt_settings``). Only the configured algorithm is accepted, so
``alg: none``, another algorithm and HS/RS confusion all fail signature verification (401).
"""
from __future__ import annotations

import threading
from datetime import timedelta

from django.core.signals import setting_changed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow, datetime_to_epoch

PERMISSIONS = ("market_data", "account_access", "trading", "bulk_trading", "admin")

_backend_lock = threading.Lock()
_backend: TokenBackend | None = None


def token_backend() -> TokenBackend:
    """The backend for the configured algorithm and keys (rebuilt when settings change in tests)."""
    global _backend
    if _backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = TokenBackend(
                    api_settings.ALGORITHM,
                    api_settings.SIGNING_KEY,
                    api_settings.VERIFYING_KEY,
                    leeway=api_settings.LEEWAY,
                )
    return _backend


def _reset_backend(*, setting, **kwargs) -> None:
    global _backend
    if setting == "SIMPLE_JWT":
        _backend = None


setting_changed.connect(_reset_backend)


class ClaimsToken(Token):
    token_type = "access"
    lifetime = timedelta(hours=1)

    def get_token_backend(self) -> TokenBackend:
        return token_backend()

    @property
    def token_backend(self) -> TokenBackend:  # simplejwt >= 5.3 reads this property
        return token_backend()


class ClaimsJWTAuthentication(JWTStatelessUserAuthentication):
    www_authenticate_realm = "opitios"


def token_claims(request) -> dict:
    token = getattr(request, "auth", None)
    return dict(token.payload) if token is not None else {}


def token_permissions(request) -> frozenset[str]:
    perms = token_claims(request).get("permissions") or []
    if isinstance(perms, str):
        perms = [p.strip() for p in perms.split(",")]
    if not isinstance(perms, (list, tuple)):
        return frozenset()
    return frozenset(p for p in perms if isinstance(p, str))


def token_user_id(request) -> str:
    user_id = token_claims(request).get("user_id")
    return "" if user_id is None else str(user_id)


def token_account_id(request) -> str | None:
    account_id = token_claims(request).get("account_id")
    return str(account_id) if isinstance(account_id, (str, int)) and not isinstance(account_id, bool) and account_id != "" else None


def unknown_permissions(permissions: list[str]) -> list[str]:
    return [p for p in permissions if p not in PERMISSIONS]


def issue_token(*, user_id: str, permissions: list[str], account_id: str | None = None, ttl_seconds: int = 3600) -> str:
    """Mint a token the way the external provider would (used by ``manage.py issue_token`` and tests)."""
    unknown = unknown_permissions(list(permissions))
    if unknown:
        raise ValueError(f"unknown permission(s): {', '.join(unknown)}; expected any of {', '.join(PERMISSIONS)}")
    if not user_id:
        raise ValueError("user_id is required")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    now = aware_utcnow()
    payload: dict = {
        "user_id": str(user_id),
        "permissions": list(permissions),
        "iat": datetime_to_epoch(now),
        "exp": datetime_to_epoch(now + timedelta(seconds=ttl_seconds)),
    }
    if account_id:
        payload["account_id"] = account_id
    if not api_settings.SIGNING_KEY:
        raise ValueError(f"no signing key is configured for {api_settings.ALGORITHM} (jwt.private_key for RS256)")
    return token_backend().encode(payload)
