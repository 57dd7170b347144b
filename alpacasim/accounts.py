"""Accounts, positions and their deterministic identities."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from .config import AccountSpec

_NS = uuid.UUID("6b1e9f3a-5c2d-4a57-9d0e-3f6a2b7c8d91")
_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def generated_credentials(i: int) -> tuple[str, str]:
    """Key and secret of generated account ``i`` (1-based), as ``--accounts N`` creates them."""
    return f"PKSIM{i:010d}", f"simsecret{i:010d}"


def stable_uuid(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "|".join(parts)))


def account_number_for(api_key: str, paper: bool) -> str:
    """Deterministic: ``PA`` + 10 alphanumerics for paper, 9 digits for live."""
    digest = hashlib.sha256(api_key.encode()).digest()
    if paper:
        return "PA" + "".join(_ALNUM[b % 36] for b in digest[:10])
    return "".join(str(b % 10) for b in digest[:9]).replace("0", "7", 1)


@dataclass
class Position:
    symbol: str
    asset_class: str  # us_equity | us_option
    asset_id: str
    qty: Decimal = Decimal(0)  # signed: negative is short
    avg_entry_price: Decimal = Decimal(0)

    @property
    def multiplier(self) -> int:
        return 100 if self.asset_class == "us_option" else 1


@dataclass
class Account:
    api_key: str
    secret_key: str
    paper: bool
    cash: Decimal
    account_number: str
    options_level: int = 3
    status: str = "ACTIVE"
    multiplier: int = 1  # 1 cash, 2 Reg T margin, 4 margin with intraday buying power (margin.py)
    id: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict = field(default_factory=dict)  # order id -> Order, in creation order
    by_client_id: dict[str, str] = field(default_factory=dict)
    open_orders: dict = field(default_factory=dict)  # the open subset of ``orders``
    initial_cash: Decimal = Decimal(0)
    activities: list[dict] = field(default_factory=list)  # FILL and OPEXC, oldest first
    configurations: dict = field(default_factory=dict)  # PATCH /account/configurations
    last_equity: Decimal | None = None  # equity at the last regular close (calendar clock only)
    equity_asof: datetime | None = None
    closes: dict = field(default_factory=dict)  # trading day -> equity at its close
    last_maintenance: Decimal = Decimal(0)  # maintenance margin at the last regular close
    # (market-clock epoch seconds, cash, {symbol: qty}) after every change of holdings, for the
    # intraday portfolio history; before the first entry the account held its initial cash only
    timeline: list = field(default_factory=list)
    timeline_base: tuple | None = None  # (cash, holdings) before the first kept entry, once trimmed

    @classmethod
    def from_spec(cls, spec: AccountSpec) -> Account:
        cash = Decimal(str(spec.cash))
        return cls(
            api_key=spec.api_key,
            secret_key=spec.secret_key,
            paper=spec.paper,
            cash=cash,
            initial_cash=cash,
            account_number=spec.account_number
            or account_number_for(spec.api_key, spec.paper),
            options_level=spec.options_level,
            status=spec.status,
            multiplier=spec.multiplier,
            id=stable_uuid("account", spec.api_key),
        )


def generated_spec(i: int) -> AccountSpec:
    key, secret = generated_credentials(i)
    return AccountSpec(api_key=key, secret_key=secret, paper=True)
