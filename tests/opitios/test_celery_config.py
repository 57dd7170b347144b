"""The Celery app's contract: JSON only, task time limits, events on for Flower, Django's
logging kept, one message prefetched per process. The real worker runs in tests/e2e/test_stack.py."""
from opitios.celery import app


def test_the_celery_app_is_configured_as_the_spec_says():
    conf = app.conf
    assert (conf.accept_content, conf.task_serializer, conf.result_serializer) == (["json"], "json", "json")
    assert (conf.task_soft_time_limit, conf.task_time_limit) == (60, 90)
    assert conf.worker_send_task_events is True
    assert conf.worker_hijack_root_logger is False
    assert conf.worker_prefetch_multiplier == 1
    assert conf.enable_utc is True and conf.timezone == "UTC"
    assert "debug.ping" in app.tasks
