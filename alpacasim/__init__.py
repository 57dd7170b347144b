"""alpacasim: an Alpaca-compatible paper broker and market-data simulator.

Standalone: it never imports Django or the project's apps.
"""

__version__ = "0.1.0"
