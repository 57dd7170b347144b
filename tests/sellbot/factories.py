from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from sellbot.models import ManagedPosition, SellCancellation, SellDecision
from tests.accounts.factories import AlpacaAccountFactory


class ManagedPositionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ManagedPosition

    account = factory.SubFactory(AlpacaAccountFactory)
    symbol = factory.Sequence(lambda n: f"AAPL27011{n % 10}C00200000")
    qty = Decimal(2)
    entry_price = Decimal("2.00")
    high_water_mark = Decimal("2.00")
    opened_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=5))


class SellDecisionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SellDecision

    account = factory.SelfAttribute("position.account")
    position = factory.SubFactory(ManagedPositionFactory)
    symbol = factory.SelfAttribute("position.symbol")
    reason = "take_profit"
    price = Decimal("2.30")
    entry_price = Decimal("2.00")
    pl_pct = Decimal("15.00")
    qty = Decimal(2)
    attempt = 1
    order_type = "limit"
    limit_price = Decimal("2.30")
    client_order_id = factory.LazyAttribute(lambda o: f"sb-{o.position.pk}-{o.attempt}")
    outcome = "placed"
    decided_at = factory.LazyFunction(timezone.now)


class SellCancellationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SellCancellation

    account = factory.SubFactory(AlpacaAccountFactory)
    order_id = factory.Sequence(lambda n: f"order-{n:06d}")
    symbol = "AAPL270115C00200000"
    order_type = "limit"
    side = "sell"
    submitted_at = factory.LazyFunction(lambda: timezone.now() - timedelta(seconds=200))
    age_seconds = 200.0
    limit_minutes = 3.0
    outcome = "canceled"
    attempts = 1
