"""Keep the collector off what a long-lived process loaded at start (docs/performance.md, "The order's own CPU
in the web process").

Django's setup leaves about 175,000 objects that live as long as the process. Every full collection walked all
of them: 135-214 ms of CPU, a stall for whatever the process was doing (an order in a gunicorn worker, the event
loop of the trade-updates listener). Called once the application is loaded, before the process serves.
"""
import gc


def freeze_loaded_application() -> None:
    gc.collect()
    gc.freeze()
