import json

import pytest

from audit.chain import compute_hash, verify_chain
from audit.services import audit_record
from tests.audit.conftest import tamper

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain():
    return [audit_record(actor_type="user", actor_id=str(n), action="order.submitted", data={"qty": n, "symbol": "AAPL"}) for n in range(1, 11)]


def test_untouched_chain_verifies(chain):
    assert verify_chain().ok


def test_altered_data_is_detected_at_its_seq(chain):
    tamper("UPDATE audit_auditevent SET data = %s WHERE seq = 6", [json.dumps({"qty": 600, "symbol": "AAPL"})])
    verdict = verify_chain()
    assert (verdict.ok, verdict.first_broken_seq, verdict.count) == (False, 6, 5)
    assert "row altered" in verdict.reason


def test_altered_column_is_detected_at_its_seq(chain):
    tamper("UPDATE audit_auditevent SET actor_id = 'someone-else' WHERE seq = 3")
    verdict = verify_chain()
    assert (verdict.ok, verdict.first_broken_seq) == (False, 3)


def test_a_rehashed_row_breaks_the_link_to_the_next_row(chain):
    row = chain[3]  # seq 4, rewritten with a consistent hash of its own
    forged = compute_hash(row.prev_hash, seq=4, at=row.at, actor_type=row.actor_type, actor_id=row.actor_id, action="order.cancelled",
                          account=None, object_type="", object_id="", data=row.data)
    tamper("UPDATE audit_auditevent SET action = 'order.cancelled', hash = %s WHERE seq = 4", [forged])
    verdict = verify_chain()
    assert (verdict.ok, verdict.first_broken_seq) == (False, 5)
    assert "prev_hash" in verdict.reason


def test_a_deleted_row_is_detected_at_its_seq(chain):
    tamper("DELETE FROM audit_auditevent WHERE seq = 7")
    verdict = verify_chain()
    assert (verdict.ok, verdict.first_broken_seq) == (False, 7)
    assert "missing" in verdict.reason


def test_rows_removed_at_the_end_are_detected(chain):
    tamper("DELETE FROM audit_auditevent WHERE seq >= 9")
    verdict = verify_chain()
    assert (verdict.ok, verdict.first_broken_seq, verdict.count) == (False, 9, 8)
    assert "removed at the end" in verdict.reason


def test_since_trusts_the_rows_before_it(chain):
    tamper("UPDATE audit_auditevent SET actor_id = 'x' WHERE seq = 2")
    assert verify_chain(since=3).ok and verify_chain(since=3).count == 8
    assert verify_chain(since=2).first_broken_seq == 2
