"""Stateless JWT auth over claims issued by an external provider.

Tokens carry ``user_id``, optional ``account_id``, ``permissions`` and ``exp``. No user table:
``request.user`` is simplejwt's ``TokenUser`` and ``request.auth`` the verified token.

The algorithm and keys come from ``settings.SIMPLE_JWT`` (built from the ``jwt`` section of
secrets.yml by ``JwtConfig.simple_jwt_settings``). Only the configured algorithm is accepted, so
``alg: none``, another algorithm and HS/RS confusion all fail signature verification (401).
"""
from __future__ import annotations

import threading
import unicodedata
from datetime import timedelta

from django.core.signals import setting_changed
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import aware_utcnow, datetime_to_epoch

PERMISSIONS = ("market_data", "account_access", "trading", "bulk_trading", "admin")
USER_ID_MAX_LENGTH = 128  # OrderRecord.user_id
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z, the last second a datetime can hold

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


def _epoch_error(name: str, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_EPOCH:
        return f"{name} must be an integer number of seconds since 1970 (1 to {MAX_EPOCH})."
    return None


def claims_errors(payload: dict) -> list[str]:
    """What is wrong with the types of the claims; the signature was verified already."""
    from opitios.config import ACCOUNT_ID_RE

    errors = []
    if "exp" not in payload:
        errors.append("exp is required.")
    for name in ("exp", "iat", "nbf"):
        if name in payload and (error := _epoch_error(name, payload[name])):
            errors.append(error)
    user_id = payload.get("user_id")
    if (not isinstance(user_id, str) or not user_id or len(user_id) > USER_ID_MAX_LENGTH
            or any(unicodedata.category(c).startswith("C") for c in user_id)):
        errors.append(f"user_id must be a non-empty string of at most {USER_ID_MAX_LENGTH} printable characters.")
    if "permissions" in payload:
        perms = payload["permissions"]
        if not isinstance(perms, list) or not all(isinstance(p, str) and p in PERMISSIONS for p in perms):
            errors.append(f"permissions must be a list of: {', '.join(PERMISSIONS)}.")
    account_id = payload.get("account_id")
    if account_id is not None and not (isinstance(account_id, str) and ACCOUNT_ID_RE.fullmatch(account_id)):
        errors.append("account_id must be an account id.")
    return errors


class ClaimsToken(Token):
    token_type = "access"
    lifetime = timedelta(hours=1)

    def __init__(self, token=None, verify: bool = True) -> None:
        try:
            super().__init__(token, verify=verify)
        except (TypeError, ValueError, OverflowError) as exc:  # PyJWT's int(exp) on a huge or odd value
            raise TokenError("Token has malformed claims.") from exc

    def verify(self) -> None:
        errors = claims_errors(self.payload)
        if errors:
            raise TokenError(f"Token has malformed claims: {' '.join(errors)}")
        super().verify()

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
    return frozenset(token_claims(request).get("permissions") or ())  # a list of known names (claims_errors)


def token_user_id(request) -> str:
    return token_claims(request).get("user_id") or ""


def token_account_id(request) -> str | None:
    return token_claims(request).get("account_id") or None


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
