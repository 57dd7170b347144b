"""Order input serializers reuse one field tree per class and thread (opitios/serializers.py, FieldsOncePerThread):
each instance still validates its own data with its own context, threads never share a tree, and a stock order
nested in a bulk order keeps a tree of its own."""
import threading
from decimal import Decimal

from trading.serializers import BulkOrderInputSerializer, StockOrderInputSerializer

ORDER = {"symbol": "AAPL", "qty": "1", "side": "buy", "type": "market", "time_in_force": "day"}


def test_instances_in_one_thread_share_the_tree_but_validate_their_own_data():
    first = StockOrderInputSerializer(data=ORDER, context={"n": 1})
    assert first.is_valid(), first.errors
    second = StockOrderInputSerializer(data={**ORDER, "qty": "x"}, context={"n": 2})
    assert not second.is_valid()
    assert set(second.errors) == {"qty"}
    assert second.fields is not None and first.fields is second.fields  # built once
    assert all(field.parent is second for field in second.fields.values())
    assert second.fields["qty"].context == {"n": 2}
    third = StockOrderInputSerializer(data={**ORDER, "qty": "2"})
    assert third.is_valid(), third.errors
    assert third.intent.qty == Decimal(2) and first.intent.qty == Decimal(1)


def test_each_thread_builds_its_own_tree():
    trees = []

    def build():
        s = StockOrderInputSerializer(data=ORDER)
        assert s.is_valid(), s.errors
        trees.append(s.fields)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(trees) == 2 and trees[0] is not trees[1]


def test_a_nested_stock_order_keeps_its_tree_after_a_top_level_one():
    bulk = BulkOrderInputSerializer(data={"stock": ORDER})
    assert bulk.is_valid(), bulk.errors
    StockOrderInputSerializer(data=ORDER).is_valid()  # takes this thread's top-level tree over
    again = BulkOrderInputSerializer(data={"stock": {**ORDER, "qty": "3"}}, context={"n": 3})
    assert again.is_valid(), again.errors
    nested = again.fields["stock"]
    assert nested.parent is again
    assert all(field.root is again for field in nested.fields.values())
    assert again.intent.qty == Decimal(3)
    bad = BulkOrderInputSerializer(data={"stock": {**ORDER, "side": "hold"}})
    assert not bad.is_valid()
    assert set(bad.errors["stock"]) == {"side"}
