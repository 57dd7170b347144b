"""Logging (docs/operations.md, "Logs"): secret masking, the two files, daily gzip rotation with retention."""
import gzip
import logging
import os
import time

import pytest

from opitios.logging import (
    MASK,
    GzipTimedRotatingFileHandler,
    SecretMaskingFilter,
    build_logging_config,
    configure,
    mask_secrets,
    register_secret,
)

ALPACA_KEY_ID = "PKZ3XQ8M2N7B4V6C1L0A"
ALPACA_SECRET = "Xq7vB2nM9kL4pR8sT1wY6zA3cD5eF0gH2jK4mN6p"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1c2VyX2lkIjoiYWxpY2UifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"connecting with key {ALPACA_KEY_ID}", ALPACA_KEY_ID),
        ("live key AKZ3XQ8M2N7B4V6C1L0A in use", "AKZ3XQ8M2N7B4V6C1L0A"),
        (f"secret_key={ALPACA_SECRET} account=account_001", ALPACA_SECRET),
        (f"config {{'secret_key': '{ALPACA_SECRET}'}}", ALPACA_SECRET),
        (f'{{"api_key": "{ALPACA_SECRET}"}}', ALPACA_SECRET),
        (f"password: {ALPACA_SECRET}", ALPACA_SECRET),
        (f"headers APCA-API-KEY-ID: {ALPACA_SECRET[:20]}", ALPACA_SECRET[:20]),
        (f"{{'APCA-API-SECRET-KEY': '{ALPACA_SECRET}'}}", ALPACA_SECRET),
        (f"Authorization: Bearer {JWT}", JWT),
        (f"token {JWT} rejected", JWT),
        (f"OPITIOS_FERNET_KEYS={ALPACA_SECRET}", ALPACA_SECRET),
    ],
)
def test_credentials_are_masked(line, secret):
    masked = mask_secrets(line)
    assert secret not in masked
    assert MASK in masked


@pytest.mark.parametrize("key_id", ["PKDEMO0000000000001", "AKDEMO0000000000004", "PKSIM0000000001", "PKTEST0000000000042",
                                    "CKZ3XQ8M2N7B4V6C1L0A"])
def test_alpaca_and_alpacasim_key_ids_are_masked(key_id):
    assert mask_secrets(f"client key={key_id} built") == f"client key={MASK} built"
    assert mask_secrets(key_id) == MASK


@pytest.mark.parametrize("symbol", ["AKAM260116C00190000", "PKG270115P00150000", "CKX260116C00005000", "AKAM1260116C00190000"])
def test_option_symbols_that_start_like_a_key_id_are_not_masked(symbol):
    line = f"order account=account_001 type=paper side=buy symbol={symbol} qty=1 status=accepted"
    assert mask_secrets(line) == line


@pytest.mark.parametrize(
    "line",
    [
        "config error accounts.account_002: account not loaded: accounts.account_002.secret_key: is required",
        "secret_key: is required",
        "accounts.a2.api_key: the same api_key as accounts.a1; one broker account, one gateway account",
        "accounts.a3.api_key: must be at most 256 characters; got 10000",
        "password: must be set",
    ],
)
def test_messages_about_a_credential_field_are_not_garbled(line):
    assert mask_secrets(line) == line  # field names and the words after them are not values


def test_a_value_after_a_field_name_is_still_masked_next_to_such_messages():
    line = f"secret_key: is required; secret_key: {ALPACA_SECRET}"
    assert mask_secrets(line) == f"secret_key: is required; secret_key: {MASK}"


def test_the_log_line_of_a_config_error_reads_as_written(caplog):
    from opitios.config import log_config_errors, parse_config

    config = parse_config({"accounts": {"account_002": {"api_key": "x" * 30}}}, source=None, demo=False)
    with caplog.at_level(logging.ERROR, logger="opitios.config"):
        log_config_errors(config)
    record = caplog.records[-1]
    SecretMaskingFilter().filter(record)
    assert record.getMessage().endswith("accounts.account_002.secret_key: is required")


def test_ordinary_lines_are_left_alone():
    line = "order account=account_001 type=paper side=buy symbol=AAPL qty=10 status=accepted total_ms=12.5"
    assert mask_secrets(line) == line


def test_registered_runtime_secrets_are_masked_anywhere():
    secret = "runtime-only-value-93f1c2"
    assert secret in mask_secrets(f"prefix{secret}suffix")
    register_secret(secret)
    assert mask_secrets(f"prefix{secret}suffix") == f"prefix{MASK}suffix"
    register_secret(None)
    register_secret("short")  # too short to mask safely: ignored
    assert mask_secrets("a short story") == "a short story"


def _record(msg, *args, exc_info=None):
    return logging.LogRecord("opitios.test", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_filter_masks_arguments_and_tracebacks():
    try:
        raise RuntimeError(f"broker refused secret_key={ALPACA_SECRET} for {ALPACA_KEY_ID}")
    except RuntimeError:
        import sys

        record = _record("call failed for %s", ALPACA_KEY_ID, exc_info=sys.exc_info())
    assert SecretMaskingFilter().filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError" in text and "Traceback" in text
    assert ALPACA_SECRET not in text
    assert ALPACA_KEY_ID not in text
    assert text.count(MASK) >= 3


@pytest.fixture
def log_dir(tmp_path):
    """The real configuration, pointed at a temporary directory; the suite's own logging restored after."""
    from django.conf import settings

    configure(build_logging_config(tmp_path, console=False, app_retention_days=3, error_retention_days=5))
    try:
        yield tmp_path
    finally:
        logging.shutdown()  # flush the temporary handlers before replacing them
        configure(settings.LOGGING)


def _flush():
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_the_file_handlers_write_masked_lines_to_app_and_errors(log_dir):
    log = logging.getLogger("opitios.test")
    log.info("info line secret_key=%s", ALPACA_SECRET)
    try:
        raise ValueError(f"bad header APCA-API-SECRET-KEY: {ALPACA_SECRET}")
    except ValueError:
        log.exception("request failed with %s", JWT)
    log.debug("debug lines are not kept")
    _flush()
    app = (log_dir / "app" / "opitios.log").read_text()
    errors = (log_dir / "errors" / "errors.log").read_text()
    assert "info line secret_key=****" in app
    assert "request failed with ****" in app and "request failed with ****" in errors
    assert "ValueError: bad header APCA-API-SECRET-KEY: ****" in errors
    assert "info line" not in errors  # errors.log holds ERROR and up
    assert "debug lines" not in app
    assert ALPACA_SECRET not in app + errors and JWT not in app + errors
    # time(ms) LEVEL logger | message
    first = app.splitlines()[0]
    date, clock, level, name, bar = first.split(" ")[:5]
    assert len(date) == 10 and len(clock) == 12 and clock[8] == "."
    assert (level, name, bar) == ("INFO", "opitios.test", "|")


def test_daily_rotation_gzips_and_keeps_the_retention(tmp_path):
    path = tmp_path / "app" / "opitios.log"
    handler = GzipTimedRotatingFileHandler(str(path), retention_days=2)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for day in ("2020-01-01", "2020-01-02", "2020-01-03"):
        with gzip.open(path.parent / f"opitios.log.{day}.gz", "wt") as old:
            old.write(day)
    try:
        handler.emit(_record("yesterday's line"))
        handler.rolloverAt = int(time.time()) - 1  # midnight has passed
        period_start = handler.rolloverAt - handler.interval  # the day the archive holds
        handler.emit(_record("today's line"))
    finally:
        handler.close()

    archive = path.parent / f"opitios.log.{time.strftime('%Y-%m-%d', time.gmtime(period_start))}.gz"
    with gzip.open(archive, "rt") as fh:
        assert fh.read() == "yesterday's line\n"
    assert path.read_text() == "today's line\n"
    archives = sorted(p.name for p in path.parent.glob("*.gz"))
    assert archives == ["opitios.log.2020-01-03.gz", archive.name]  # the two newest kept
    assert handler.rolloverAt > time.time()


def test_a_second_process_rolling_over_keeps_the_first_ones_archive(tmp_path):
    """Two processes write one file; each handler reaches midnight on its own."""
    path = tmp_path / "opitios.log"
    first = GzipTimedRotatingFileHandler(str(path), retention_days=5)
    second = GzipTimedRotatingFileHandler(str(path), retention_days=5)
    for handler in (first, second):
        handler.setFormatter(logging.Formatter("%(message)s"))
    try:
        first.emit(_record("from first, yesterday"))
        second.emit(_record("from second, yesterday"))
        past = int(time.time()) - 1
        first.rolloverAt = second.rolloverAt = past
        first.emit(_record("from first, today"))
        second.emit(_record("from second, today"))
    finally:
        first.close()
        second.close()
    [archive] = list(tmp_path.glob("*.gz"))
    with gzip.open(archive, "rt") as fh:
        assert fh.read().splitlines() == ["from first, yesterday", "from second, yesterday"]
    assert path.read_text().splitlines() == ["from first, today", "from second, today"]
    assert not list(tmp_path.glob("*.partial"))
    assert os.path.exists(f"{path}.lock")
