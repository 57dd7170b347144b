"""Alpaca's stream wire formats: error codes, frame encoding (msgpack or JSON) and the channel sets."""

from __future__ import annotations

import json
from datetime import datetime

import msgpack

from ..market import iso_z

# Alpaca's market-data stream errors, code -> message, as the real service words them.
ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    412: "option messages are only available in MsgPack format",
    500: "internal error",
}

STOCK_CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
OPTION_CHANNELS = ("trades", "quotes")
# Echoed with the trades list: corrections and cancel errors follow a trade subscription.
TRADE_FOLLOWERS = ("corrections", "cancelErrors")

STOCK_FEEDS = ("iex", "sip", "test")
OPTION_FEEDS = ("indicative", "opra")

# Frames no decoder accepts: 0xc1 is the one byte msgpack never uses.
MALFORMED_BINARY = b"\xc1\x00\xff"
MALFORMED_TEXT = '[{"T":"q","S":'


def error(code: int, detail: str | None = None) -> list[dict]:
    msg = ERRORS[code] if detail is None else f"{ERRORS[code]}: {detail}"
    return [{"T": "error", "code": code, "msg": msg}]


def _json_default(value):
    if isinstance(value, datetime):
        return iso_z(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def encode_json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), default=_json_default)


def encode_msgpack(obj) -> bytes:
    # datetime=True packs aware datetimes as the msgpack timestamp extension, which alpaca-py reads with to_datetime().
    return msgpack.packb(obj, datetime=True)


def decode(data: bytes | str):
    """A client frame: msgpack when binary, JSON when text (Alpaca accepts both). ValueError if neither."""
    if isinstance(data, str):
        return json.loads(data)
    try:
        return msgpack.unpackb(data)
    except Exception:
        return json.loads(data)
