"""``python -m alpacasim --port 8091 [--host 127.0.0.1] [--config sim.yml] [--accounts N] [--seed S]``"""

from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from .app import build_app
from .config import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="alpacasim",
        description="Alpaca-compatible paper broker and market simulator",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8091)
    p.add_argument("--config", help="YAML config file (see alpacasim/README.md)")
    p.add_argument(
        "--accounts",
        type=int,
        default=None,
        help="generate N paper accounts PKSIM{i:010d}",
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-rate-limit", action="store_true")
    p.add_argument(
        "--rate-limit", type=int, default=None, help="requests per minute per key"
    )
    p.add_argument("--clock", choices=("real", "open", "closed"), default=None)
    p.add_argument("--partial-fill-rate", type=float, default=None)
    p.add_argument(
        "--price-step", type=float, default=None, help="seconds per random-walk step"
    )
    p.add_argument(
        "--bars-page-max",
        type=int,
        default=None,
        help="largest bars page the server returns",
    )
    p.add_argument("--log-level", default="WARNING")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    cfg = load_config(args.config)
    cfg.host, cfg.port = args.host, args.port
    if args.seed is not None:
        cfg.seed = args.seed
    if args.accounts is not None:
        cfg.generated_accounts = args.accounts
    if args.no_rate_limit:
        cfg.rate_limit_enabled = False
    if args.rate_limit is not None:
        cfg.rate_limit_enabled = args.rate_limit > 0
        cfg.rate_limit_per_minute = max(1, args.rate_limit)
    if args.clock:
        cfg.clock_mode = args.clock
    if args.partial_fill_rate is not None:
        cfg.partial_fill_rate = args.partial_fill_rate
    if args.price_step is not None:
        cfg.price_step_seconds = args.price_step
    if args.bars_page_max is not None:
        cfg.bars_page_max = args.bars_page_max
    app = build_app(cfg)
    print(
        f"alpacasim listening on http://{cfg.host}:{cfg.port}",
        file=sys.stderr,
        flush=True,
    )
    # a short shutdown_timeout: hung (fault-injected) requests must not delay a SIGTERM
    web.run_app(
        app,
        host=cfg.host,
        port=cfg.port,
        access_log=None,
        print=None,
        shutdown_timeout=0.5,
    )


if __name__ == "__main__":
    main()
