"""Development and demo (`make run`): embedded defaults, console logging, generated secrets under var/.

DEBUG stays off unless DJANGO_DEBUG=1: the server binds 0.0.0.0 and Django's debug pages show
local variables, which may hold decrypted credentials.
"""
from opitios.secrets_store import persistent_secret

from .base import *  # noqa: F403
from .base import LOGGING, VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or persistent_secret(VAR_DIR / "django-secret-key")
if "console" not in LOGGING["root"]["handlers"]:
    LOGGING["root"]["handlers"].append("console")

from opitios.logging import configure  # noqa: E402

configure(LOGGING)
