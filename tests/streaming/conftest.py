"""A stack serving /ws/market-data (and the REST API) against alpacasim's streams, shared by a module.

The secrets file is the demo one with market data private (clients need a token) and small limits so
the tests reach them quickly."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from opitios.auth import issue_token
from tests.helpers.stack import REPO_ROOT, Stack

MARKET_DATA = {
    "max_symbols_per_connection": 5,
    "max_connections_per_user": 3,
    "max_connections_per_ip": 40,
    "max_backlog": 50,
    "stall_seconds": 2,
    "unsubscribe_grace_seconds": 1,
    "max_quote_age_ms": 5000,
    "heartbeat_seconds": 30,  # a client that reads nothing (the slow-consumer test) must not be closed as a dead peer first
}


def secrets_file(root: Path, **market_data) -> Path:
    data = yaml.safe_load((REPO_ROOT / "secrets.example.yml").read_text())
    data["api"]["market_data_public"] = False
    data["market_data"] = {**MARKET_DATA, **market_data}
    path = root / "secrets.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def stack_env(sim, secrets: Path) -> dict[str, str]:
    return {
        "OPITIOS_SECRETS": str(secrets),
        "ALPACA_PAPER_URL": sim.paper_url,
        "ALPACA_LIVE_URL": sim.live_url,
        "ALPACA_DATA_URL": sim.data_url,
    }


def token(user: str = "ws-user", permissions=("market_data",)) -> str:
    return issue_token(user_id=user, permissions=list(permissions))


@pytest.fixture(scope="module")
def ws_stack(sim_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("ws-stack")
    # With Redis the hub is its own process; on embedded defaults the ws process hosts it.
    processes = ("web", "ws", "hub") if os.environ.get("REDIS_URL") else ("web", "ws")
    stack = Stack(root, processes=processes, env=stack_env(sim_server, secrets_file(root)))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
