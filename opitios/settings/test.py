"""The test suite: like local, quieter and faster."""
from opitios.secrets_store import persistent_secret

from .base import *  # noqa: F403
from .base import LOGGING, VAR_DIR, env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or persistent_secret(VAR_DIR / "django-secret-key")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

from opitios.logging import configure  # noqa: E402

configure(LOGGING)
