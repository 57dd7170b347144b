"""Market data: quotes, bars, option chains. Served by any enabled account (§4 routing)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from accounts import broker as broker_seam
from accounts.broker import TIMEFRAMES, BrokerError, BrokerRejected
from opitios.errors import ApplicationError, error_json

from ..errors import broker_error_parts
from ..formatting import bar_json, bars_json, chain_json, contract_json, quote_batch_json, quote_json, quote_result_json
from ..intents import occ_parse, stock_symbol_valid
from ..permissions import MarketDataAccess
from ..quote_source import fetch_keys, rest_age_ms, streamed_answers
from ..selectors import trading_config
from ..serializers import (
    BarsQuerySerializer,
    BarsSerializer,
    ChainQuerySerializer,
    ChainSerializer,
    MarketRoutingQuerySerializer,
    OptionQuotesBatchInputSerializer,
    QuoteBatchResultSerializer,
    QuoteSerializer,
    StockQuotesBatchInputSerializer,
)
from .base import MARKET_ERRORS, TradingAPIView

TAGS = ["market data"]


def _stock_symbol(symbol: str) -> str:
    symbol = symbol.strip().upper()
    if not stock_symbol_valid(symbol):
        raise ApplicationError("invalid_symbol", f"{symbol!r} is not a valid stock symbol.")
    return symbol


def _routing(data: dict) -> dict:
    return {"account_id": data.get("account_id") or None, "routing_key": data.get("routing_key") or None}


def _sourced(quote, source: str, age_ms: int | None) -> dict:
    return {**quote_json(quote), "source": source, "age_ms": age_ms}


def _batch(symbols: list[str], fetch, routing: dict) -> list[dict]:
    """Streamed symbols from the last-value cache; the others in one upstream call. If the upstream
    refuses the batch (one bad symbol), each symbol is fetched alone so a failing symbol does not fail
    the others."""
    streamed = streamed_answers(symbols)
    results = [quote_result_json({"symbol": s, "quote": answer}) for s, answer in streamed.items()]
    symbols = [s for s in symbols if s not in streamed]
    if not symbols:
        return results
    try:
        quotes = fetch(symbols, **routing)
    except BrokerRejected:
        quotes = {}
        errors: dict[str, BrokerError] = {}
        for symbol in symbols:
            try:
                quotes.update(fetch([symbol], **routing))
            except BrokerRejected as exc:
                errors[symbol] = exc
    else:
        errors = {}
    for symbol in symbols:
        if symbol in quotes and quotes[symbol] is not None:
            results.append(quote_result_json({"symbol": symbol, "quote": _sourced(quotes[symbol], "rest", rest_age_ms(quotes[symbol]))}))
        elif symbol in errors:
            results.append(quote_result_json({"symbol": symbol, "error": error_json(*broker_error_parts(errors[symbol]))}))
        else:
            results.append(quote_result_json({"symbol": symbol, "error": error_json("not_found", f"No quote for {symbol}.")}))
    return results


def _check_batch_size(n: int) -> None:
    limit = trading_config().max_symbols_per_request
    if n > limit:
        raise ApplicationError("too_many_symbols", f"At most {limit} symbols per request; got {n}.",
                               details={"max_symbols_per_request": limit})


def _default_start(timeframe: str, limit: int, end: datetime | None) -> datetime:
    """Without ``start``, look back far enough for ``limit`` bars across nights and weekends
    (Alpaca itself would start at today's midnight, which is empty before the open)."""
    return (end or datetime.now(UTC)) - TIMEFRAMES[timeframe] * limit * 3 - timedelta(days=4)


class StockQuoteView(TradingAPIView):
    permission_classes = [MarketDataAccess]
    throttle_scope = "stock_quote"
    throttle_lease = True  # trading/throttles.py

    def throttle_fetch(self) -> tuple[str, ...]:
        """The streamed quote, read in the throttle's round trip: a cached quote costs one round trip."""
        symbol = self.kwargs.get("symbol", "").strip().upper()
        return fetch_keys([symbol]) if stock_symbol_valid(symbol) else ()

    @extend_schema(tags=TAGS, summary="Latest stock quote", parameters=[MarketRoutingQuerySerializer],
                   responses={200: QuoteSerializer, **MARKET_ERRORS}, auth=[{"jwtAuth": []}, {}])
    def get(self, request, symbol: str):
        symbol = _stock_symbol(symbol)
        routing = {}
        if request.META.get("QUERY_STRING"):  # a serializer (and the QueryDict) cost more than the cached answer: only on input
            q = MarketRoutingQuerySerializer(data=request.query_params)
            q.is_valid(raise_exception=True)
            routing = q.validated_data
        streamed = streamed_answers([symbol], getattr(request, "fetched", None)).get(symbol)
        if streamed is not None:
            return Response(streamed)
        quote = broker_seam.market_data().stock_quotes([symbol], **_routing(routing)).get(symbol)
        if quote is None:
            raise ApplicationError("not_found", f"No quote for {symbol}.")
        return Response(_sourced(quote, "rest", rest_age_ms(quote)))


class StockQuotesBatchView(TradingAPIView):
    permission_classes = [MarketDataAccess]
    throttle_scope = "quotes_batch"
    throttle_lease = True  # trading/throttles.py

    @extend_schema(tags=TAGS, summary="Latest quotes for several stocks (per-symbol results)",
                   request=StockQuotesBatchInputSerializer, responses={200: QuoteBatchResultSerializer, **MARKET_ERRORS},
                   auth=[{"jwtAuth": []}, {}])
    def post(self, request):
        s = StockQuotesBatchInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        symbols = list(dict.fromkeys(x.strip().upper() for x in s.validated_data["symbols"]))
        _check_batch_size(len(symbols))
        bad = [x for x in symbols if not stock_symbol_valid(x)]
        good = [x for x in symbols if stock_symbol_valid(x)]
        results = _batch(good, broker_seam.market_data().stock_quotes, _routing(s.validated_data)) if good else []
        results += [quote_result_json({"symbol": x, "error": error_json("invalid_symbol", f"{x!r} is not a valid stock symbol.")})
                    for x in bad]
        order = {x: i for i, x in enumerate(symbols)}
        return Response(quote_batch_json({"results": sorted(results, key=lambda r: order[r["symbol"]])}))


class StockBarsView(TradingAPIView):
    permission_classes = [MarketDataAccess]

    @extend_schema(tags=TAGS, summary="Historical bars", parameters=[BarsQuerySerializer], responses={200: BarsSerializer, **MARKET_ERRORS},
                   auth=[{"jwtAuth": []}, {}])
    def get(self, request, symbol: str):
        symbol = _stock_symbol(symbol)
        q = BarsQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        d = q.validated_data
        start = d.get("start") or _default_start(d["timeframe"], d["limit"], d.get("end"))
        bars = broker_seam.market_data().stock_bars(symbol, timeframe=d["timeframe"], start=start, end=d.get("end"), limit=d["limit"],
                                                    **_routing(d))
        return Response(bars_json({"symbol": symbol, "timeframe": d["timeframe"], "bars": [bar_json(b) for b in bars[: d["limit"]]]}))


class OptionChainView(TradingAPIView):
    permission_classes = [MarketDataAccess]

    @extend_schema(tags=TAGS, summary="Option chain with bid/ask, IV and greeks", parameters=[ChainQuerySerializer],
                   responses={200: ChainSerializer, **MARKET_ERRORS}, auth=[{"jwtAuth": []}, {}])
    def get(self, request, underlying: str):
        underlying = _stock_symbol(underlying)
        q = ChainQuerySerializer(data=request.query_params)
        q.is_valid(raise_exception=True)
        d = q.validated_data
        contracts = broker_seam.market_data().option_chain(underlying, expiration_date=d.get("expiration_date"), option_type=d.get("type"),
                                               **_routing(d))
        return Response(chain_json({"underlying": underlying, "contracts": [c for c in (contract_json(x) for x in contracts) if c]}))


class OptionQuotesBatchView(TradingAPIView):
    permission_classes = [MarketDataAccess]
    throttle_scope = "quotes_batch"
    throttle_lease = True  # trading/throttles.py

    @extend_schema(tags=TAGS, summary="Latest quotes for several option contracts (per-symbol results)",
                   request=OptionQuotesBatchInputSerializer, responses={200: QuoteBatchResultSerializer, **MARKET_ERRORS},
                   auth=[{"jwtAuth": []}, {}])
    def post(self, request):
        s = OptionQuotesBatchInputSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        symbols = list(dict.fromkeys(x.strip().upper() for x in s.validated_data["option_symbols"]))
        _check_batch_size(len(symbols))
        bad = [x for x in symbols if occ_parse(x) is None]
        good = [x for x in symbols if occ_parse(x) is not None]
        results = _batch(good, broker_seam.market_data().option_quotes, _routing(s.validated_data)) if good else []
        results += [quote_result_json({"symbol": x, "error": error_json("invalid_symbol", f"{x!r} is not a compact OCC option symbol.")})
                    for x in bad]
        order = {x: i for i, x in enumerate(symbols)}
        return Response(quote_batch_json({"results": sorted(results, key=lambda r: order[r["symbol"]])}))
