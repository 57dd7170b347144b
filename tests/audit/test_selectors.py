import datetime as dt

import pytest
from django.db import connection, models

from audit import selectors
from audit.charts import latency_chart
from opitios.stats import percentile_cont


class FakeOrderRecord(models.Model):
    """Shaped like trading.OrderRecord's fields the console reads; its table exists only during these tests."""

    outcome = models.CharField(max_length=16)
    total_ms = models.FloatField(null=True)
    received_at = models.DateTimeField()

    class Meta:
        app_label = "audit"
        db_table = "test_fake_orderrecord"
        managed = False

    def __str__(self) -> str:
        return self.outcome


@pytest.fixture
def order_table(transactional_db):
    with connection.schema_editor() as editor:
        editor.create_model(FakeOrderRecord)
    yield FakeOrderRecord
    with connection.schema_editor() as editor:
        editor.delete_model(FakeOrderRecord)


def test_percentile_cont_matches_postgres_semantics():
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile_cont(values, 0.5) == 2.5
    assert percentile_cont(values, 0.95) == pytest.approx(3.85)
    assert percentile_cont([7.0], 0.99) == 7.0


def test_latency_and_outcomes_from_the_database(order_table):
    now = dt.datetime(2026, 3, 10, 15, 0, tzinfo=dt.UTC)
    rows = [FakeOrderRecord(outcome="accepted", total_ms=float(ms), received_at=now - dt.timedelta(hours=1)) for ms in range(1, 101)]
    rows += [FakeOrderRecord(outcome="refused", total_ms=3.0, received_at=now - dt.timedelta(hours=2)),
             FakeOrderRecord(outcome="accepted", total_ms=50.0, received_at=now - dt.timedelta(days=2)),
             FakeOrderRecord(outcome="accepted", total_ms=9.0, received_at=now - dt.timedelta(days=30))]
    FakeOrderRecord.objects.bulk_create(rows)
    assert selectors.orders_today_by_outcome(FakeOrderRecord, now=now) == {"accepted": 100, "refused": 1}
    days = selectors.order_latency_daily(FakeOrderRecord, days=7, now=now)
    assert [d["day"] for d in days] == [dt.date(2026, 3, d) for d in range(4, 11)]
    today = days[-1]
    values = sorted([float(ms) for ms in range(1, 101)] + [3.0])
    assert today["count"] == 101
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert today[name] == pytest.approx(percentile_cont(values, q))
    assert days[-3]["count"] == 1 and days[-3]["p99"] == 50.0
    assert days[0]["count"] == 0 and days[0]["p50"] is None
    svg = str(latency_chart(days))
    assert svg.startswith("<svg") and svg.count("<polyline") == 3


