"""Settings shared by every environment.

Embedded defaults (no environment set): SQLite, kombu's filesystem broker and a
file cache, all under ``var/``. Production sets ``DATABASE_URL`` and ``REDIS_URL``.
"""
from pathlib import Path

import environ
from celery.schedules import crontab

from opitios.config import load_config
from opitios.logging import build_logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

VAR_DIR = Path(env.str("OPITIOS_VAR_DIR", default=str(BASE_DIR / "var")))
LOG_DIR = Path(env.str("OPITIOS_LOG_DIR", default=str(BASE_DIR / "logs")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

OPITIOS = load_config(BASE_DIR)
DEMO_MODE = OPITIOS.demo

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "audit",
    "accounts",
    "risk",
    "trading",
    "sellbot",
    "streaming",
    "lifecycle",
    "desk",
]

MIDDLEWARE = [
    # First: the receive time and the whole time to the response (opitios/request_timing.py).
    "opitios.request_timing.RequestTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files under gunicorn (collected into STATIC_ROOT by `make run`).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "opitios.urls"
WSGI_APPLICATION = "opitios.wsgi.application"
ASGI_APPLICATION = "opitios.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets readers and the single writer proceed together across gunicorn and
    # Celery processes; IMMEDIATE avoids lock-upgrade deadlocks between writers.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Keep each thread's connection between requests: opening one and running the PRAGMAs cost
    # about a millisecond per request (PostgreSQL below keeps its connections the same way).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
else:
    DATABASES["default"]["ENGINE"] = "opitios.postgresql"  # Django's, with a health check without a round trip
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    if env.bool("DB_PREPARED_STATEMENTS", default=True):
        # psycopg prepares only statements bound server-side: the two of each order that opitios.db's
        # fetchone_prepared runs with prepare=True. Every other query keeps Django's client-side binding,
        # which psycopg never prepares; the threshold, out of reach, prepares nothing by count. Off (None,
        # Django's default) behind a transaction-mode pgbouncer without max_prepared_statements
        # (docs/deployment.md).
        DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", 1_000_000)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache, Celery broker ----------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache with one client and pool per process (see the module).
            "BACKEND": "opitios.redis_cache.ReusedRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            # One Redis may serve several deployments (or test and bench databases): keys are
            # namespaced by database, so throttles, budgets and locks never leak between them.
            "KEY_PREFIX": env.str("OPITIOS_CACHE_PREFIX", default=Path(str(DATABASES["default"]["NAME"])).name),
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    # The hub (its own process) publishes each symbol's ticks once; every ASGI process receives them once and
    # hands them to its own clients in memory (Redis pub/sub, docs/streaming.md). Pub/sub channels ignore the
    # Redis db number: the prefix names the deployment's database, so two deployments on one Redis never mix.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 5, "socket_connect_timeout": 2}],
                       "prefix": "opitios-" + Path(str(DATABASES["default"]["NAME"])).name},
        }
    }
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
else:
    # A file cache is shared by every process on the host (web, worker, beat).
    CACHES = {
        "default": {
            "BACKEND": "opitios.cache.EmbeddedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }
    _broker_dir = VAR_DIR / "celery" / "broker"
    _broker_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "results").mkdir(parents=True, exist_ok=True)
    # No Redis: the hub runs inside the one ASGI process, so an in-process layer suffices.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10_000}}}
    CELERY_BROKER_URL = "filesystem://localhost//"  # the host is nominal; naming it avoids a warning per start
    # kombu's filesystem transport with a drain that stops consuming once a worker shuts down
    # (see the module): a SIGTERMed worker stops in about a second, not after the supervisor's SIGKILL.
    CELERY_BROKER_TRANSPORT = "opitios.filesystem_transport:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
    (VAR_DIR / "celery" / "control").mkdir(parents=True, exist_ok=True)
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'celery' / 'results'}"

CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The periodic work of every app, declared here (intervals come from secrets.yml through OPITIOS).
CELERY_BEAT_SCHEDULE: dict = {
    # Verify the whole audit hash chain once a day, off-hours; the result shows in the admin and /health/detailed.
    "audit.verify_chain": {"task": "audit.verify_chain", "schedule": crontab(hour=3, minute=17)},
    # Paper/live re-detection every 10 minutes; balances every trading.balance_refresh_seconds.
    "accounts.detect_types": {"task": "accounts.detect_types", "schedule": env.float("ACCOUNTS_DETECT_SECONDS", default=600.0)},
    "accounts.refresh_balances": {
        "task": "accounts.refresh_balances",
        "schedule": float(OPITIOS.trading.balance_refresh_seconds),
        "options": {"expires": float(OPITIOS.trading.balance_refresh_seconds)},
    },
}

# --- Sell bot --------------------------------------------------------------
# Beat reads check_interval at start; each sweep message expires after one interval.
_sell_interval = OPITIOS.sell_module.check_interval
CELERY_BEAT_SCHEDULE["sellbot.sweep"] = {"task": "sellbot.sweep", "schedule": _sell_interval, "options": {"expires": _sell_interval}}
CELERY_BEAT_SCHEDULE["sellbot.watchdog"] = {"task": "sellbot.watchdog", "schedule": _sell_interval, "options": {"expires": _sell_interval}}
# Backoff of sellbot.cancel_order retries: base x 2^n seconds with jitter, capped.
SELLBOT_CANCEL_RETRY_BASE_SECONDS = env.float("SELLBOT_CANCEL_RETRY_BASE_SECONDS", default=1.0)
SELLBOT_CANCEL_RETRY_MAX_SECONDS = env.float("SELLBOT_CANCEL_RETRY_MAX_SECONDS", default=60.0)
# An alert counts as resolved once it stays resolved this long (opitios/alerts.py, docs/deployment.md).
ALERT_RESOLVE_HOLD_SECONDS = env.float("OPITIOS_ALERT_RESOLVE_HOLD_SECONDS", default=120.0)
# A dead stream process cannot report itself: a worker checks what the hub and the listener publish
# (streaming/watch.py, lifecycle/watch.py) and alerts past alerts.stream_down_seconds.
STREAM_WATCH_SECONDS = 15.0
for _watch in ("streaming.watch", "lifecycle.watch"):
    CELERY_BEAT_SCHEDULE[_watch] = {"task": _watch, "schedule": STREAM_WATCH_SECONDS, "options": {"expires": STREAM_WATCH_SECONDS}}
# Whole-stack tests set OPITIOS_BEAT_TEST_INTERVAL (seconds) to prove beat fires: it adds a
# fast ``debug.ping`` entry. Unset (the default), nothing is added.
_beat_test_interval = env.float("OPITIOS_BEAT_TEST_INTERVAL", default=0.0)
if _beat_test_interval > 0:
    CELERY_BEAT_SCHEDULE["debug-ping"] = {"task": "debug.ping", "schedule": _beat_test_interval}

# --- Alpaca endpoints -----------------------------------------------------------
_sim = "http://127.0.0.1:8091"
ALPACA_PAPER_URL = env.str("ALPACA_PAPER_URL", default=f"{_sim}/paper" if DEMO_MODE else "https://paper-api.alpaca.markets")
ALPACA_LIVE_URL = env.str("ALPACA_LIVE_URL", default=f"{_sim}/live" if DEMO_MODE else "https://api.alpaca.markets")
ALPACA_DATA_URL = env.str("ALPACA_DATA_URL", default=_sim if DEMO_MODE else "https://data.alpaca.markets")
# Market-data streams (docs/streaming.md): Alpaca's own host, or the simulator's data URL as ws://.
ALPACA_STREAM_URL = env.str(
    "ALPACA_STREAM_URL",
    default="wss://stream.data.alpaca.markets" if ALPACA_DATA_URL.rstrip("/") == "https://data.alpaca.markets"
    else ALPACA_DATA_URL.replace("https://", "wss://", 1).replace("http://", "ws://", 1),
)
BROKER_CONNECT_TIMEOUT = env.float("BROKER_CONNECT_TIMEOUT", default=2.0)
BROKER_READ_TIMEOUT = env.float("BROKER_READ_TIMEOUT", default=5.0)
# The order bulkhead (trading/bulkhead.py): broker order calls in flight per web process, so a slow
# broker cannot take every gunicorn thread from market data; an API order waits this long for a slot.
BROKER_ORDER_CONCURRENCY = env.int("BROKER_ORDER_CONCURRENCY", default=max(1, env.int("GUNICORN_THREADS", default=8) // 2))
BROKER_ORDER_SLOT_WAIT = env.float("BROKER_ORDER_SLOT_WAIT", default=0.05)
# After the broker answered, writing the order's outcome retries a lost database for this long
# (a PostgreSQL restart) before the request answers 503 database_unavailable.
FINALISE_RETRY_SECONDS = env.float("FINALISE_RETRY_SECONDS", default=10.0)
# Concurrency of detection and balance refresh over many accounts (threads, bounded).
ACCOUNTS_CONCURRENCY = env.int("ACCOUNTS_CONCURRENCY", default=32)
# How often a process re-checks the accounts table for added, disabled or edited accounts.
ACCOUNTS_POOL_REFRESH_SECONDS = env.float("ACCOUNTS_POOL_REFRESH_SECONDS", default=2.0)
# How long a process may reuse an account row it read, while no edit happened (accounts/account_cache.py).
ACCOUNT_CACHE_SECONDS = env.float("ACCOUNT_CACHE_SECONDS", default=3.0)

# The trade-updates listener (lifecycle/listener.py, docs/operations.md).
LIFECYCLE_SHARD_INDEX = env.int("LIFECYCLE_SHARD_INDEX", default=0)
LIFECYCLE_SHARD_COUNT = env.int("LIFECYCLE_SHARD_COUNT", default=1)
LIFECYCLE_POLL_SECONDS = env.float("LIFECYCLE_POLL_SECONDS", default=3.0)
LIFECYCLE_RECONCILE_MARGIN_SECONDS = env.float("LIFECYCLE_RECONCILE_MARGIN_SECONDS", default=300.0)
LIFECYCLE_RECONCILE_LOOKBACK_HOURS = env.float("LIFECYCLE_RECONCILE_LOOKBACK_HOURS", default=24.0)
# Balance snapshots are a cache of Alpaca's answer, not a compliance record: pruned after this.
ACCOUNTS_SNAPSHOT_RETENTION_DAYS = env.int("ACCOUNTS_SNAPSHOT_RETENTION_DAYS", default=7)

# Fernet keys for account credentials, newest first (accounts.crypto). Empty: embedded key under var/.
OPITIOS_FERNET_KEYS = env.list("OPITIOS_FERNET_KEYS", default=[])

# --- DRF, JWT, OpenAPI ------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["opitios.auth.ClaimsJWTAuthentication"],
    # Deny by default: a view that forgets its permissions is closed, not public. Public views
    # (health, live, ready, schema, docs, market data when configured) open themselves explicitly.
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["opitios.parsers.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "opitios.errors.exception_handler",
}

# Embedded environments keep a generated HS key under var/; production overrides this
# with generate=False and refuses to start without a configured key.
SIMPLE_JWT = OPITIOS.jwt.simple_jwt_settings(VAR_DIR, generate=True)

SPECTACULAR_SETTINGS = {
    "TITLE": "Opitios trading gateway API",
    "DESCRIPTION": "Stocks and options trading over a pool of Alpaca accounts, with compliance controls in the order path.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],  # schema and docs are public, explicitly
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our own static files: the docs work offline (demo mode has no network).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "OrderTypeEnum": ["market", "limit", "stop", "stop_limit"],
        "OptionTypeEnum": ["call", "put"],
        "AccountTypeEnum": ["paper", "live"],
    },
}

CORS_ALLOWED_ORIGINS = OPITIOS.api.allowed_origins
CORS_URLS_REGEX = r"^/api/.*$"

# --- Celery -------------------------------------------------------------------------
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_SOFT_TIME_LIMIT = 60
CELERY_TASK_TIME_LIMIT = 90
# No task-sent events: a sweep fans out one check per account, and a sent event doubled every
# publish (a third of the sweep's dispatch time). Flower still lists each task from the worker's
# received/started/succeeded events; the backlog shows on its Broker page.
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Tick-driven exits have their own queue and worker (`celery worker -Q ticks`, docs/streaming.md): on the
# shared queue a tick_check waited behind the sweep's checks (bench.tick_exit). Other workers do not consume it.
TICK_QUEUE = "ticks"
CELERY_TASK_ROUTES = {"sellbot.tick_check": {"queue": TICK_QUEUE}}
# Pool processes of one worker (the sell-sweep benchmark measures 2). Prefork, not threads: only
# prefork enforces the hard time limits the sell bot's lock TTL is sized against (sellbot/services/account_check.py).
CELERY_WORKER_CONCURRENCY = env.int("OPITIOS_WORKER_CONCURRENCY", default=2)
# Workers run at this CPU niceness (opitios/celery.py), so on a shared host the API's request threads
# win the CPU over background work: the sell sweep costs the API's p95 little. 0 leaves it alone.
OPITIOS_WORKER_NICE = env.int("OPITIOS_WORKER_NICE", default=10)
CELERY_RESULT_EXPIRES = 3600
# Celery closes every database connection around every task unless told to reuse them: a sweep
# then paid a new PostgreSQL connection per account. Connections live like a request's instead
# (opitios/celery.py: CONN_MAX_AGE and the health check before each task); Celery still recycles
# them every 2 × this many tasks.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing from a request (the balance refresh after an order) must not hang on a dead broker:
# a short connect timeout and a bounded publish retry, then the caller logs and carries on.
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Storing a task result on a dead Redis retried 20 times a second by default, and a SIGTERMed worker
# waited for it: the warm shutdown outlived the supervisor's bound. Results are informational (the
# ledger and sweep runs are in the database; Flower reads task events), so a few tries are enough.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"retry_policy": {"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}}

# --- i18n, static ------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise scans it at start
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Logging -------------------------------------------------------------------------
LOGGING_CONFIG = None  # applied once, by opitios.logging.configure(), for web and workers alike
LOGGING = build_logging_config(
    LOG_DIR,
    console=env.bool("OPITIOS_LOG_CONSOLE", default=False),
    app_retention_days=env.int("OPITIOS_LOG_RETENTION_DAYS", default=30),
    error_retention_days=env.int("OPITIOS_ERROR_LOG_RETENTION_DAYS", default=90),
)
# Routine periodic task lines count as DEBUG on the console (opitios/log_filters.py); the app log keeps them.
OPITIOS_LOG_CONSOLE_LEVEL = env.str("OPITIOS_LOG_CONSOLE_LEVEL", default="INFO").upper()
LOGGING["handlers"]["console"]["level"] = OPITIOS_LOG_CONSOLE_LEVEL
LOGGING["filters"]["routine_tasks"] = {
    "()": "opitios.log_filters.RoutineTaskFilter",
    "tasks": sorted({entry["task"] for entry in CELERY_BEAT_SCHEDULE.values()} | {"sellbot.check_account", "sellbot.tick_check"}),
    "level": OPITIOS_LOG_CONSOLE_LEVEL,
}
LOGGING["handlers"]["console"]["filters"] = [*LOGGING["handlers"]["console"]["filters"], "routine_tasks"]
