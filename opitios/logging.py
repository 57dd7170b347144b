"""Logging (docs/operations.md, "Logs"): one configuration for web, workers and beat.

- ``logs/app/opitios.log`` (INFO+) and ``logs/errors/errors.log`` (ERROR+), rotated daily
  and gzipped, kept 30 and 90 days by default;
- format ``time(ms, UTC) LEVEL logger | message``;
- ``SecretMaskingFilter`` masks credentials in messages and tracebacks.
"""
from __future__ import annotations

import fcntl
import gzip
import logging
import logging.config
import logging.handlers
import os
import re
import shutil
import threading
import time
from pathlib import Path

FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s | %(message)s"
DATEFMT = "%Y-%m-%d %H:%M:%S"
MASK = "****"

# Known secret values registered at runtime (decrypted account credentials, JWT keys).
_known_secrets: set[str] = set()
_known_lock = threading.Lock()
_known_re: re.Pattern | None = None

_PATTERNS = [
    # key=value / key: value / "key": "value" for credential-looking keys
    re.compile(
        r"""(?ix)
        (["']?(?:api[_-]?key|secret[_-]?key|secret|password|passwd|token|authorization|
        apca-api-key-id|apca-api-secret-key|fernet[_-]?keys?|signing[_-]?key)["']?\s*[:=]\s*)
        (?:(bearer\s+))?
        (["']?)([^\s"',}]+)"""
    ),
    # Alpaca key ids: PK/AK/CK + uppercase alphanumerics (20 characters at Alpaca; alpacasim's demo
    # ids are 15-19). Not an OCC option symbol with such a root (AKAM260116C00190000): see _key_id.
    re.compile(r"\b(?:PK|AK|CK)[A-Z0-9]{13,}\b"),
    re.compile(r"\beyJ[\w-]+\.[\w-]+\.[\w-]+"),  # JWTs
]


# Words of a message that follow a field name ("secret_key: is required"): never a credential's value.
_PROSE = frozenset({
    "is", "are", "was", "were", "be", "has", "have", "must", "should", "may", "can", "cannot", "the", "a", "an",
    "not", "no", "none", "null", "empty", "missing", "required", "expected", "unknown", "invalid", "changed",
    "replaced", "rotated", "set", "unset", "too", "at", "of", "only", "never", "given",
})


def _mask_value(match: re.Match) -> str:
    if match.group(4).lower() in _PROSE:
        return match.group(0)  # a message about the field, not its value
    return f"{match.group(1)}{match.group(2) or ''}{match.group(3)}{MASK}"


# Compact OCC option symbols (ROOT, an optional adjustment digit, YYMMDD, C|P, strike x 1000).
OCC_SYMBOL_RE = re.compile(r"[A-Z]{1,6}\d?\d{6}[CP]\d{8}")


def _key_id(match: re.Match) -> str:
    return match.group(0) if OCC_SYMBOL_RE.fullmatch(match.group(0)) else MASK


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it appears in a log line."""
    register_secrets([value])


def register_secrets(values) -> None:
    """Register many secrets with one regex compile (a pool of 1000 accounts registers 2000)."""
    global _known_re
    fresh = {v for v in values if v and len(v) >= 6} - _known_secrets
    if not fresh:
        return
    with _known_lock:
        _known_secrets.update(fresh)
        _known_re = re.compile("|".join(re.escape(s) for s in sorted(_known_secrets, key=len, reverse=True)))


def mask_secrets(text: str) -> str:
    if not text:
        return text
    known = _known_re
    if known is not None:
        text = known.sub(MASK, text)
    # Each pattern needs a literal its match must contain: skip the scan when it is absent
    # (audit data runs every string value through here, most of them short field values).
    if ":" in text or "=" in text:
        text = _PATTERNS[0].sub(_mask_value, text)
    if "K" in text:
        text = _PATTERNS[1].sub(_key_id, text)
    if "eyJ" in text:
        text = _PATTERNS[2].sub(MASK, text)
    return text


class SecretMaskingFilter(logging.Filter):
    """Renders the message (and any traceback) once, masked, before any handler formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_masked", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg = mask_secrets(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_secrets(record.stack_info)
        record._masked = True
        return True


def _gzip_namer(name: str) -> str:
    return name + ".gz"


def _gzip_rotator(source: str, dest: str) -> None:
    partial = f"{dest}.partial"
    with open(source, "rb") as src, gzip.open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.replace(partial, dest)
    os.remove(source)


class UTCFormatter(logging.Formatter):
    converter = time.gmtime


class GzipTimedRotatingFileHandler(logging.handlers.TimedRotatingFileHandler):
    """Daily rotation (UTC midnight), gzip, and retention by backupCount.

    Several processes (gunicorn workers, Celery worker and beat) append to the same file,
    and each one's handler reaches midnight on its own. The stdlib rollover deletes an
    existing archive of the day before rotating, so the second process would overwrite
    the first one's archive with the new day's lines. Here the rollover runs under a
    cross-process lock, and only the first process rotates; the others just reopen.
    """

    def __init__(self, filename: str, retention_days: int = 30, **kwargs) -> None:
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("when", "midnight")
        kwargs.setdefault("utc", True)
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("delay", True)
        super().__init__(filename, backupCount=retention_days, **kwargs)
        self.namer = _gzip_namer
        self.rotator = _gzip_rotator

    def doRollover(self) -> None:
        if self.stream:
            self.stream.close()
            self.stream = None
        now = int(time.time())
        period_start = self.rolloverAt - self.interval
        stamp = time.strftime(self.suffix, time.gmtime(period_start) if self.utc else time.localtime(period_start))
        archive = self.rotation_filename(f"{self.baseFilename}.{stamp}")
        with open(f"{self.baseFilename}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if not os.path.exists(archive) and os.path.exists(self.baseFilename):
                    self.rotate(self.baseFilename, archive)
                if self.backupCount > 0:
                    for old in self.getFilesToDelete():
                        try:
                            os.remove(old)
                        except FileNotFoundError:
                            pass  # another process removed it
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        if not self.delay:
            self.stream = self._open()
        rollover_at = self.computeRollover(now)
        while rollover_at <= now:
            rollover_at += self.interval
        self.rolloverAt = rollover_at


def build_logging_config(
    log_dir: Path,
    *,
    console: bool,
    app_retention_days: int = 30,
    error_retention_days: int = 90,
) -> dict:
    handlers: dict = {
        "app_file": {
            "()": "opitios.logging.GzipTimedRotatingFileHandler",
            "filename": str(log_dir / "app" / "opitios.log"),
            "retention_days": app_retention_days,
            "level": "INFO",
            "formatter": "standard",
            "filters": ["mask"],
        },
        "error_file": {
            "()": "opitios.logging.GzipTimedRotatingFileHandler",
            "filename": str(log_dir / "errors" / "errors.log"),
            "retention_days": error_retention_days,
            "level": "ERROR",
            "formatter": "standard",
            "filters": ["mask"],
        },
        "console": {
            "class": "logging.StreamHandler",
            "level": "INFO",
            "formatter": "standard",
            "filters": ["mask"],
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"mask": {"()": "opitios.logging.SecretMaskingFilter"}},
        "formatters": {"standard": {"()": "opitios.logging.UTCFormatter", "format": FORMAT, "datefmt": DATEFMT}},
        "handlers": handlers,
        "root": {"level": "INFO", "handlers": ["app_file", "error_file"] + (["console"] if console else [])},
        "loggers": {
            "django.server": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "celery": {"level": "INFO"},
        },
    }


def configure(config: dict) -> None:
    logging.config.dictConfig(config)
