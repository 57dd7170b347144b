"""The ticks worker keeps its CPU priority; every other worker is lowered (opitios/celery.py)."""
from __future__ import annotations

import pytest

from opitios.celery import _consumes_only_ticks


@pytest.mark.parametrize(("argv", "only_ticks"), [
    (["celery", "-A", "opitios", "worker", "-Q", "ticks", "-n", "ticks@h"], True),
    (["celery", "worker", "--queues=ticks"], True),
    (["celery", "worker", "--queues", "ticks"], True),
    (["celery", "worker", "-Q", "celery,ticks"], False),
    (["celery", "worker", "-n", "worker@h"], False),
    (["celery", "worker", "-Q"], False),
])
def test_only_a_worker_of_the_ticks_queue_alone_keeps_its_priority(argv, only_ticks):
    assert _consumes_only_ticks(argv) is only_ticks
