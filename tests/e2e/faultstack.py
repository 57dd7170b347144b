"""What the whole-stack fault tests share: a secrets.yml of their own, the environment that points a
stack at alpacasim and at the test's own Redis and PostgreSQL (tests/helpers/services.py), tokens,
request factories for tests/helpers/traffic.py, reads of the stack's database, and a wait on the sell bot's passes."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from opitios.auth import issue_token

ACCOUNTS = {
    "account_001": {"api_key": "PKDEMO0000000000001", "secret_key": "demo-secret-0000000001", "paper_trading": True,
                    "rate_limit_per_minute": 100000},
    "account_002": {"api_key": "PKDEMO0000000000002", "secret_key": "demo-secret-0000000002", "paper_trading": True,
                    "rate_limit_per_minute": 100000},
}
ACTING_TASKS = ("sellbot.check_account", "sellbot.cancel_order")  # the sell-bot tasks that place or cancel orders
UNLIMITED = {"stock_quote": "100000/min", "quotes_batch": "100000/min", "stock_order": "100000/min",
             "option_order": "100000/min", "default": "100000/min"}


def secrets_file(tmp_path: Path, *, rate_limits: dict | None = None, sell_module: dict | None = None, trading: dict | None = None,
                 accounts: dict | None = None) -> Path:
    data = {
        "jwt": {"algorithm": "HS256"},
        "trading": {"minimum_balance": 1000, "balance_max_age_seconds": 0, **(trading or {})},
        "rate_limits": rate_limits or UNLIMITED,
        "sell_module": {"enabled": False, **(sell_module or {})},
        "accounts": accounts or ACCOUNTS,
    }
    path = tmp_path / "secrets.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def stack_env(sim, secrets: Path, *, redis=None, postgres=None, **extra: str) -> dict[str, str]:
    env = {
        "OPITIOS_SECRETS": str(secrets),
        "ALPACA_PAPER_URL": sim.paper_url,
        "ALPACA_LIVE_URL": sim.live_url,
        "ALPACA_DATA_URL": sim.data_url,
    }
    if redis is not None:
        env["REDIS_URL"] = redis.url(0)
    if postgres is not None:
        env["DATABASE_URL"] = postgres.url("opitios")
    env.update(extra)
    return env


def trader(account_id: str = "account_001") -> str:
    return issue_token(user_id=f"trader-{account_id}", permissions=["trading", "account_access"], account_id=account_id, ttl_seconds=1800)


def admin() -> str:
    return issue_token(user_id="ops", permissions=["admin"], ttl_seconds=1800)


def stock_order(account_id: str = "account_001", *, prefix: str = "t", symbol: str = "AAPL"):
    """A request factory: a 1-share market buy with a fresh client_order_id per request."""
    token = trader(account_id)

    def make(n: int):
        return "POST", "/api/v1/stocks/order", {
            "symbol": symbol, "qty": 1, "side": "buy", "type": "market", "time_in_force": "day", "client_order_id": f"{prefix}-{n}",
        }, token
    return make


def quote(symbol: str = "AAPL"):
    token = issue_token(user_id="quotes", permissions=["market_data"], ttl_seconds=1800)
    return lambda n: ("GET", f"/api/v1/stocks/{symbol}/quote", None, token)


def orders_list(account_id: str = "account_001"):
    token = trader(account_id)
    return lambda n: ("GET", f"/api/v1/orders?account_id={account_id}&status=all&limit=5", None, token)


def query(stack, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows from the stack's own database: its PostgreSQL database, or its SQLite file. Parameters are
    written ``%s``, as psycopg takes them."""
    if stack.env.get("DATABASE_URL"):
        import psycopg

        with psycopg.connect(stack.env["DATABASE_URL"]) as conn:  # without parameters a LIKE 'x%' is not a placeholder
            return list(conn.execute(sql, params or None).fetchall())
    with sqlite3.connect(stack.root / "var" / "db.sqlite3", timeout=10) as conn:
        return list(conn.execute(sql.replace("%s", "?"), params).fetchall())


def wait_for_bot_passes(stack, *, since: int, sweeps: int = 2, checks: int = 0, settled_since: int | None = None,
                        what: str = "", timeout: float = 60.0) -> list:
    """Wait until the sell bot has looked again at the state of ``since`` (a ``stack.log_mark()``): ``sweeps``
    sweeps and ``checks`` account checks received after the mark have finished. Only then does "nothing
    happened" mean something: the bot ran and did nothing. With ``settled_since``, also wait until no account
    check or cancel received after that mark is still queued or running (for a stopped bot, whose work drains;
    a running bot under load always has the next check queued). Returns the finished sweeps' lines (their
    result says e.g. skipped: stopped)."""

    def passed() -> bool:
        if settled_since is not None and any(t.name in ACTING_TASKS and t.event in ("received", "retry")
                                             for t in stack.tasks(since=settled_since).values()):
            return False
        return (len(stack.tasks_done("sellbot.sweep", since=since)) >= sweeps
                and len(stack.tasks_done("sellbot.check_account", since=since)) >= checks)

    stack.wait_for(passed, what or f"{sweeps} sweeps and {checks} account checks after the mark", timeout=timeout)
    return stack.tasks_done("sellbot.sweep", since=since)


def sim_orders(sim) -> list[dict]:
    return [o for a in sim.state()["accounts"] for o in a.get("orders", [])]
