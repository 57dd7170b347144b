"""Injected stream trouble, keyed by feed ("v2/iex", "v1beta1/opra", "paper/stream", ... or "*" for all)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import errors

ACTIONS = ("drop", "stall", "delay", "malformed", "refuse")
REFUSE_STATUSES = (429, 500, 502, 503)


@dataclass
class Refusal:
    status: int = 503
    count: int | None = None  # refuse this many handshakes, then accept again


@dataclass
class StreamFault:
    action: str
    feed: str = "*"
    api_key: str | None = None
    seconds: float = 0.0  # stall
    ms: float = 0.0  # delay
    status: int = 503  # refuse
    count: int | None = None  # refuse


def parse_stream_fault(body: dict) -> StreamFault:
    action = str(body.get("action") or "")
    if action not in ACTIONS:
        raise errors.invalid(f"action must be one of {ACTIONS}")
    fault = StreamFault(action=action, feed=str(body.get("feed") or "*").strip("/"))
    fault.api_key = body.get("api_key") or None
    try:
        fault.seconds = float(body.get("seconds", 0) or 0)
        fault.ms = float(body.get("ms", 0) or 0)
        fault.status = int(body.get("status", 503) or 503)
        fault.count = None if body.get("count") is None else int(body["count"])
    except (TypeError, ValueError):
        raise errors.invalid("seconds, ms, status and count must be numbers") from None
    if action == "stall" and not fault.seconds > 0:
        raise errors.invalid("stall needs seconds > 0")
    if action == "delay" and fault.ms < 0:
        raise errors.invalid("delay needs ms >= 0 (0 removes it)")
    if action == "refuse":
        if fault.status not in REFUSE_STATUSES:
            raise errors.invalid(f"status must be one of {REFUSE_STATUSES}")
        if fault.count is not None and fault.count < 1:
            raise errors.invalid("count must be >= 1")
    return fault


class StreamFaults:
    """The standing faults (delay, refuse); drop, stall and malformed act at once on open connections."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.delays: dict[str, float] = {}  # feed -> seconds
        self.refusals: dict[str, Refusal] = {}
        self.stalls: dict[str, float] = {}  # feed -> monotonic end, shown in the state only

    def delay_for(self, feed: str) -> float:
        if not self.delays:
            return 0.0
        return self.delays.get(feed, self.delays.get("*", 0.0))

    def take_refusal(self, feed: str) -> int | None:
        """The HTTP status to refuse this handshake with, or None to accept it."""
        for key in (feed, "*"):
            rule = self.refusals.get(key)
            if rule is None:
                continue
            if rule.count is not None:
                rule.count -= 1
                if rule.count <= 0:
                    del self.refusals[key]
            return rule.status
        return None

    def as_json(self) -> dict:
        now = time.monotonic()
        return {
            "delay_ms": {f: s * 1000 for f, s in self.delays.items()},
            "refuse": {f: vars(r) for f, r in self.refusals.items()},
            "stall_seconds_left": {f: round(t - now, 3) for f, t in self.stalls.items() if t > now},
        }
