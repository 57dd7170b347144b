import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "opitios.settings.local")
application = get_wsgi_application()

from opitios.request_timing import stamp_received  # noqa: E402 - after django.setup()

# received_at is stamped here, before Django's handler (docs/architecture.md, "Order timing").
application = stamp_received(application)
