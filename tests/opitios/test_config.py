"""The secrets.yml loader (docs/configuration.md): every validation rule."""
import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from opitios import config as config_module
from opitios.config import (
    DEFAULT_RATE_LIMITS,
    ConfigError,
    SellModuleConfig,
    TradingConfig,
    config_path,
    current_config,
    load_config,
    parse_config,
)
from opitios.limits import RANGES

REPO = Path(__file__).resolve().parents[2]
GOOD_ACCOUNT = {"api_key": "PKTESTKEY00000000001", "secret_key": "s3cret-value-0001", "paper_trading": True}


def parse(data):
    return parse_config(data, source=Path("secrets.yml"), demo=False)


@pytest.fixture(autouse=True)
def _no_env_overrides(monkeypatch):
    for name in ("OPITIOS_SECRETS", "OPITIOS_JWT_SECRET_KEY", "OPITIOS_JWT_PUBLIC_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- defaults ---------------------------------------------------------------------------


def test_an_empty_file_gives_every_default():
    config = parse(None)
    assert config.trading == TradingConfig()
    assert config.trading.minimum_balance == Decimal("5000")
    assert config.trading.balance_max_age_seconds == 60
    assert config.trading.routing_strategy == "round_robin"
    assert config.trading.max_order_qty is None
    assert config.sell_module == SellModuleConfig()
    assert config.rate_limits == DEFAULT_RATE_LIMITS
    assert config.api.market_data_public is True
    assert config.api.allowed_origins == []
    assert config.jwt.algorithm == "HS256"
    assert config.jwt.leeway_seconds == 0
    assert config.accounts == {}
    assert config.config_errors == []


def test_valid_values_are_typed():
    config = parse(
        {
            "trading": {"minimum_balance": "2500.50", "balance_check_enabled": "no", "max_order_notional": 100000},
            "sell_module": {"enabled": True, "check_interval": 2.5, "strategy_one": {"trailing_stop_rate": 0.95}},
            "rate_limits": {"stock_quote": "30 / min", "custom_scope": "5/s"},
            "api": {"allowed_origins": ["https://desk.example.com"]},
        }
    )
    assert config.trading.minimum_balance == Decimal("2500.50")
    assert config.trading.balance_check_enabled is False
    assert config.trading.max_order_notional == Decimal("100000")
    assert config.sell_module.enabled is True
    assert config.sell_module.check_interval == 2.5
    assert config.sell_module.strategy_one.trailing_stop_rate == Decimal("0.95")
    assert config.rate_limits["stock_quote"] == "30/min"
    assert config.rate_limits["custom_scope"] == "5/s"
    assert config.api.allowed_origins == ["https://desk.example.com"]
    assert config.config_errors == []


def test_the_example_file_loads_without_errors():
    config = parse_config(config_module.read_yaml(REPO / "secrets.example.yml"), source=None, demo=True)
    assert config.config_errors == []
    assert set(config.accounts) == {"account_001", "account_002", "account_003", "account_004"}
    assert config.accounts["account_004"].paper_trading is False
    assert config.accounts["account_004"].minimum_balance == Decimal("10000")


# --- lenient sections: logged, replaced by the default, listed with the key path ---------

TRADING_INVALID = [
    ("minimum_balance", "lots"),
    ("minimum_balance", -1),
    ("balance_check_enabled", "maybe"),
    ("balance_refresh_seconds", 0),
    ("balance_refresh_coalesce_s", -1),
    ("balance_refresh_coalesce_s", "soon"),
    ("balance_refresh_coalesce_s", 301),
    ("balance_max_age_seconds", -5),
    ("balance_check_timeout_ms", "fast"),
    ("balance_fallback_max_age_seconds", 1.5),
    ("balance_check_fail_closed", 3),
    ("block_reducing_sells", "sometimes"),
    ("routing_strategy", "fastest"),
    ("max_symbols_per_request", 0),
    ("max_order_qty", 0),
    ("max_order_notional", "much"),
]


@pytest.mark.parametrize(("key", "value"), TRADING_INVALID)
def test_invalid_trading_value_is_reported_and_replaced_by_its_default(key, value):
    sibling = ("routing_strategy", "hash") if key != "routing_strategy" else ("max_symbols_per_request", 7)
    config = parse({"trading": {key: value, sibling[0]: sibling[1]}})
    assert getattr(config.trading, key) == getattr(TradingConfig(), key)
    assert len(config.config_errors) == 1
    assert config.config_errors[0].startswith(f"trading.{key}: ")
    assert "using the default" in config.config_errors[0]
    assert getattr(config.trading, sibling[0]) == sibling[1]  # the valid sibling still applies


SELL_INVALID = [
    ("enabled", "perhaps"),
    ("check_interval", 0),
    ("order_cancel_minutes", -1),
    ("cancel_scope", "everything"),
    ("sell_order_type", "stop"),
    ("max_exit_attempts", 0),
    ("close_before_market_close_minutes", -1),
    ("zero_day_handling", "panic"),
    ("manage_all_option_positions", "yes please"),
    ("tick_eval_interval_ms", -1),
    ("tick_eval_interval_ms", 60001),
    ("tick_eval_interval_ms", "fast"),
]


@pytest.mark.parametrize(("key", "value"), SELL_INVALID)
def test_invalid_sell_module_value_is_reported_and_replaced_by_its_default(key, value):
    config = parse({"sell_module": {key: value}})
    assert getattr(config.sell_module, key) == getattr(SellModuleConfig(), key)
    assert [e.split(":")[0] for e in config.config_errors] == [f"sell_module.{key}"]


@pytest.mark.parametrize(
    ("section", "value", "path"),
    [
        ({"strategy_one": {"profit_rate": 0}}, "profit_rate", "sell_module.strategy_one.profit_rate"),
        ({"strategy_one": {"stop_loss_rate": "low"}}, "stop_loss_rate", "sell_module.strategy_one.stop_loss_rate"),
        ({"position_time_limit": {"max_hold_minutes": 0}}, "max_hold_minutes", "sell_module.position_time_limit.max_hold_minutes"),
        ({"order_cancel_minutes_by_type": {"limit": -2}}, "limit", "sell_module.order_cancel_minutes_by_type.limit"),
        ({"order_cancel_minutes_by_type": {"iceberg": 2}}, "iceberg", "sell_module.order_cancel_minutes_by_type.iceberg"),
        ({"strategy_one": "fast"}, None, "sell_module.strategy_one"),
    ],
)
def test_nested_sell_module_errors_name_the_full_key_path(section, value, path):
    config = parse({"sell_module": section})
    assert [e.split(": ")[0] for e in config.config_errors] == [path]
    assert config.sell_module.strategy_one == SellModuleConfig().strategy_one
    assert config.sell_module.position_time_limit == SellModuleConfig().position_time_limit
    assert config.sell_module.order_cancel_minutes_by_type == {}


def test_per_type_cancel_minutes_apply_with_a_fallback():
    config = parse({"sell_module": {"order_cancel_minutes": 3, "order_cancel_minutes_by_type": {"limit": 1.5}}})
    assert config.sell_module.cancel_minutes_for("limit") == 1.5
    assert config.sell_module.cancel_minutes_for("market") == 3.0


def test_a_section_that_is_not_a_mapping_falls_back_to_defaults():
    config = parse({"trading": ["minimum_balance", 1], "sell_module": "on"})
    assert config.trading == TradingConfig()
    assert config.sell_module == SellModuleConfig()
    assert [e.split(": ")[0] for e in config.config_errors] == ["trading", "sell_module"]


def test_invalid_rate_limit_and_api_values_keep_their_defaults():
    config = parse({"rate_limits": {"stock_quote": "lots", "stock_order": 5}, "api": {"market_data_public": "sure"}})
    assert config.rate_limits["stock_quote"] == "60/min"
    assert config.rate_limits["stock_order"] == "10/min"
    assert config.api.market_data_public is True
    assert sorted(e.split(": ")[0] for e in config.config_errors) == [
        "api.market_data_public",
        "rate_limits.stock_order",
        "rate_limits.stock_quote",
    ]


# --- unknown keys ---------------------------------------------------------------------------


def test_unknown_keys_and_sections_are_reported_and_ignored():
    config = parse({"trading": {"minimum_balnce": 1}, "sell_module": {"turbo": True}, "extras": {}})
    assert config.trading.minimum_balance == Decimal("5000")
    paths = sorted(e.split(": ")[0] for e in config.config_errors)
    assert paths == ["extras", "sell_module.turbo", "trading.minimum_balnce"]
    assert all("unknown" in e for e in config.config_errors)


# --- accounts ---------------------------------------------------------------------------------


def good(n: int) -> dict:
    return {**GOOD_ACCOUNT, "api_key": f"PKTESTKEY{n:011d}"}


def test_a_broken_account_is_skipped_while_the_others_load():
    config = parse(
        {
            "accounts": {
                "account_001": good(1),
                "account_002": {"api_key": "PKTESTKEY00000000002"},  # no secret_key
                "account_003": {**good(3), "paper_trading": "many"},
                "account_004": {**good(4), "colour": "blue"},
                "account 005": good(5),
                "account_006": "not a mapping",
                "account_007": {**good(7), "rate_limit_per_minute": 50, "minimum_balance": 100},
            }
        }
    )
    assert set(config.accounts) == {"account_001", "account_007"}
    assert config.accounts["account_007"].rate_limit_per_minute == 50
    assert config.accounts["account_007"].minimum_balance == Decimal("100")
    assert config.accounts["account_001"].rate_limit_per_minute == 200
    errors = config.account_errors
    assert set(errors) == {"account_002", "account_003", "account_004", "account 005", "account_006"}
    assert "accounts.account_002.secret_key" in errors["account_002"]
    assert "accounts.account_003.paper_trading" in errors["account_003"]
    assert "accounts.account_004.colour: unknown key" in errors["account_004"]
    assert "account id" in errors["account 005"]
    assert "expected a mapping" in errors["account_006"]
    assert any(e.startswith("accounts.account_002: account not loaded") for e in config.config_errors)


def test_account_errors_and_repr_never_show_credentials():
    config = parse({"accounts": {"a1": {**GOOD_ACCOUNT, "enabled": "nah"}, "a2": GOOD_ACCOUNT}})
    assert "s3cret-value-0001" not in repr(config.account_errors)
    assert "s3cret-value-0001" not in repr(config.accounts["a2"])
    assert "PKTESTKEY00000000001" not in repr(config.accounts["a2"])


# --- jwt: errors stop the start -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("jwt", "message"),
    [
        ({"algorithm": "none"}, "jwt.algorithm"),
        ({"algorithm": "ES256"}, "jwt.algorithm"),
        ({"secret_key": "too-short"}, "jwt.secret_key: must be at least 32 characters"),
        ({"algorithm": "HS512", "secret_key": "x" * 31}, "jwt.secret_key"),
        ({"algorithm": "RS256", "secret_key": "x" * 40}, "jwt.public_key"),
        ({"secret_key": 12345}, "jwt.secret_key: expected text"),
        ({"issuer": "me"}, "jwt.issuer: unknown key"),
        ("HS256", "jwt: expected a mapping"),
    ],
)
def test_jwt_errors_raise_config_error(jwt, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        parse({"jwt": jwt})


def test_jwt_keys_from_the_environment_win(monkeypatch):
    monkeypatch.setenv("OPITIOS_JWT_SECRET_KEY", "e" * 40)
    config = parse({"jwt": {"secret_key": "f" * 40, "leeway_seconds": 5}})
    assert config.jwt.secret_key == "e" * 40
    assert config.jwt.leeway_seconds == 5
    assert config.jwt.has_key()
    assert config.jwt.simple_jwt_settings(Path("/nonexistent"), generate=False)["SIGNING_KEY"] == "e" * 40


def test_a_missing_jwt_key_is_generated_only_when_allowed(tmp_path):
    config = parse({})
    assert not config.jwt.has_key()
    assert config.jwt.simple_jwt_settings(tmp_path, generate=False)["SIGNING_KEY"] == ""
    generated = config.jwt.simple_jwt_settings(tmp_path, generate=True)["SIGNING_KEY"]
    assert len(generated) >= 32
    assert config.jwt.simple_jwt_settings(tmp_path, generate=True)["SIGNING_KEY"] == generated  # kept under var/


# --- files ------------------------------------------------------------------------------------


def test_broken_yaml_names_the_file_and_line(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yml"
    path.write_text("trading:\n  minimum_balance: 5000\n  routing_strategy: [round_robin\naccounts: {}\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4" in message


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "secrets.yml"
    path.write_text("- just\n- a list\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path)


def test_opitios_secrets_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / "elsewhere" / "prod.yml"
    path.parent.mkdir()
    path.write_text("trading:\n  minimum_balance: 1234\n")
    (tmp_path / "secrets.yml").write_text("trading:\n  minimum_balance: 9999\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    config = load_config(tmp_path)
    assert config.source == path
    assert config.demo is False
    assert config.trading.minimum_balance == Decimal("1234")


def test_a_missing_opitios_secrets_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("OPITIOS_SECRETS", str(tmp_path / "missing.yml"))
    with pytest.raises(ConfigError, match="missing.yml: configuration file not found"):
        load_config(tmp_path)


def test_secrets_yml_in_the_base_dir_is_the_default(tmp_path):
    (tmp_path / "secrets.yml").write_text("trading:\n  minimum_balance: 42\n")
    (tmp_path / "secrets.example.yml").write_text("trading:\n  minimum_balance: 1\n")
    assert config_path(tmp_path) == (tmp_path / "secrets.yml", False)
    assert load_config(tmp_path).trading.minimum_balance == Decimal("42")


def test_demo_mode_when_there_is_no_secrets_yml(tmp_path):
    (tmp_path / "secrets.example.yml").write_text("accounts:\n  demo_1:\n    api_key: PKDEMO0000000000009\n    secret_key: demo-secret-9\n")
    config = load_config(tmp_path)
    assert config.demo is True
    assert config.source == tmp_path / "secrets.example.yml"
    assert set(config.accounts) == {"demo_1"}


def test_current_config_rereads_the_file_when_it_changes(tmp_path, monkeypatch, caplog):
    path = tmp_path / "secrets.yml"
    path.write_text("trading:\n  minimum_balance: 100\n")
    monkeypatch.setenv("OPITIOS_SECRETS", str(path))
    monkeypatch.setattr(config_module, "_cache", {})
    first = current_config()
    assert first.trading.minimum_balance == Decimal("100")
    assert current_config() is first  # unchanged file: no re-parse

    path.write_text("trading:\n  minimum_balance: 250\n  routing_strategy: wrong\n")
    second = current_config()
    assert second.trading.minimum_balance == Decimal("250")
    assert [e.split(": ")[0] for e in second.config_errors] == ["trading.routing_strategy"]

    # a broken edit keeps the last good configuration, with an error in the log
    path.write_text("trading: [unclosed\n")
    os.utime(path, ns=(1, 1))
    with caplog.at_level(logging.ERROR, logger="opitios.config"):
        assert current_config() is second
    assert "config reload failed" in caplog.text


# --- ranges: one table for every numeric setting ------------------------------------------------------


def _nested(path: str, value) -> dict:
    data: dict = {}
    node = data
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return data


SECTION_RANGES = [key for key in RANGES if key.split(".")[0] in ("trading", "sell_module", "jwt")]


@pytest.mark.parametrize("key", SECTION_RANGES)
@pytest.mark.parametrize("side", ["below", "above"])
def test_every_numeric_setting_outside_its_range_is_an_error_naming_path_and_range(key, side):
    r = RANGES[key]
    value = (r.low if r.low_open else r.low - 1) if side == "below" else r.high + 1
    config = parse(_nested(key, str(value)))
    assert config.config_errors == [f"{key}: must be {r.describe()}; got {str(value)!r}; using the default"]
    assert config.accounts == {}


@pytest.mark.parametrize("key", [k for k in RANGES if k.split(".")[0] in ("trading", "sell_module")])
def test_every_numeric_setting_at_its_bounds_is_accepted(key):
    r = RANGES[key]
    for value in ([] if r.low_open else [r.low]) + ([] if r.high_open else [r.high]):
        assert parse(_nested(key, str(value))).config_errors == [], (key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("minimum_balance", 10**12), ("minimum_balance", "0.001"), ("minimum_balance", "NaN"), ("rate_limit_per_minute", 0),
     ("rate_limit_per_minute", 10**7), ("max_connections", 0), ("max_connections", 1001), ("max_connections", "many")],
)
def test_an_invalid_account_override_is_dropped_and_the_account_flagged(key, value):
    config = parse({"accounts": {"a1": {**GOOD_ACCOUNT, key: value}}})
    account = config.accounts["a1"]
    assert getattr(account, key) == {"minimum_balance": None, "rate_limit_per_minute": 200, "max_connections": 10}[key]
    assert len(account.dropped) == 1 and account.dropped[0].startswith(f"accounts.a1.{key}: must be ")
    assert config.config_errors == [account.dropped[0]] and config.account_errors == {}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"api_key": "PK" + "A" * 9998}, "accounts.a2.api_key: must be at most 256 characters; got 10000"),
        ({"secret_key": "s" * 257}, "accounts.a2.secret_key: must be at most 256 characters; got 257"),
        ({"api_key": "PK KEY WITH SPACES"}, "accounts.a2.api_key: must not contain spaces or control characters"),
        ({"name": "n" * 201}, "accounts.a2.name: must be at most 200 characters; got 201"),
        ({"tier": "t" * 65}, "accounts.a2.tier: must be at most 64 characters; got 65"),
        ({"api_key": GOOD_ACCOUNT["api_key"]}, "accounts.a2.api_key: the same api_key as accounts.a1"),
    ],
)
def test_an_invalid_account_entry_is_not_loaded_and_never_echoes_a_credential(entry, message):
    config = parse({"accounts": {"a1": GOOD_ACCOUNT, "a2": {**good(2), **entry}}})
    assert set(config.accounts) == {"a1"}
    assert config.account_errors["a2"].startswith(message)
    assert "A" * 50 not in repr(config) and "s" * 257 not in repr(config)


@pytest.mark.parametrize("rate", ["0/min", "-5/min", "1000000001/s"])
def test_an_absurd_rate_is_an_error_and_the_default_applies(rate):
    config = parse({"rate_limits": {"stock_order": rate}})
    assert config.rate_limits["stock_order"] == DEFAULT_RATE_LIMITS["stock_order"]
    assert config.config_errors == [
        f"rate_limits.stock_order: the count must be {RANGES['rate_limits.count'].describe()}; got {rate!r}; using the default"]
