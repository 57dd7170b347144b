"""A reusable harness: run alpacasim as a subprocess on a free port and drive its control API.

Only the standard library is used for control calls. Fixtures:
``sim_server`` (session: demo config, rate limit off, seed 42) and ``sim`` (function: the same
server after ``reset()``).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

import pytest

from tests.helpers.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO_ROOT / "alpacasim" / "demo.yml"


class SimError(RuntimeError):
    pass


class SimServer:
    def __init__(
        self,
        config: str | Path | None = DEMO_CONFIG,
        accounts: int | None = None,
        seed: int | None = 42,
        rate_limit: bool | int = False,
        extra_args: list[str] | None = None,
        host: str = "127.0.0.1",
        python: str = sys.executable,
    ) -> None:
        self.config = config
        self.accounts = accounts
        self.seed = seed
        self.rate_limit = rate_limit
        self.extra_args = list(extra_args or [])
        self.host = host
        self.python = python
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    # --- lifecycle -----------------------------------------------------------------------------
    def _command(self, port: int) -> list[str]:
        cmd = [self.python, "-m", "alpacasim", "--host", self.host, "--port", str(port)]
        if self.config:
            cmd += ["--config", str(self.config)]
        if self.accounts is not None:
            cmd += ["--accounts", str(self.accounts)]
        if self.seed is not None:
            cmd += ["--seed", str(self.seed)]
        if self.rate_limit is False:
            cmd.append("--no-rate-limit")
        elif self.rate_limit is not True:
            cmd += ["--rate-limit", str(int(self.rate_limit))]
        return cmd + self.extra_args

    def start(self, attempts: int = 5, timeout: float = 15.0) -> Self:
        last_err = ""
        for _ in range(attempts):
            port = free_port()
            proc = subprocess.Popen(
                self._command(port),
                cwd=str(REPO_ROOT),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
            self.proc, self.port = proc, port
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    last_err = (
                        proc.stderr.read().decode(errors="replace")
                        if proc.stderr
                        else ""
                    )
                    break
                try:
                    if (
                        self.control("GET", "/_sim/health", timeout=0.5).get("status")
                        == "ok"
                    ):
                        # no orphan even if a run forgets stop()
                        atexit.register(self.stop)
                        return self
                except (OSError, SimError):
                    time.sleep(0.05)
            else:
                self.stop()
                raise SimError(f"alpacasim did not become healthy within {timeout}s")
            self.proc = None  # it died, most likely because the port was taken: retry
        raise SimError(f"alpacasim failed to start: {last_err[-2000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        if proc.stderr:
            proc.stderr.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- urls --------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def paper_url(self) -> str:
        return self.base_url + "/paper"

    @property
    def live_url(self) -> str:
        return self.base_url + "/live"

    @property
    def data_url(self) -> str:
        return self.base_url

    # --- control API -------------------------------------------------------------------------
    def control(
        self, method: str, path: str, body: dict | None = None, timeout: float = 10.0
    ) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise SimError(
                f"{method} {path} -> {exc.code}: {exc.read().decode(errors='replace')}"
            ) from None
        return json.loads(raw) if raw else {}

    def reset(self) -> dict:
        return self.control("POST", "/_sim/reset", {})

    def set_price(self, symbol: str, price: float | None = None, **kw) -> dict:
        body = {"symbol": symbol, **kw}
        if price is not None:
            body["price"] = price
        return self.control("POST", "/_sim/price", body)

    def clear_price(self, symbol: str | None = None) -> dict:
        return self.control(
            "POST", "/_sim/price/clear", {"symbol": symbol} if symbol else {}
        )

    def set_clock(self, **kw) -> dict:
        return self.control("POST", "/_sim/clock", kw)

    def set_latency(
        self, ms: float = 0, route: str | None = None, distribution: dict | None = None
    ) -> dict:
        body: dict = {"ms": ms}
        if route:
            body["route"] = route
        if distribution:
            body["distribution"] = distribution
        return self.control("POST", "/_sim/latency", body)

    def set_fault(
        self,
        route: str,
        status: int | None = None,
        rate: float = 1.0,
        hang: bool = False,
        count: int | None = None,
    ) -> dict:
        body = {"route": route, "status": status, "rate": rate, "hang": hang}
        if count is not None:
            body["count"] = count
        return self.control("POST", "/_sim/faults", body)

    def clear_faults(self) -> dict:
        return self.control("POST", "/_sim/faults/clear", {})

    def fill(
        self,
        order_id: str,
        qty: float | str | None = None,
        price: float | str | None = None,
    ) -> dict:
        body = {}
        if qty is not None:
            body["qty"] = qty
        if price is not None:
            body["price"] = price
        return self.control("POST", f"/_sim/orders/{order_id}/fill", body)

    def state(self) -> dict:
        return self.control("GET", "/_sim/state")

    def upsert_account(self, api_key: str, secret_key: str | None = None, **kw) -> dict:
        body = {"api_key": api_key, **kw}
        if secret_key is not None:
            body["secret_key"] = secret_key
        return self.control("POST", "/_sim/accounts", body)

    def set_rate_limit(
        self, enabled: bool = True, per_minute: int | None = None
    ) -> dict:
        return self.control(
            "POST", "/_sim/rate_limit", {"enabled": enabled, "per_minute": per_minute}
        )


@pytest.fixture(scope="session")
def sim_server():
    # Always open, so tests do not depend on the hour they run at; session tests switch to the NYSE
    # calendar on a fixed clock with set_clock(mode="real", now=...).
    server = SimServer(
        config=DEMO_CONFIG, seed=42, rate_limit=False, extra_args=["--clock", "open"]
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim(sim_server):
    sim_server.reset()
    return sim_server
