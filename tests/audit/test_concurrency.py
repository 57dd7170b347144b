"""Concurrent appends from threads and processes leave one unbroken, gap-free chain."""
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from django.db import connection, connections, transaction

from audit.chain import verify_chain
from audit.models import AuditEvent
from audit.services import audit_record
from tests.audit.conftest import requires_postgres

ROOT = Path(__file__).resolve().parents[2]
THREADS, PER_THREAD = 4, 300
PROCESSES, PER_PROCESS = 3, 400


def _child_env(database_url: str) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "opitios.settings.test"}
    env.pop("REDIS_URL", None)
    return env


def _writers(database_url: str) -> list[subprocess.Popen]:
    env = _child_env(database_url)
    return [subprocess.Popen([sys.executable, "-m", "tests.audit.chain_writer", str(PER_PROCESS), f"process-{i}"], cwd=ROOT, env=env,
                             stderr=subprocess.PIPE, text=True) for i in range(PROCESSES)]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_threads_and_processes_on_postgres_build_one_chain():
    s = connection.settings_dict
    url = f"postgres://{s['USER']}:{s['PASSWORD'] or ''}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
    processes = _writers(url)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def write(label: str) -> None:
        try:
            start.wait()
            for n in range(PER_THREAD):
                with transaction.atomic():
                    audit_record(actor_type="system", actor_id=label, action="test.concurrent_append", data={"n": n})
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(f"thread-{i}",)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-2000:]
    assert not errors, errors

    total = THREADS * PER_THREAD + PROCESSES * PER_PROCESS
    verdict = verify_chain()
    assert verdict.ok, verdict
    assert verdict.count == total and verdict.last_seq == total
    per_writer = Counter(AuditEvent.objects.values_list("actor_id", flat=True))
    assert per_writer == {**{f"thread-{i}": PER_THREAD for i in range(THREADS)}, **{f"process-{i}": PER_PROCESS for i in range(PROCESSES)}}
    # Writers really interleaved: the chain is not one writer's block after another.
    writers = list(AuditEvent.objects.order_by("seq").values_list("actor_id", flat=True))
    assert sum(1 for a, b in zip(writers, writers[1:], strict=False) if a != b) > THREADS + PROCESSES


def test_sqlite_immediate_transactions_serialise_processes(tmp_path):
    """SQLite has no row locks: BEGIN IMMEDIATE (settings) makes writers queue. Checked on a file database."""
    url = f"sqlite:///{tmp_path / 'chain.sqlite3'}"
    env = _child_env(url)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=120)
    processes = _writers(url)
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-2000:]
    result = subprocess.run([*manage, "verify_audit_chain"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK {PROCESSES * PER_PROCESS} events")
