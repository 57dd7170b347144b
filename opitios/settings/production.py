"""Production: every secret comes from the environment or secrets.yml, none is generated."""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, OPITIOS, VAR_DIR, env

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Production settings have no default secret key: "
        "set DJANGO_SECRET_KEY in the environment."
    )
if not OPITIOS.jwt.has_key():
    raise ImproperlyConfigured(
        "No JWT key configured. Set jwt.secret_key (HS*) or jwt.public_key (RS256) in secrets.yml, "
        "or OPITIOS_JWT_SECRET_KEY / OPITIOS_JWT_PUBLIC_KEY in the environment."
    )
SIMPLE_JWT = OPITIOS.jwt.simple_jwt_settings(VAR_DIR, generate=False)
if not env.str("OPITIOS_FERNET_KEYS", default=""):
    raise ImproperlyConfigured(
        "OPITIOS_FERNET_KEYS is not set. Production needs at least one Fernet key to decrypt account "
        "credentials (comma-separated, newest first)."
    )

DEBUG = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed, compressed names, cached forever by clients; needs `collectstatic` at deploy.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)

from opitios.logging import configure  # noqa: E402

configure(LOGGING)
