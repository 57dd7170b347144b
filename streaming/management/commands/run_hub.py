"""``manage.py run_hub``: the market-data hub as its own process (with Redis; docs/streaming.md)."""
import asyncio

from django.core.management.base import BaseCommand

from streaming.hub import Hub


class Command(BaseCommand):
    help = "Run the market-data hub: one upstream stream per feed, leader-locked in Redis."

    def handle(self, *args, **options):
        asyncio.run(Hub().run())
