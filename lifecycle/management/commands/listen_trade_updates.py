"""``python manage.py listen_trade_updates``: the trade-updates listener of one shard (``make run`` supervises it).
Shard from ``LIFECYCLE_SHARD_INDEX`` / ``LIFECYCLE_SHARD_COUNT`` (or the options)."""
import asyncio
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from lifecycle.listener import Listener
from opitios.gc_freeze import freeze_loaded_application


class Command(BaseCommand):
    help = "Hold the trade-updates stream of every enabled account of this shard."

    def add_arguments(self, parser):
        parser.add_argument("--shard-index", type=int, default=settings.LIFECYCLE_SHARD_INDEX)
        parser.add_argument("--shard-count", type=int, default=settings.LIFECYCLE_SHARD_COUNT)

    def handle(self, *args, shard_index, shard_count, **options):
        async def main():
            listener = Listener(shard_index=shard_index, shard_count=shard_count)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, listener.stop)
            await listener.run()

        freeze_loaded_application()  # a full collection stalled the event loop and every account's events
        asyncio.run(main())
