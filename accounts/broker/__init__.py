"""The one seam to Alpaca. Import from here (``from accounts.broker import broker_for``); the modules
below are the package's own layout:

- ``contract``  errors, dataclasses and the ``AccountBroker`` / ``MarketData`` protocols;
- ``adapter``   alpaca-py behind ``AccountBroker``: the only module in the project that imports alpaca-py
                (``convert`` and ``session`` are its SDK-free helpers);
- ``pooling``   the per-process pool of account clients (``broker_for``, ``pool_accounts``, ``reset_pool``);
- ``market``    market-data routing over the pool (``market_data``).

Stream clients (market data and trade updates over websockets) belong beside these, as their own modules.
"""
from accounts.broker.adapter import AlpacaAccountBroker, in_flight, map_error
from accounts.broker.contract import (
    TIMEFRAMES,
    AccountBroker,
    AccountInfo,
    Bar,
    BrokerError,
    BrokerNotFound,
    BrokerOrder,
    BrokerRejected,
    BrokerTimeout,
    BrokerUnavailable,
    Clock,
    EquityPoint,
    MarketData,
    OptionContractQuote,
    OrderRequest,
    Position,
    Quote,
    UpstreamRateLimited,
)
from accounts.broker.market import LEAST_LOADED_SAMPLE, MAX_UPSTREAM_429, AlpacaMarketData, market_data
from accounts.broker.pooling import BrokerPool, broker_for, pool, pool_accounts, probe_account, reset_pool

__all__ = [
    "TIMEFRAMES", "AccountBroker", "AccountInfo", "AlpacaAccountBroker", "AlpacaMarketData", "Bar", "BrokerError",
    "BrokerNotFound", "BrokerOrder", "BrokerPool", "BrokerRejected", "BrokerTimeout", "BrokerUnavailable", "Clock", "EquityPoint",
    "LEAST_LOADED_SAMPLE", "MAX_UPSTREAM_429", "MarketData", "OptionContractQuote", "OrderRequest", "Position", "Quote",
    "UpstreamRateLimited", "broker_for", "in_flight", "map_error", "market_data", "pool", "pool_accounts",
    "probe_account", "reset_pool",
]
