import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal

import pytest
from django.db import transaction

from audit.chain import GENESIS_HASH, canonical_data_json, canonical_json, canonical_row_before_seq, normalise_data, verify_chain
from audit.models import AuditChainHead, AuditEvent
from audit.services import AlongsideMissing, audit_record
from tests.audit.factories import AlpacaAccountFactory

pytestmark = pytest.mark.django_db


def record(action="order.submitted", **kwargs):
    kwargs.setdefault("data", {"symbol": "AAPL"})
    return audit_record(actor_type=kwargs.pop("actor_type", "system"), actor_id=kwargs.pop("actor_id", "test"), action=action, **kwargs)


def test_events_chain_from_genesis_and_verify():
    first, second, third = record(), record("order.refused"), record("balance.insufficient")
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert AuditChainHead.objects.get().seq == 3
    verdict = verify_chain()
    assert verdict.ok and verdict.count == 3 and verdict.last_seq == 3


def test_hash_is_sha256_of_prev_hash_and_the_documented_canonical_json():
    account = AlpacaAccountFactory()
    event = record(actor_type="user", actor_id=42, account=account, obj=("broker_order", "b-1"),
                   data={"b": [1, 2.5], "a": "é", "qty": Decimal("1.50")})
    stored = AuditEvent.objects.get(seq=event.seq)
    expected = json.dumps({
        "seq": 1, "at": stored.at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "actor_type": "user", "actor_id": "42",
        "action": "order.submitted", "account": account.pk, "object_type": "broker_order", "object_id": "b-1",
        "data": {"a": "é", "b": [1, 2.5], "qty": "1.50"},
    }, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(seq=1, at=stored.at, actor_type="user", actor_id="42", action="order.submitted", account=account.pk,
                          object_type="broker_order", object_id="b-1", data=stored.data) == expected
    assert stored.hash == hashlib.sha256((GENESIS_HASH + expected).encode()).hexdigest()
    assert expected.startswith('{"account":') and '"data":{"a":"é","b":[1,2.5],"qty":"1.50"},"object_id"' in expected


@pytest.mark.parametrize(("account", "actor_id", "object_id"), [(None, "", ""), (7, 'q"uote\\back\nline\u2028', "é✓\x01")])
def test_the_row_built_around_the_stored_data_text_is_the_canonical_json(account, actor_id, object_id):
    # the writer's path (PostgreSQL): the data serialised once, the row built around it
    at = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    data = normalise_data({"z": [1.0, {"b": None, "a": "\"x\""}], "A": Decimal("1.50"), "é": True, "n": 2.5})
    row = {"at": at, "actor_type": "user", "actor_id": actor_id, "action": "order.submitted", "account": account,
           "object_type": "trading.orderrecord", "object_id": object_id}
    expected = json.dumps({**row, "at": "2026-01-02T03:04:05.000006Z", "data": data, "seq": 12}, sort_keys=True,
                          separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    built = canonical_row_before_seq(**row, data_json=canonical_data_json(data, normalised=True)) + "12}"
    assert built == expected == canonical_json(seq=12, data=data, **row)


def test_data_survives_the_database_round_trip_unchanged_for_hashing():
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    record(data={
        "price": Decimal("187.2300"), "when": when, "day": dt.date(2026, 1, 2), "id": uuid.UUID(int=7),
        "whole_float": 1.0, "huge": 1e16, "tiny": 1.5e-10, "ratio": 0.1, "neg_zero": -0.0, "nested": {"z": (1, 2), "a": None, 3: True},
    })
    stored = AuditEvent.objects.get(seq=1).data
    assert stored["price"] == "187.2300" and stored["when"] == "2026-01-02T03:04:05.678901Z" and stored["nested"]["3"] is True
    assert verify_chain().ok


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        record(data={"x": bad})
    assert not AuditEvent.objects.exists()


def test_unsupported_types_are_refused():
    with pytest.raises(TypeError):
        record(data={"x": object()})


@pytest.mark.parametrize("kwargs", [{"actor_type": "robot"}, {"action": "Order Submitted"}, {"action": "order"}, {"action": ""}])
def test_bad_actor_type_or_action_is_refused(kwargs):
    with pytest.raises(ValueError):
        record(**kwargs)


def test_object_from_a_model_instance():
    account = AlpacaAccountFactory()
    event = record("account.synced", account=account.pk, obj=account)
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.object_type, stored.object_id, stored.account_id) == ("accounts.alpacaaccount", str(account.pk), account.pk)


def test_the_event_belongs_to_the_callers_transaction():
    record()
    with pytest.raises(RuntimeError), transaction.atomic():
        record("order.failed")
        raise RuntimeError("the order write failed")
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == [1]
    assert record("order.rejected").seq == 2  # no gap: the head rolled back with the event
    assert verify_chain().ok


def test_a_lost_head_row_is_rebuilt_from_the_last_event():
    record(), record()
    AuditChainHead.objects.all().delete()
    assert record().seq == 3
    assert verify_chain().ok


def _rename_account(pk: int, name: str) -> tuple[str, list]:
    return 'UPDATE "accounts_alpacaaccount" SET "name" = %s WHERE "accounts_alpacaaccount"."id" = %s', [name, pk]


@pytest.mark.parametrize("first", [True, False], ids=["first-append", "chain-exists"])
def test_alongside_write_commits_with_its_event(first):
    account = AlpacaAccountFactory()
    if not first:
        record()
    event = record("order.submitted", account=account, alongside=_rename_account(account.pk, "renamed"))
    account.refresh_from_db()
    assert account.name == "renamed"
    assert AuditEvent.objects.get(seq=event.seq).hash == event.hash and AuditChainHead.objects.get().seq == event.seq
    assert verify_chain().ok


def test_alongside_write_that_matches_nothing_writes_neither():
    record()
    with pytest.raises(AlongsideMissing):
        record("order.submitted", alongside=_rename_account(10**9, "nobody"))
    assert AuditEvent.objects.count() == 1 and AuditChainHead.objects.get().seq == 1
    assert verify_chain().ok
