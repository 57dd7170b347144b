"""Market-data routing orders: which enabled account serves a request, best first.

Pure functions over account ids; ``accounts.broker`` tries them in order and skips the ones whose
budget is exhausted, so every strategy routes around an exhausted account.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence


def _score(key: str, account_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}\x00{account_id}".encode(), digest_size=8).digest(), "big")


def rendezvous(key: str, account_ids: Sequence[str]) -> list[str]:
    """Highest-random-weight order: adding an account moves only the keys it now wins."""
    return sorted(account_ids, key=lambda a: _score(key, a), reverse=True)


def round_robin(position: int, account_ids: Sequence[str]) -> list[str]:
    if not account_ids:
        return []
    start = position % len(account_ids)
    return [*account_ids[start:], *account_ids[:start]]


def shuffled(account_ids: Sequence[str], rng: random.Random | None = None) -> list[str]:
    ids = list(account_ids)
    (rng or random).shuffle(ids)
    return ids


def least_loaded(account_ids: Sequence[str], *, remaining: Callable[[str], int], in_flight: Callable[[str], int]) -> list[str]:
    """Most remaining upstream budget first, then fewest requests in flight; ties broken randomly."""
    ids = shuffled(account_ids)
    return sorted(ids, key=lambda a: (-remaining(a), in_flight(a)))
