"""Keep credentials out of audit data: credential-looking keys are redacted, at any depth.

Values under such keys are replaced by ``REDACTED``; string values elsewhere pass through
``opitios.logging.mask_secrets`` (registered runtime secrets, Alpaca key ids, JWTs). Redacting
rather than refusing keeps an order from failing because of what its audit payload carried.
"""
from __future__ import annotations

import functools
import re

from opitios.logging import OCC_SYMBOL_RE, mask_secrets

REDACTED = "[redacted]"

# Matched against the key lowercased with everything but letters and digits removed,
# so "API-Key", "api_key" and "apiKey" are one key. "APCA-API-KEY-ID" -> "apcaapikeyid".
_CREDENTIAL_PARTS = (
    "apikey", "secret", "password", "passwd", "passphrase", "token", "authorization", "privatekey",
    "credential", "cookie", "fernet", "signingkey", "keyid", "sessionid", "jwt",
)
_CREDENTIAL_KEYS = {"auth", "pwd", "pin", "otp"}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
# Fields that hold a ticker or option symbol: kept verbatim when the value is one (an OCC root may
# begin like a key id), so the audit trail always names what was traded.
_SYMBOL_KEYS = {"symbol", "optionsymbol", "underlying", "symbols"}
_STOCK_SYMBOL_RE = re.compile(r"[A-Z][A-Z0-9]{0,9}(?:[./][A-Z0-9]{1,4})?")


def _is_symbol(value) -> bool:
    return isinstance(value, str) and bool(_STOCK_SYMBOL_RE.fullmatch(value) or OCC_SYMBOL_RE.fullmatch(value))


def is_credential_key(key: str) -> bool:
    return _key_kind(str(key)) == "credential"


@functools.lru_cache(maxsize=4096)  # audit payloads repeat the same few dozen keys on every order
def _key_kind(key: str) -> str:
    flat = _NOT_ALNUM.sub("", key.lower())
    if flat in _CREDENTIAL_KEYS or any(part in flat for part in _CREDENTIAL_PARTS):
        return "credential"
    return "symbol" if flat in _SYMBOL_KEYS else ""


# Values with nothing to redact: kept as they are without a call per value (an order's audit data is
# mostly numbers, booleans and nulls).
_PLAIN = (bool, int, float, type(None))


def redact_secrets(value, path: str = "", found: list[str] | None = None):
    """Return ``value`` with credentials redacted; the dotted paths of redacted keys go to ``found``."""
    if isinstance(value, dict):
        cleaned = {}
        for key, item in value.items():
            kind = _key_kind(str(key))
            if kind == "credential":
                cleaned[key] = REDACTED
                if found is not None:
                    found.append(f"{path}.{key}" if path else str(key))
            elif kind == "symbol" and (
                _is_symbol(item) or (isinstance(item, list) and item and all(_is_symbol(x) for x in item))
            ):
                cleaned[key] = item
            elif isinstance(item, _PLAIN):
                cleaned[key] = item
            elif isinstance(item, str):
                masked = cleaned[key] = mask_secrets(item)
                if masked != item and found is not None:
                    found.append(f"{path}.{key}" if path else str(key))
            else:
                cleaned[key] = redact_secrets(item, f"{path}.{key}" if path else str(key), found)
        return cleaned
    if isinstance(value, (list, tuple)):
        return [redact_secrets(item, f"{path}[{index}]", found) for index, item in enumerate(value)]
    if isinstance(value, str):
        masked = mask_secrets(value)
        if masked != value and found is not None:
            found.append(path or "<value>")
        return masked
    return value
