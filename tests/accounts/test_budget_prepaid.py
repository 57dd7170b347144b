"""The throttle and the account's upstream budget in one round trip (accounts.budget.window_take_with_budget),
on whichever shared store the pass configures (the embedded counter table, or Redis)."""
from __future__ import annotations

import time

import pytest

from accounts import budget

from .test_routing import _stored, clear_counters

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean():
    clear_counters()
    budget.prepaid_release()
    yield
    budget.prepaid_release()
    clear_counters()


def _budget_key(pk: int) -> str:
    return f"{budget.PREFIX}:{pk}:req:{budget.window_of(time.time())[0]}"


def test_one_round_trip_counts_both_and_the_broker_call_uses_it(round_trips):
    taken = budget.window_take_with_budget("throttle:t:user:u1", 10, window=60, account_pk=5, strict=True)
    assert taken.allowed and len(round_trips) == 1
    assert _stored([_budget_key(5)]) == {_budget_key(5): 1}
    assert budget.reserve(5, 100).allowed
    assert len(round_trips) == 1, "the prepaid count was used without a round trip"
    assert budget.reserve(5, 100).allowed  # a second upstream call counts on its own
    assert len(round_trips) == 2 and _stored([_budget_key(5)]) == {_budget_key(5): 2}
    budget.prepaid_release()
    budget.counters.flush()
    assert _stored([_budget_key(5)]) == {_budget_key(5): 2}, "nothing unused to give back"


def test_unused_prepaid_budget_is_given_back():
    budget.window_take_with_budget("throttle:t:user:u2", 10, window=60, account_pk=6, strict=True)
    budget.prepaid_release()
    budget.counters.flush()
    assert _stored([_budget_key(6)]).get(_budget_key(6), 0) == 0


def test_the_budget_decides_against_the_limit_of_the_moment():
    budget.window_take_with_budget("throttle:t:user:u3", 10, window=60, account_pk=7, strict=True)
    refused = budget.reserve(7, 0)  # the account's limit was lowered meanwhile
    assert not refused.allowed and refused.retry_after >= 1
    assert _stored([_budget_key(7)]).get(_budget_key(7), 0) == 0, "a refused call is not counted"


def test_a_refused_throttle_counts_nothing():
    assert budget.window_take_with_budget("throttle:t:user:u4", 1, window=60, account_pk=8, strict=True).allowed
    budget.prepaid_release()
    refused = budget.window_take_with_budget("throttle:t:user:u4", 1, window=60, account_pk=8, strict=True)
    assert not refused.allowed
    budget.counters.flush()
    assert _stored([_budget_key(8)]).get(_budget_key(8), 0) == 0
    assert budget.reserve(8, 100).allowed  # nothing prepaid is left behind by the refusal
