"""``manage.py run_hub``: the market-data hub as its own process (with Redis; docs/streaming.md).

SIGTERM or SIGINT stops it at once: the feeds close and the leader lock is released, so a standby
leads within its next poll. Without Redis there is nothing to do: the ws process hosts the hub."""
import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from streaming.hub import Hub


class Command(BaseCommand):
    help = "Run the market-data hub: one upstream stream per feed, leader-locked in Redis."

    def handle(self, *args, **options):
        if not settings.REDIS_URL:
            # A second hub would open a second upstream connection per feed (Alpaca allows one).
            self.stderr.write("run_hub: without REDIS_URL the ws process (python -m streaming.serve) hosts the hub; exiting.")
            return

        async def main():
            task = asyncio.create_task(Hub().run())
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):  # as PID 1 in a container, SIGTERM does nothing without a handler
                loop.add_signal_handler(sig, task.cancel)
            try:
                await task
            except asyncio.CancelledError:
                pass

        asyncio.run(main())
