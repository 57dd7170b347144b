"""The secrets.yml loader (docs/configuration.md).

``load_config()`` reads the file named by ``OPITIOS_SECRETS`` (default ``./secrets.yml``).
Without one, it reads ``secrets.example.yml`` in demo mode (against alpacasim).

Rules:
- broken YAML raises ``ConfigError`` naming the file and line;
- every numeric setting has a range (``opitios.limits.RANGES``); an invalid ``trading``,
  ``sell_module``, ``rate_limits`` or ``jwt.leeway_seconds`` value is replaced by its safe default
  and listed in ``config_errors``;
- an invalid numeric setting of an account is dropped (its default applies) and the account
  flagged (``AccountConfig.dropped``);
- any other invalid account entry, or a second account with the same ``api_key``, is not loaded
  (``account_errors``); the others still load, and ``sync_accounts`` makes an existing account of
  that id non-tradable until its entry is valid again;
- an invalid ``jwt`` key or algorithm raises ``ConfigError`` (auth must never run on a guess).

Every error names its key path, e.g. ``trading.minimum_balance``. Parsing logs nothing (every
process parses the file); ``log_config_errors`` prints them once, from ``sync_accounts``.
"""
from __future__ import annotations

import contextvars
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from opitios.limits import RANGES, TEXT_MAX_LENGTH

logger = logging.getLogger("opitios.config")

JWT_ALGORITHMS = ("HS256", "HS384", "HS512", "RS256")
ROUTING_STRATEGIES = ("round_robin", "random", "least_loaded", "hash")
CANCEL_SCOPES = ("sell_orders", "bot_orders", "all_orders")
SELL_ORDER_TYPES = ("limit_at_bid", "market")
ZERO_DAY_MODES = ("strategy", "flatten")
ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
STOCK_FEEDS = ("iex", "sip")
OPTION_FEEDS = ("indicative", "opra")
RATE_RE = re.compile(r"^\s*(-?\d+)\s*/\s*(s|sec|second|m|min|minute|h|hour|d|day)\s*$")
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

DEFAULT_RATE_LIMITS = {
    "stock_quote": "60/min",
    "quotes_batch": "20/min",
    "stock_order": "10/min",
    "option_order": "200/min",
    "default": "120/min",
}


class ConfigError(Exception):
    """A configuration problem that must stop the start."""


# --- typed sections ----------------------------------------------------------------


@dataclass(frozen=True)
class JwtKeys:
    signing_key: str
    verifying_key: str | None


@dataclass(frozen=True)
class JwtConfig:
    algorithm: str = "HS256"
    secret_key: str | None = None
    public_key: str | None = None
    private_key: str | None = None
    leeway_seconds: int = 0

    def has_key(self) -> bool:
        if self.algorithm == "RS256":
            return bool(self.public_key)
        return bool(self.secret_key)

    def simple_jwt_settings(self, var_dir: Path, *, generate: bool) -> dict[str, Any]:
        """djangorestframework-simplejwt settings for these claims-only tokens."""
        from opitios.secrets_store import persistent_secret

        if self.algorithm == "RS256":
            signing, verifying = self.private_key or "", self.public_key
        else:
            signing, verifying = self.secret_key or "", None
            if not signing and generate:
                signing = persistent_secret(var_dir / "jwt-secret-key")
        return {
            "ALGORITHM": self.algorithm,
            "SIGNING_KEY": signing,
            "VERIFYING_KEY": verifying,
            "LEEWAY": self.leeway_seconds,
            "AUTH_HEADER_TYPES": ("Bearer",),
            "USER_ID_CLAIM": "user_id",
            "USER_ID_FIELD": "id",
            "TOKEN_TYPE_CLAIM": None,
            "JTI_CLAIM": None,
            "AUTH_TOKEN_CLASSES": ("opitios.auth.ClaimsToken",),
            "TOKEN_USER_CLASS": "rest_framework_simplejwt.models.TokenUser",
        }


@dataclass(frozen=True)
class TradingConfig:
    minimum_balance: Decimal = Decimal("5000")
    balance_check_enabled: bool = True
    balance_refresh_seconds: int = 15
    balance_refresh_coalesce_s: float = 5.0
    balance_max_age_seconds: int = 60
    balance_check_timeout_ms: int = 1500
    balance_fallback_max_age_seconds: int = 300
    balance_check_fail_closed: bool = False
    block_reducing_sells: bool = False
    routing_strategy: str = "round_robin"
    max_symbols_per_request: int = 20
    max_order_qty: Decimal | None = None
    max_order_notional: Decimal | None = None
    # Risk controls (docs/configuration.md, "trading"); per-account overrides in the account's entry.
    price_collar_pct: Decimal | None = None
    restricted_symbols: tuple[str, ...] = ()
    max_open_orders: int | None = None
    max_orders_per_second: int | None = 50


@dataclass(frozen=True)
class ApiConfig:
    market_data_public: bool = True
    allowed_origins: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MarketDataConfig:
    """The streaming hub and /ws/market-data (docs/configuration.md, ``market_data``)."""

    stream_account: str | None = None  # None: the first enabled paper account, by account id
    stock_feed: str = "iex"
    option_feed: str = "indicative"
    default_symbols: list[str] = field(default_factory=list)
    # A streamed quote older than this is not served by REST quotes (they ask Alpaca instead).
    max_quote_age_ms: int = 2000
    unsubscribe_grace_seconds: float = 30.0
    max_symbols_per_connection: int = 100
    max_connections_per_user: int = 10
    max_connections_per_ip: int = 50
    max_backlog: int = 1000
    heartbeat_seconds: float = 20.0
    stall_seconds: float = 10.0


@dataclass(frozen=True)
class StrategyOneConfig:
    profit_rate: Decimal = Decimal("1.1")
    stop_loss_rate: Decimal = Decimal("0.8")
    trailing_stop_rate: Decimal | None = None


@dataclass(frozen=True)
class PositionTimeLimitConfig:
    enabled: bool = False
    max_hold_minutes: int = 240


@dataclass(frozen=True)
class SellModuleConfig:
    enabled: bool = False
    check_interval: float = 5.0
    order_cancel_minutes: float = 3.0
    order_cancel_minutes_by_type: dict[str, float] = field(default_factory=dict)
    cancel_scope: str = "sell_orders"
    sell_order_type: str = "limit_at_bid"
    max_exit_attempts: int = 3
    strategy_one: StrategyOneConfig = field(default_factory=StrategyOneConfig)
    position_time_limit: PositionTimeLimitConfig = field(default_factory=PositionTimeLimitConfig)
    close_before_market_close_minutes: int = 10
    zero_day_handling: str = "strategy"
    manage_all_option_positions: bool = False
    # Tick-driven exits (docs/streaming.md): at most one evaluation per managed symbol per this many ms; 0: sweep only.
    tick_eval_interval_ms: int = 200

    def cancel_minutes_for(self, order_type: str) -> float:
        return self.order_cancel_minutes_by_type.get(order_type, self.order_cancel_minutes)


@dataclass(frozen=True)
class AccountConfig:
    account_id: str
    api_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    name: str = ""
    paper_trading: bool = True
    tier: str = ""
    max_connections: int = 10
    enabled: bool = True
    minimum_balance: Decimal | None = None
    balance_check_enabled: bool | None = None
    rate_limit_per_minute: int = 200
    # Overrides of the trading section's risk controls (None: the global value applies).
    price_collar_pct: Decimal | None = None
    max_open_orders: int | None = None
    max_orders_per_second: int | None = None
    # Settings of this entry that were invalid and dropped (their defaults apply); the account loads, flagged.
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricsConfig:
    # Bearer token for /metrics; without one only loopback may scrape (docs/deployment.md, "Metrics").
    token: str | None = field(default=None, repr=False)
    # Accounts that get their own label value; every other account is counted under "other".
    account_labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AlertsConfig:
    # Apprise URLs (discord://, slack://, mailto://, json://, ...); they often embed a token: never logged.
    urls: list[str] = field(default_factory=list, repr=False)
    # A condition that stays raised is repeated at most this often; a flapping one sends nothing new.
    repeat_minutes: int = 240
    # A market-data feed, the hub or a trade-updates shard down this long raises "stream down": longer
    # than a standby's takeover (hub ~12 s, listener ~18 s) and a reconnect's backoff.
    stream_down_seconds: int = 60


@dataclass(frozen=True)
class OpitiosConfig:
    source: Path | None
    demo: bool
    jwt: JwtConfig = field(default_factory=JwtConfig)
    trading: TradingConfig = field(default_factory=TradingConfig)
    rate_limits: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    api: ApiConfig = field(default_factory=ApiConfig)
    sell_module: SellModuleConfig = field(default_factory=SellModuleConfig)
    market_data: MarketDataConfig = field(default_factory=MarketDataConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    accounts: dict[str, AccountConfig] = field(default_factory=dict)
    account_errors: dict[str, str] = field(default_factory=dict)
    config_errors: list[str] = field(default_factory=list)


# --- value parsers: each returns the typed value or raises ValueError -------------------


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return v.strip().lower() in ("true", "yes", "on", "1")
    raise ValueError(f"expected true or false, got {v!r}")


def _int_in(key: str) -> Callable[[Any], int]:
    return lambda v: int(RANGES[key].parse(v))


def _float_in(key: str) -> Callable[[Any], float]:
    return lambda v: float(RANGES[key].parse(v))


def _decimal_in(key: str) -> Callable[[Any], Decimal]:
    return lambda v: RANGES[key].parse(v)


def _optional(parser: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else parser(v)


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(v: Any) -> str:
        if v not in options:
            raise ValueError(f"must be one of {', '.join(options)}; got {v!r}")
        return v

    return parse


def _rate(v: Any) -> str:
    match = RATE_RE.match(v) if isinstance(v, str) else None
    if not match:
        raise ValueError(f'expected a rate such as "60/min", got {v!r}')
    count = RANGES["rate_limits.count"]
    if not count.contains(Decimal(match.group(1))):
        raise ValueError(f"the count must be {count.describe()}; got {v!r}")
    return v.replace(" ", "")


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"expected a list of strings, got {v!r}")
    return list(v)


def _text(v: Any) -> str:
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        raise ValueError(f"expected text, got {v!r}")
    return str(v)


def _bounded_text(key: str, *, required: bool = False) -> Callable[[Any], str]:
    limit = TEXT_MAX_LENGTH[key]

    def parse(v: Any) -> str:
        # Never echo the value: it may be a credential.
        if required and (not isinstance(v, str) or not v.strip()):
            raise ValueError("is required and must be non-empty text")
        text = _text(v).strip() if required else _text(v)
        if len(text) > limit:
            raise ValueError(f"must be at most {limit} characters; got {len(text)}")
        if required and any(ch.isspace() or not ch.isprintable() for ch in text):
            raise ValueError("must not contain spaces or control characters")
        return text

    return parse


# --- the schema of the lenient sections -----------------------------------------------

TRADING_FIELDS: dict[str, Callable[[Any], Any]] = {
    "minimum_balance": _decimal_in("trading.minimum_balance"),
    "balance_check_enabled": _bool,
    "balance_refresh_seconds": _int_in("trading.balance_refresh_seconds"),
    "balance_refresh_coalesce_s": _float_in("trading.balance_refresh_coalesce_s"),
    "balance_max_age_seconds": _int_in("trading.balance_max_age_seconds"),
    "balance_check_timeout_ms": _int_in("trading.balance_check_timeout_ms"),
    "balance_fallback_max_age_seconds": _int_in("trading.balance_fallback_max_age_seconds"),
    "balance_check_fail_closed": _bool,
    "block_reducing_sells": _bool,
    "routing_strategy": _choice(ROUTING_STRATEGIES),
    "max_symbols_per_request": _int_in("trading.max_symbols_per_request"),
    "max_order_qty": _optional(_decimal_in("trading.max_order_qty")),
    "max_order_notional": _optional(_decimal_in("trading.max_order_notional")),
    "price_collar_pct": _optional(_decimal_in("trading.price_collar_pct")),
    "restricted_symbols": lambda v: tuple(_symbol_list([] if v is None else v)),
    "max_open_orders": _optional(_int_in("trading.max_open_orders")),
    "max_orders_per_second": _optional(_int_in("trading.max_orders_per_second")),
}

SELL_FIELDS: dict[str, Callable[[Any], Any]] = {
    "enabled": _bool,
    "check_interval": _float_in("sell_module.check_interval"),
    "order_cancel_minutes": _float_in("sell_module.order_cancel_minutes"),
    "cancel_scope": _choice(CANCEL_SCOPES),
    "sell_order_type": _choice(SELL_ORDER_TYPES),
    "max_exit_attempts": _int_in("sell_module.max_exit_attempts"),
    "close_before_market_close_minutes": _int_in("sell_module.close_before_market_close_minutes"),
    "zero_day_handling": _choice(ZERO_DAY_MODES),
    "manage_all_option_positions": _bool,
    "tick_eval_interval_ms": _int_in("sell_module.tick_eval_interval_ms"),
}

STRATEGY_ONE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "profit_rate": _decimal_in("sell_module.strategy_one.profit_rate"),
    "stop_loss_rate": _decimal_in("sell_module.strategy_one.stop_loss_rate"),
    "trailing_stop_rate": _optional(_decimal_in("sell_module.strategy_one.trailing_stop_rate")),
}

TIME_LIMIT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "enabled": _bool,
    "max_hold_minutes": _int_in("sell_module.position_time_limit.max_hold_minutes"),
}

ACCOUNT_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": _bounded_text("name"),
    "api_key": _bounded_text("api_key", required=True),
    "secret_key": _bounded_text("secret_key", required=True),
    "paper_trading": _bool,
    "tier": _bounded_text("tier"),
    "enabled": _bool,
    "balance_check_enabled": _optional(_bool),
}

# An account's numeric settings: an invalid one is dropped (its default applies) and the account
# flagged; the account still loads. Any other invalid value makes the whole entry invalid.
ACCOUNT_OVERRIDES: dict[str, Callable[[Any], Any]] = {
    "max_connections": _int_in("accounts.max_connections"),
    "minimum_balance": _optional(_decimal_in("accounts.minimum_balance")),
    "rate_limit_per_minute": _int_in("accounts.rate_limit_per_minute"),
    "price_collar_pct": _optional(_decimal_in("trading.price_collar_pct")),
    "max_open_orders": _optional(_int_in("trading.max_open_orders")),
    "max_orders_per_second": _optional(_int_in("trading.max_orders_per_second")),
}


class _Collector:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        # Recorded, not logged: every process parses the file; log_config_errors() prints them once.
        self.errors.append(f"{path}: {message}")

    def section(self, raw: Any, path: str) -> dict:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.error(path, f"expected a mapping, got {type(raw).__name__}; using defaults")
            return {}
        return raw

    def lenient(self, raw: dict, path: str, fields: dict[str, Callable[[Any], Any]]) -> dict:
        """Parse known keys; an invalid value is reported and left out, so the default applies."""
        out = {}
        for key, value in raw.items():
            if key not in fields:
                self.error(f"{path}.{key}", "unknown key; ignored")
                continue
            try:
                out[key] = fields[key](value)
            except ValueError as exc:
                self.error(f"{path}.{key}", f"{exc}; using the default")
        return out


def _parse_trading(raw: Any, c: _Collector) -> TradingConfig:
    return TradingConfig(**c.lenient(c.section(raw, "trading"), "trading", TRADING_FIELDS))


def _parse_sell_module(raw: Any, c: _Collector) -> SellModuleConfig:
    raw = dict(c.section(raw, "sell_module"))
    nested = {
        "strategy_one": raw.pop("strategy_one", None),
        "position_time_limit": raw.pop("position_time_limit", None),
        "order_cancel_minutes_by_type": raw.pop("order_cancel_minutes_by_type", None),
    }
    values = c.lenient(raw, "sell_module", SELL_FIELDS)
    values["strategy_one"] = StrategyOneConfig(
        **c.lenient(c.section(nested["strategy_one"], "sell_module.strategy_one"), "sell_module.strategy_one", STRATEGY_ONE_FIELDS)
    )
    values["position_time_limit"] = PositionTimeLimitConfig(
        **c.lenient(
            c.section(nested["position_time_limit"], "sell_module.position_time_limit"),
            "sell_module.position_time_limit",
            TIME_LIMIT_FIELDS,
        )
    )
    by_type = c.lenient(
        c.section(nested["order_cancel_minutes_by_type"], "sell_module.order_cancel_minutes_by_type"),
        "sell_module.order_cancel_minutes_by_type",
        {t: _float_in("sell_module.order_cancel_minutes") for t in ORDER_TYPES},
    )
    values["order_cancel_minutes_by_type"] = by_type
    return SellModuleConfig(**values)


def _parse_rate_limits(raw: Any, c: _Collector) -> dict[str, str]:
    rates = dict(DEFAULT_RATE_LIMITS)
    for scope, value in c.section(raw, "rate_limits").items():
        try:
            rates[str(scope)] = _rate(value)
        except ValueError as exc:
            c.error(f"rate_limits.{scope}", f"{exc}; using the default")
    return rates


def _parse_api(raw: Any, c: _Collector) -> ApiConfig:
    return ApiConfig(
        **c.lenient(
            c.section(raw, "api"),
            "api",
            {"market_data_public": _bool, "allowed_origins": _str_list},
        )
    )


def _symbol_list(v: Any) -> list[str]:
    symbols = _str_list(v)
    bad = [x for x in symbols if not re.fullmatch(r"[A-Za-z0-9.]{1,21}", x.strip())]
    if bad:
        raise ValueError(f"expected stock or OCC option symbols, got {bad[:5]!r}")
    return list(dict.fromkeys(x.strip().upper() for x in symbols))


def _account_id(v: Any) -> str:
    if not isinstance(v, str) or not ACCOUNT_ID_RE.match(v):
        raise ValueError("must be an account id (1-64 letters, digits, '_', '.' or '-')")
    return v


MARKET_DATA_FIELDS: dict[str, Callable[[Any], Any]] = {
    "stream_account": _optional(_account_id),
    "stock_feed": _choice(STOCK_FEEDS),
    "option_feed": _choice(OPTION_FEEDS),
    "default_symbols": _symbol_list,
    "max_quote_age_ms": _int_in("market_data.max_quote_age_ms"),
    "unsubscribe_grace_seconds": _float_in("market_data.unsubscribe_grace_seconds"),
    "max_symbols_per_connection": _int_in("market_data.max_symbols_per_connection"),
    "max_connections_per_user": _int_in("market_data.max_connections_per_user"),
    "max_connections_per_ip": _int_in("market_data.max_connections_per_ip"),
    "max_backlog": _int_in("market_data.max_backlog"),
    "heartbeat_seconds": _float_in("market_data.heartbeat_seconds"),
    "stall_seconds": _float_in("market_data.stall_seconds"),
}


def _parse_market_data(raw: Any, c: _Collector) -> MarketDataConfig:
    return MarketDataConfig(**c.lenient(c.section(raw, "market_data"), "market_data", MARKET_DATA_FIELDS))


def _parse_jwt(raw: Any, c: _Collector) -> JwtConfig:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("jwt: expected a mapping")
    env_secret = os.environ.get("OPITIOS_JWT_SECRET_KEY")
    env_public = os.environ.get("OPITIOS_JWT_PUBLIC_KEY")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "algorithm":
            if value not in JWT_ALGORITHMS:
                raise ConfigError(f"jwt.algorithm: must be one of {', '.join(JWT_ALGORITHMS)}; got {value!r}")
            values[key] = value
        elif key in ("secret_key", "public_key", "private_key"):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"jwt.{key}: expected text")
            values[key] = value or None
        elif key == "leeway_seconds":
            try:
                values[key] = _int_in("jwt.leeway_seconds")(value)
            except ValueError as exc:  # the default (no leeway) is the strict, safe one
                c.error("jwt.leeway_seconds", f"{exc}; using the default")
        else:
            raise ConfigError(f"jwt.{key}: unknown key")
    if env_secret:
        values["secret_key"] = env_secret
    if env_public:
        values["public_key"] = env_public
    jwt = JwtConfig(**values)
    if jwt.algorithm == "RS256" and jwt.secret_key and not jwt.public_key:
        raise ConfigError("jwt.public_key: RS256 verifies with a public key; secret_key is not used for RS256")
    if jwt.algorithm != "RS256" and jwt.secret_key and len(jwt.secret_key) < 32:
        raise ConfigError(f"jwt.secret_key: must be at least 32 characters for {jwt.algorithm}")
    return jwt


def _parse_accounts(raw: Any, c: _Collector) -> tuple[dict[str, AccountConfig], dict[str, str]]:
    accounts: dict[str, AccountConfig] = {}
    errors: dict[str, str] = {}
    key_owner: dict[str, str] = {}  # api_key -> the first account that uses it
    for account_id, entry in c.section(raw, "accounts").items():
        path = f"accounts.{account_id}"
        problems: list[str] = []
        dropped: list[str] = []
        if not isinstance(account_id, str) or not ACCOUNT_ID_RE.match(account_id):
            problems.append(f"{path}: account id must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(entry, dict):
            problems.append(f"{path}: expected a mapping")
            entry = {}
        values: dict[str, Any] = {}
        for key, value in entry.items():
            if key in ACCOUNT_OVERRIDES:
                try:
                    values[key] = ACCOUNT_OVERRIDES[key](value)
                except ValueError as exc:
                    dropped.append(f"{path}.{key}: {exc}; the override is dropped")
                continue
            if key not in ACCOUNT_FIELDS:
                problems.append(f"{path}.{key}: unknown key")
                continue
            try:
                values[key] = ACCOUNT_FIELDS[key](value)
            except ValueError as exc:
                problems.append(f"{path}.{key}: {exc}")
        for required in ("api_key", "secret_key"):
            if required not in entry:
                problems.append(f"{path}.{required}: is required")
        first = key_owner.get(values.get("api_key", ""))
        if first is not None:
            # Two gateway accounts would drive one broker account: the first in the file keeps it.
            problems.append(f"{path}.api_key: the same api_key as accounts.{first}; one broker account, one gateway account")
        if problems:
            message = "; ".join(dict.fromkeys(problems))
            c.error(path, f"account not loaded: {message}")
            errors[str(account_id)] = message
            continue
        for text in dropped:
            c.error(text.split(": ", 1)[0], text.split(": ", 1)[1])
        key_owner[values["api_key"]] = account_id
        accounts[account_id] = AccountConfig(account_id=account_id, dropped=tuple(dropped), **values)
    return accounts, errors


APPRISE_URL_RE = re.compile(r"^[a-z][a-z0-9+.-]{1,31}://\S+$", re.IGNORECASE)


def _parse_metrics(raw: Any, c: _Collector) -> MetricsConfig:
    values: dict[str, Any] = {}
    for key, value in c.section(raw, "metrics").items():
        if key == "token":
            # Never echo it. A short token is refused rather than guessed at: loopback-only applies.
            if value is None or value == "":
                continue
            if not isinstance(value, str) or len(value) < 16 or any(ch.isspace() for ch in value):
                c.error("metrics.token", "must be text of at least 16 characters without spaces; only loopback may scrape")
                continue
            values["token"] = value
        elif key == "account_labels":
            try:
                ids = _str_list(value)
            except ValueError:
                c.error("metrics.account_labels", "expected a list of account ids; no account gets its own label")
                continue
            bad = [i for i in ids if not ACCOUNT_ID_RE.match(i)]
            if bad or len(ids) > 50:
                c.error("metrics.account_labels", "at most 50 valid account ids; no account gets its own label")
                continue
            values["account_labels"] = ids
        else:
            c.error(f"metrics.{key}", "unknown key; ignored")
    env_token = os.environ.get("OPITIOS_METRICS_TOKEN")
    if env_token:
        values["token"] = env_token
    return MetricsConfig(**values)


def _parse_alerts(raw: Any, c: _Collector) -> AlertsConfig:
    values: dict[str, Any] = {}
    for key, value in c.section(raw, "alerts").items():
        if key == "urls":
            if not isinstance(value, list):
                c.error("alerts.urls", "expected a list of Apprise URLs; no alert is sent")
                continue
            urls = []
            for i, url in enumerate(value):
                # The URL is not echoed: it usually carries a webhook token.
                if not isinstance(url, str) or not APPRISE_URL_RE.match(url.strip()):
                    c.error(f"alerts.urls[{i}]", "not an Apprise URL (scheme://...); this one is skipped")
                    continue
                urls.append(url.strip())
            values["urls"] = urls
        elif key in ("repeat_minutes", "stream_down_seconds"):
            try:
                values[key] = _int_in(f"alerts.{key}")(value)
            except ValueError as exc:
                c.error(f"alerts.{key}", f"{exc}; using the default")
        else:
            c.error(f"alerts.{key}", "unknown key; ignored")
    return AlertsConfig(**values)


SECTIONS = ("jwt", "trading", "rate_limits", "api", "sell_module", "market_data", "metrics", "alerts", "accounts")


def parse_config(data: Any, *, source: Path | None, demo: bool) -> OpitiosConfig:
    c = _Collector()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    for key in data:
        if key not in SECTIONS:
            c.error(str(key), f"unknown section; expected one of {', '.join(SECTIONS)}")
    jwt = _parse_jwt(data.get("jwt"), c)
    trading = _parse_trading(data.get("trading"), c)
    rate_limits = _parse_rate_limits(data.get("rate_limits"), c)
    api = _parse_api(data.get("api"), c)
    sell_module = _parse_sell_module(data.get("sell_module"), c)
    market_data = _parse_market_data(data.get("market_data"), c)
    metrics = _parse_metrics(data.get("metrics"), c)
    alerts = _parse_alerts(data.get("alerts"), c)
    accounts, account_errors = _parse_accounts(data.get("accounts"), c)
    return OpitiosConfig(
        source=source,
        demo=demo,
        jwt=jwt,
        trading=trading,
        rate_limits=rate_limits,
        api=api,
        sell_module=sell_module,
        market_data=market_data,
        metrics=metrics,
        alerts=alerts,
        accounts=accounts,
        account_errors=account_errors,
        config_errors=c.errors,
    )


def log_config_errors(config: OpitiosConfig) -> None:
    """Log each config error once. Called by ``sync_accounts``, which ``make run`` runs once at
    start; the web, worker and beat processes parse the same file without logging it again."""
    for text in config.config_errors:
        logger.error("config error %s", text)


def read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(f"{path}: invalid YAML at {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


def config_path(base_dir: Path) -> tuple[Path, bool]:
    """The file to read and whether that means demo mode."""
    name, demo = _config_file(base_dir)
    return Path(name), demo


def _config_file(base_dir: Path) -> tuple[str, bool]:
    """``config_path`` as a string: every request checks the file, and building a Path costs more than the stat."""
    explicit = os.environ.get("OPITIOS_SECRETS")
    if explicit:
        return explicit, False
    path = base_dir / "secrets.yml"
    if path.exists():
        return str(path), False
    return str(base_dir / "secrets.example.yml"), True


def load_config(base_dir: Path) -> OpitiosConfig:
    path, demo = config_path(base_dir)
    if not path.exists():
        raise ConfigError(f"{path}: configuration file not found (set OPITIOS_SECRETS or create secrets.yml)")
    return parse_config(read_yaml(path), source=path, demo=demo)


_cache: dict[str, tuple[tuple[int, int], OpitiosConfig]] = {}


# Inside ``config_per_request`` (RequestTimingMiddleware): the configuration this request read first, so one
# request sees one configuration and checks the file once instead of at every call (five per order).
_request_config: contextvars.ContextVar[list[OpitiosConfig] | None] = contextvars.ContextVar(
    "opitios_request_config", default=None)


@contextmanager
def config_per_request() -> Iterator[None]:
    token = _request_config.set([])
    try:
        yield
    finally:
        _request_config.reset(token)


def current_config() -> OpitiosConfig:
    """The configuration as the file says now: re-read when the file changes, so a
    ``sync_accounts`` re-sync or an edited threshold applies without a restart (from the next request on,
    inside a request: ``config_per_request``)."""
    memo = _request_config.get()
    if memo:
        return memo[0]
    config = _config_from_file()
    if memo is not None:
        memo.append(config)
    return config


def _config_from_file() -> OpitiosConfig:
    from django.conf import settings

    key, demo = _config_file(settings.BASE_DIR)
    try:
        stat = os.stat(key)  # about 1 µs; Path.stat about 5 (every request checks the file)
    except OSError:
        return settings.OPITIOS
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    path = Path(key)
    try:
        config = parse_config(read_yaml(path), source=path, demo=demo)
    except ConfigError as exc:
        logger.error("config reload failed, keeping the previous configuration: %s", exc)
        return cached[1] if cached else settings.OPITIOS
    _cache[key] = (stamp, config)
    return config
