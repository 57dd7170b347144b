"""opitios/db.py: the hot-path INSERT writes what ``Model.save()`` would, on both databases."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from accounts.models import AlpacaAccount
from opitios.db import insert
from trading.models import OrderRecord

pytestmark = pytest.mark.django_db


def test_insert_writes_the_row_as_save_would():
    account = AlpacaAccount.objects.create(account_id="db_001", name="db_001", api_key_encrypted="x", secret_key_encrypted="x")
    values = {"account": account, "account_type": "paper", "source": "api", "user_id": "u", "symbol": "MSFT",
              "asset_class": "us_equity", "side": "buy", "order_type": "limit", "time_in_force": "day", "qty": Decimal("1.5"),
              "limit_price": Decimal("10.25"), "received_at": datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)}
    fast = OrderRecord(client_order_id="fast", **values)
    insert(fast)
    saved = OrderRecord.objects.create(client_order_id="saved", **values)
    assert fast.pk is not None and not fast._state.adding and fast.pk != saved.pk
    skip = {"id", "client_order_id"}
    read = {f.attname: getattr(OrderRecord.objects.get(pk=fast.pk), f.attname) for f in OrderRecord._meta.concrete_fields
            if f.attname not in skip}
    assert read == {f.attname: getattr(OrderRecord.objects.get(pk=saved.pk), f.attname) for f in OrderRecord._meta.concrete_fields
                    if f.attname not in skip}
    assert read["qty"] == Decimal("1.5") and read["legs"] == {} and read["outcome"] == "pending" and read["is_current"]
