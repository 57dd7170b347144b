"""The accounts overview: every account with its newest balance snapshot, day P&L, open orders, positions
and managed positions. Reads only what is stored (never the broker), one page at a time.

- cash, equity: the newest ``BalanceSnapshot``;
- day P&L: that equity less the equity of the newest snapshot before today's UTC midnight;
- open orders: accepted ``OrderRecord`` rows whose broker status is not final;
- positions: symbols whose recorded fills (buys less sells) do not net to zero, for the shown page only;
- managed positions: the sell bot's open ``ManagedPosition`` rows.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db.models import Case, Count, DecimalField, F, IntegerField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import AlpacaAccount, BalanceSnapshot
from accounts.selectors import accounts_with_last_balance
from desk.state import account_trading_state
from sellbot.models import ManagedPosition, PositionStatus
from trading.ledger import FINAL_STATUSES
from trading.models import OrderRecord, Outcome

PAGE_SIZE = 50
# ?sort= keys (a leading "-" sorts descending) and what they sort by; ties by account id.
SORTS = {
    "account": "account_id", "type": "account_type", "cash": "last_cash", "equity": "last_equity",
    "day_pl": "day_pl", "open_orders": "open_orders", "managed": "managed_open",
}
DEFAULT_SORT = "account"


@dataclass(frozen=True)
class OverviewPage:
    page: Page
    rows: list[dict]
    sort: str
    query: str


def _count(queryset) -> Coalesce:
    return Coalesce(Subquery(queryset.order_by().values("account").annotate(n=Count("pk")).values("n")[:1],
                             output_field=IntegerField()), Value(0))


def _annotations(*, now: dt.datetime | None = None) -> dict:
    """Each column the overview computes, as an annotation on ``AlpacaAccount``."""
    midnight = (now or timezone.now()).astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    newest = BalanceSnapshot.objects.filter(account=OuterRef("pk")).order_by("-fetched_at")
    before_today = BalanceSnapshot.objects.filter(account=OuterRef("pk"), fetched_at__lt=midnight).order_by("-fetched_at")
    money = DecimalField(max_digits=16, decimal_places=2)
    open_orders = OrderRecord.objects.filter(account=OuterRef("pk"), outcome=Outcome.ACCEPTED).exclude(broker_status__in=FINAL_STATUSES)
    managed = ManagedPosition.objects.filter(account=OuterRef("pk"), status=PositionStatus.OPEN)
    equity = Subquery(newest.values("equity")[:1], output_field=money)
    start_equity = Subquery(before_today.values("equity")[:1], output_field=money)
    return {
        "last_cash": Subquery(newest.values("cash")[:1], output_field=money),  # the page's rows: accounts_with_last_balance
        "last_equity": equity,
        "start_equity": start_equity,
        "day_pl": equity - start_equity,
        "open_orders": _count(open_orders),
        "managed_open": _count(managed),
    }


def overview_queryset(*, query: str = "", sort: str = DEFAULT_SORT, now: dt.datetime | None = None):
    """The accounts in the asked order, annotated with the sort column only (the page's rows get the rest):
    sorting 1,000 accounts by equity computes equity 1,000 times, not every column."""
    accounts = AlpacaAccount.objects.all()
    if query:
        accounts = accounts.filter(Q(account_id__icontains=query) | Q(name__icontains=query) | Q(tier__iexact=query))
    key = sort.lstrip("-") if sort.lstrip("-") in SORTS else DEFAULT_SORT
    field = SORTS[key]
    annotations = _annotations(now=now)
    if field in annotations:
        accounts = accounts.annotate(**{field: annotations[field]})
    order = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc(nulls_last=True)
    return accounts.order_by(order, "account_id"), (f"-{key}" if sort.startswith("-") else key)


def ledger_position_counts(account_pks: list[int]) -> dict[int, int]:
    """Per account, the symbols whose recorded fills do not net to zero."""
    signed = Case(When(side="sell", then=-F("filled_qty")), default=F("filled_qty"))
    nets = (OrderRecord.objects.filter(account_id__in=account_pks, filled_qty__gt=0).order_by()
            .values("account_id", "symbol").annotate(net=Sum(signed)))
    counts: dict[int, int] = defaultdict(int)
    for row in nets:
        if row["net"]:
            counts[row["account_id"]] += 1
    return counts


def accounts_overview(*, query: str = "", sort: str = DEFAULT_SORT, page: int | str = 1, per_page: int = PAGE_SIZE) -> OverviewPage:
    accounts, sort = overview_queryset(query=query.strip(), sort=sort)
    shown = Paginator(accounts.values_list("pk", flat=True), per_page).get_page(page)
    pks = list(shown.object_list)
    columns = {name: value for name, value in _annotations().items() if name in ("start_equity", "open_orders", "managed_open")}
    by_pk = accounts_with_last_balance().filter(pk__in=pks).annotate(**columns).in_bulk()
    items = [by_pk[pk] for pk in pks]
    positions = ledger_position_counts([a.pk for a in items])
    rows = [{
        "account": a, "state": account_trading_state(a), "cash": a.last_cash, "equity": a.last_equity,
        "day_pl": a.last_equity - a.start_equity if a.last_equity is not None and a.start_equity is not None else None,
        "fetched_at": a.last_fetched_at, "open_orders": a.open_orders,
        "positions": positions.get(a.pk, 0), "managed": a.managed_open,
    } for a in items]
    return OverviewPage(page=shown, rows=rows, sort=sort, query=query.strip())
