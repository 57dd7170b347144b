"""Injected trouble: per-key rate limit, latency and faults, all keyed by route name."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

from . import errors

FAULT_STATUSES = (500, 502, 503, 504, 429)
FAULT_CODES = {
    429: (errors.RATE_LIMITED, "rate limit exceeded (injected)"),
    500: (errors.INTERNAL, "internal server error (injected)"),
    502: (50210000, "bad gateway (injected)"),
    503: (errors.UNAVAILABLE, "service unavailable (injected)"),
    504: (errors.TIMEOUT, "gateway timeout (injected)"),
}


class RateLimiter:
    """Fixed one-minute windows per API key, like Alpaca's 200 requests per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.windows: dict[str, list] = {}

    def reset(self) -> None:
        self.windows.clear()

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        now = time.time()
        w = self.windows.get(key)
        if w is None or now >= w[0] + 60:
            w = [now, 0]
            self.windows[key] = w
        allowed = w[1] < self.per_minute
        if allowed:
            w[1] += 1
        headers = {
            "X-Ratelimit-Limit": str(self.per_minute),
            "X-Ratelimit-Remaining": str(max(0, self.per_minute - w[1])),
            "X-Ratelimit-Reset": str(math.ceil(w[0] + 60)),
        }
        if not allowed:
            headers["Retry-After"] = str(max(1, math.ceil(w[0] + 60 - now)))
        return allowed, headers


@dataclass
class FaultRule:
    status: int | None  # None with hang=True: hang, then answer 504
    rate: float = 1.0
    hang: bool = False
    count: int | None = None  # inject at most this many times, then the rule disappears


def parse_fault(body: dict) -> tuple[str, FaultRule]:
    route = str(body.get("route") or "*")
    hang = bool(body.get("hang", False))
    status = body.get("status")
    if status is not None:
        status = int(status)
        if status not in FAULT_STATUSES:
            raise errors.invalid(f"status must be one of {FAULT_STATUSES}")
    elif not hang:
        raise errors.invalid("status or hang is required")
    rate = float(body.get("rate", 1.0))
    if not 0.0 <= rate <= 1.0:
        raise errors.invalid("rate must be within 0..1")
    count = body.get("count")
    count = int(count) if count is not None else None
    return route, FaultRule(status=status, rate=rate, hang=hang, count=count)


class Faults:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.rules: dict[str, FaultRule] = {}
        self.rng = random.Random(self.seed + 1)

    def pick(self, route: str) -> FaultRule | None:
        if not self.rules:
            return None
        for key in (route, "*"):
            rule = self.rules.get(key)
            if rule is None:
                continue
            if rule.rate >= 1.0 or self.rng.random() < rule.rate:
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        del self.rules[key]
                return rule
        return None


@dataclass
class LatencySpec:
    ms: float = 0.0
    distribution: dict | None = None

    def sample(self, rng: random.Random) -> float:
        """Seconds to wait."""
        d = self.distribution
        if not d:
            return self.ms / 1000.0
        kind = d.get("type", "uniform")
        if kind == "uniform":
            ms = rng.uniform(float(d.get("min", 0)), float(d.get("max", 0)))
        elif kind == "normal":
            ms = rng.gauss(float(d.get("mean", 0)), float(d.get("stddev", 0)))
        elif kind == "exponential":
            ms = (
                rng.expovariate(1.0 / float(d.get("mean", 1)))
                if float(d.get("mean", 0)) > 0
                else 0.0
            )
        elif kind == "lognormal":
            median = float(d.get("median", d.get("mean", 1)))
            ms = median * math.exp(rng.gauss(0.0, float(d.get("sigma", 0.5))))
        else:
            raise errors.invalid(f"unknown latency distribution: {kind}")
        return max(0.0, ms) / 1000.0


def parse_latency(body: dict) -> tuple[str, LatencySpec]:
    route = str(body.get("route") or "*")
    dist = body.get("distribution")
    if dist is not None:
        if not isinstance(dist, dict):
            raise errors.invalid("distribution must be an object")
        spec = LatencySpec(distribution=dist)
        spec.sample(random.Random(0))  # validate now, not on the next request
        return route, spec
    return route, LatencySpec(ms=max(0.0, float(body.get("ms", 0))))


class Latency:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        self.specs: dict[str, LatencySpec] = {}
        self.rng = random.Random(self.seed + 2)

    def delay(self, route: str) -> float:
        if not self.specs:
            return 0.0
        spec = self.specs.get(route) or self.specs.get("*")
        return spec.sample(self.rng) if spec else 0.0
