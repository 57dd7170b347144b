"""The test suite: like local, quieter and faster."""
import os
from pathlib import Path

from opitios.secrets_store import persistent_secret

from .base import *  # noqa: F403
from .base import LOGGING, VAR_DIR, env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or persistent_secret(VAR_DIR / "django-secret-key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Never the checkout's logs/, the files operators watch: the suite logs refusals and faults on purpose.
# Exported, so processes the tests start (make run, manage.py, the stack) inherit it unless told otherwise.
LOG_DIR = Path(env.str("OPITIOS_LOG_DIR", default=str(VAR_DIR / "test-logs")))
os.environ["OPITIOS_LOG_DIR"] = str(LOG_DIR)
for _handler, _file in (("app_file", "app/opitios.log"), ("error_file", "errors/errors.log")):
    LOGGING["handlers"][_handler]["filename"] = str(LOG_DIR / _file)

from opitios.logging import configure  # noqa: E402

configure(LOGGING)
