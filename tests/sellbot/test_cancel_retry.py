"""The cancel task's retry contract: 5 retries, exponential backoff with jitter, 60 s cap, and
delays that never shrink. The retries themselves run on a real worker in tests/e2e/test_sellbot_worker.py."""
from sellbot import services
from sellbot.tasks import cancel_order


def test_five_retries():
    assert cancel_order.max_retries == 5


def test_delays_double_stay_in_the_upper_half_of_each_step_and_cap_at_60_seconds():
    for _ in range(500):
        delays = [services.retry_delay(retries=n, base=1.0, cap=60.0) for n in range(9)]
        for n, delay in enumerate(delays):
            assert min(60.0, 2 ** (n - 1)) <= delay <= min(60.0, 2**n), (n, delays)
        assert delays == sorted(delays), delays
    assert services.retry_delay(retries=20, base=1.0, cap=60.0) == 60.0


def test_the_base_scales_every_step():
    for n in range(5):
        assert 0.05 * 2 ** (n - 1) <= services.retry_delay(retries=n, base=0.05) <= 0.05 * 2**n
