"""Market-data routing: any enabled account's credentials can serve quotes, bars and chains; the
router picks the order in which accounts are tried (``trading.routing_strategy`` or a caller's
``routing_key``) and moves on when an account's upstream budget is exhausted."""
from __future__ import annotations

from accounts import budget, routing
from accounts.broker.adapter import AlpacaAccountBroker, in_flight
from accounts.broker.contract import BrokerNotFound, BrokerUnavailable, MarketData, UpstreamRateLimited
from accounts.broker.pooling import pool
from opitios import config

LEAST_LOADED_SAMPLE = 16  # least_loaded compares at most this many accounts (power-of-d choices)
MAX_UPSTREAM_429 = 3


class AlpacaMarketData(MarketData):
    def _candidates(self, *, account_id: str | None, routing_key: str | None, default_key: str) -> tuple[list[AlpacaAccountBroker], bool]:
        if account_id is not None:
            broker = pool().get(account_id)
            if broker is None:
                raise BrokerNotFound(f"No enabled account {account_id!r} can serve market data.")
            return [broker], True
        brokers = pool().enabled()
        if not brokers:
            raise BrokerUnavailable("No enabled account can serve market data.")
        usable = [b for b in brokers if not pool().is_exhausted(b.pk)] or list(brokers)
        by_id = {b.account_id: b for b in usable}
        ids = list(by_id)
        if routing_key is not None:
            order = routing.rendezvous(routing_key, ids)
        else:
            strategy = config.current_config().trading.routing_strategy
            if strategy == "hash":
                order = routing.rendezvous(default_key, ids)
            elif strategy == "random":
                order = routing.shuffled(ids)
            elif strategy == "least_loaded":
                sample = routing.shuffled(ids)[:LEAST_LOADED_SAMPLE]
                stats = budget.stats_for({by_id[a].pk: by_id[a].rate_limit_per_minute for a in sample})
                order = routing.least_loaded(
                    sample,
                    remaining=lambda a: stats[by_id[a].pk].budget_remaining,
                    in_flight=lambda a: in_flight(by_id[a].pk),
                )
                order += [a for a in ids if a not in set(sample)]
            else:
                order = routing.round_robin(budget.shared_sequence("market_data_rr") - 1, ids)
        return [by_id[a] for a in order], False

    def _route(self, fn_name: str, *args, account_id, routing_key, default_key, **kwargs):
        candidates, explicit = self._candidates(account_id=account_id, routing_key=routing_key, default_key=default_key)
        limited: list[UpstreamRateLimited] = []
        for broker in candidates:
            try:
                return getattr(broker, fn_name)(*args, **kwargs)
            except UpstreamRateLimited as exc:
                if explicit:
                    raise
                pool().mark_exhausted(broker.pk, exc.retry_after)
                limited.append(exc)
                if exc.upstream_status == 429 and sum(e.upstream_status == 429 for e in limited) >= MAX_UPSTREAM_429:
                    break
        retry_after = min((e.retry_after or 60) for e in limited) if limited else 60
        raise UpstreamRateLimited("Every account's upstream budget is exhausted; retry shortly.", retry_after=retry_after)

    def stock_quotes(self, symbols, *, account_id=None, routing_key=None, timeout=None):
        return self._route("_stock_quotes", list(symbols), account_id=account_id, routing_key=routing_key, default_key=",".join(symbols),
                           timeout=timeout)

    def stock_bars(self, symbol, *, timeframe, start, end, limit, account_id=None, routing_key=None):
        return self._route(
            "_stock_bars", symbol, timeframe=timeframe, start=start, end=end, limit=limit,
            account_id=account_id, routing_key=routing_key, default_key=symbol,
        )

    def option_chain(self, underlying, *, expiration_date=None, option_type=None, account_id=None, routing_key=None):
        return self._route(
            "_option_chain", underlying, expiration_date=expiration_date, option_type=option_type,
            account_id=account_id, routing_key=routing_key, default_key=underlying,
        )

    def option_quotes(self, symbols, *, account_id=None, routing_key=None, timeout=None):
        return self._route("_option_quotes", list(symbols), account_id=account_id, routing_key=routing_key, default_key=",".join(symbols),
                           timeout=timeout)


_market_data = AlpacaMarketData()


def market_data() -> MarketData:
    return _market_data
