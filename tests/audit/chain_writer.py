"""Append COUNT audit events from a separate process: ``python -m tests.audit.chain_writer COUNT LABEL``.

Used by test_concurrency; the database comes from DATABASE_URL like any Opitios process.
"""
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.test")
    import django

    django.setup()
    from django.db import transaction

    from audit.services import audit_record

    count, label = int(sys.argv[1]), sys.argv[2]
    for n in range(count):
        with transaction.atomic():
            audit_record(actor_type="system", actor_id=label, action="test.concurrent_append", data={"n": n})


if __name__ == "__main__":
    main()
