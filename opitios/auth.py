"""Stateless JWT auth over claims issued by an external provider.

Tokens carry ``user_id``, optional ``account_id``, ``permissions`` and ``exp``. No user table:
``request.user`` is simplejwt's ``TokenUser`` and ``request.auth`` the verified token.

The algorithm and keys come from ``settings.SIMPLE_JWT`` (built from the ``jwt`` section of
secrets.yml by ``JwtConfig.simple_jwt_settings``). Only the configured algorithm is accepted, so
``alg: none``, another algorithm and HS/RS confusion all fail signature verification (401).

A verified token is kept per process (``VerifiedTokens``: at most ``VERIFIED_TOKENS_MAX``, least recently used
first out, keyed by the raw token and the backend that verified it), so a client's next request skips the
signature and the claims checks; its ``exp`` is checked again at every use. Only what verified is kept, and
nothing of it is logged.
"""
from __future__ import annotations

import threading
import unicodedata
from collections import OrderedDict
from datetime import timedelta

from django.core.signals import setting_changed
from rest_framework_simplejwt import settings as simplejwt_settings
from rest_framework_simplejwt.authentication import JWTStatelessUserAuthentication
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import TokenError
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
                # simplejwt replaces its api_settings object when SIMPLE_JWT changes: read it from the module
                api_settings = simplejwt_settings.api_settings
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
        verified_tokens.clear()


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


VERIFIED_TOKENS_MAX = 1024  # distinct live tokens a worker keeps; a client holds one for up to an hour


class VerifiedTokens:
    """Tokens that passed verification, by raw token: a bounded LRU shared by the threads of a process."""

    def __init__(self, maxsize: int = VERIFIED_TOKENS_MAX) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._tokens: OrderedDict[bytes, tuple[TokenBackend, ClaimsToken]] = OrderedDict()

    def get(self, raw_token: bytes, backend: TokenBackend) -> ClaimsToken | None:
        """The token verified by ``backend`` for ``raw_token`` if it has not expired since; None otherwise."""
        with self._lock:
            hit = self._tokens.get(raw_token)
            if hit is None:
                return None
            self._tokens.move_to_end(raw_token)
        verified_by, token = hit
        if verified_by is not backend:  # the keys or the algorithm changed
            self.discard(raw_token)
            return None
        try:
            token.check_exp(current_time=aware_utcnow())
        except TokenError:
            self.discard(raw_token)
            return None
        return token

    def put(self, raw_token: bytes, backend: TokenBackend, token: ClaimsToken) -> None:
        with self._lock:
            self._tokens[raw_token] = (backend, token)
            self._tokens.move_to_end(raw_token)
            while len(self._tokens) > self.maxsize:
                self._tokens.popitem(last=False)

    def discard(self, raw_token: bytes) -> None:
        with self._lock:
            self._tokens.pop(raw_token, None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        return len(self._tokens)


verified_tokens = VerifiedTokens()


class ClaimsJWTAuthentication(JWTStatelessUserAuthentication):
    www_authenticate_realm = "opitios"

    def get_validated_token(self, raw_token: bytes) -> Token:
        backend = token_backend()
        token = verified_tokens.get(raw_token, backend)
        if token is None:
            token = super().get_validated_token(raw_token)  # raises InvalidToken (401) as before; an expired one lands here
            verified_tokens.put(raw_token, backend, token)
        return token


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
    api_settings = simplejwt_settings.api_settings
    if not api_settings.SIGNING_KEY:
        raise ValueError(f"no signing key is configured for {api_settings.ALGORITHM} (jwt.private_key for RS256)")
    return token_backend().encode(payload)
