"""``manage.py run_hub``: the market-data hub as its own process (with Redis; docs/streaming.md).

SIGTERM ends it at once (Python's default); its leader lock expires within 5 s and a standby leads. As a
container's PID 1 it needs an init to get that default (compose.yaml: ``init: true``). Without Redis there
is nothing to do: the ws process hosts the hub."""
import asyncio

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
        asyncio.run(Hub().run())
