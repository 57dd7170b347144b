"""Simulator configuration: YAML file merged with command-line flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .margin import check_multiplier

DEFAULT_CASH = "100000"
DEFAULT_SYMBOLS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AMD", "NFLX", "INTC",
    "SPY", "QQQ", "IWM", "JPM", "BAC", "XOM", "KO", "PFE", "DIS", "BA",
)  # fmt: skip


@dataclass
class AccountSpec:
    api_key: str
    secret_key: str
    paper: bool = True
    cash: str = DEFAULT_CASH
    account_number: str | None = None
    options_level: int = 3
    status: str = "ACTIVE"
    multiplier: int = 1  # 1 cash account, 2 or 4 margin (alpacasim/margin.py)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8091
    seed: int = 0
    rate_limit_enabled: bool = True
    rate_limit_per_minute: int = 200
    clock_mode: str = "real"  # real | open | closed
    price_step_seconds: float = 1.0
    base_prices: dict[str, float] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    illiquid: list[str] = field(default_factory=list)
    partial_fill_rate: float = 0.0
    partial_fill_delay_seconds: float = 1.0
    pending_new_seconds: float = 0.0  # how long a new order stays pending_new before it is new
    bars_page_max: int = 10000
    hang_seconds: float = 300.0
    risk_free_rate: float = 0.04
    accounts: list[AccountSpec] = field(default_factory=list)
    generated_accounts: int = 0
    stream_tick_rate: float = 1.0  # quotes (and trades) per second per subscribed symbol
    stream_tick_rates: dict[str, float] = field(default_factory=dict)
    stream_symbol_limit: int = 0  # distinct symbols per data connection; 0: unlimited
    stream_auth_timeout: float = 10.0


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def load_config(path: str | Path | None) -> SimConfig:
    cfg = SimConfig()
    if not path:
        return cfg
    raw = yaml.safe_load(Path(path).read_text()) or {}
    cfg.seed = int(raw.get("seed", cfg.seed))
    rl = raw.get("rate_limit", {})
    if isinstance(rl, dict):
        cfg.rate_limit_enabled = _bool(rl.get("enabled", cfg.rate_limit_enabled))
        cfg.rate_limit_per_minute = int(rl.get("per_minute", cfg.rate_limit_per_minute))
    elif rl is False or rl is None:
        cfg.rate_limit_enabled = False
    market = raw.get("market", {}) or {}
    cfg.clock_mode = str(market.get("clock", cfg.clock_mode))
    if cfg.clock_mode not in ("real", "open", "closed"):
        raise ValueError(
            f"market.clock must be real, open or closed, not {cfg.clock_mode!r}"
        )
    cfg.price_step_seconds = float(
        market.get("price_step_seconds", cfg.price_step_seconds)
    )
    cfg.base_prices = {
        str(k).upper(): float(v) for k, v in (market.get("base_prices") or {}).items()
    }
    if market.get("symbols") is not None:
        cfg.symbols = [str(s).strip().upper() for s in market["symbols"]]
    cfg.illiquid = [str(s).upper() for s in (market.get("illiquid") or [])]
    cfg.partial_fill_rate = float(
        market.get("partial_fill_rate", cfg.partial_fill_rate)
    )
    cfg.partial_fill_delay_seconds = float(
        market.get("partial_fill_delay_seconds", cfg.partial_fill_delay_seconds)
    )
    cfg.pending_new_seconds = check_pending_new(market.get("pending_new_seconds", 0))
    cfg.bars_page_max = int(market.get("bars_page_max", cfg.bars_page_max))
    cfg.hang_seconds = float(raw.get("hang_seconds", cfg.hang_seconds))
    for item in raw.get("accounts") or []:
        cfg.accounts.append(
            AccountSpec(
                api_key=str(item["api_key"]),
                secret_key=str(item["secret_key"]),
                paper=_bool(item.get("paper", True)),
                cash=str(item.get("cash", DEFAULT_CASH)),
                account_number=item.get("account_number"),
                options_level=int(item.get("options_level", 3)),
                status=str(item.get("status", "ACTIVE")),
                multiplier=check_multiplier(item.get("multiplier", 1)),
            )
        )
    cfg.generated_accounts = int(raw.get("generated_accounts", 0))
    _load_streams(cfg, raw.get("streams") or {})
    return cfg


def _load_streams(cfg: SimConfig, raw: dict) -> None:
    if not isinstance(raw, dict):
        raise ValueError("streams must be a mapping")
    cfg.stream_tick_rate = float(raw.get("tick_rate", cfg.stream_tick_rate))
    cfg.stream_tick_rates = {str(k).upper(): float(v) for k, v in (raw.get("tick_rates") or {}).items()}
    cfg.stream_symbol_limit = int(raw.get("symbol_limit", cfg.stream_symbol_limit) or 0)
    cfg.stream_auth_timeout = float(raw.get("auth_timeout_seconds", cfg.stream_auth_timeout))
    rates = [cfg.stream_tick_rate, *cfg.stream_tick_rates.values()]
    if any(not 0 <= r <= 10_000 for r in rates):
        raise ValueError("streams.tick_rate and tick_rates must be within 0..10000 messages/s")
    if cfg.stream_symbol_limit < 0 or cfg.stream_auth_timeout <= 0:
        raise ValueError("streams.symbol_limit must be >= 0 and auth_timeout_seconds > 0")


def check_pending_new(value: object) -> float:
    seconds = float(value or 0)
    if not 0 <= seconds <= 60:
        raise ValueError("market.pending_new_seconds must be within 0..60")
    return seconds
