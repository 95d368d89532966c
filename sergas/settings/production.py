"""Production: ``DJANGO_SETTINGS_MODULE=sergas.settings.production``.

Refuses to start without a real ``SECRET_KEY`` (set, at least 50 characters, not the
development key) and without ``ALLOWED_HOSTS``. HTTPS only: secure cookies, HSTS and a
redirect to HTTPS (behind a TLS-terminating proxy, set ``SECURE_PROXY_SSL_HEADER=1`` so
Django trusts its ``X-Forwarded-Proto``). ``manage.py check --deploy`` is clean.
"""

from django.core.exceptions import ImproperlyConfigured

from kernel.logs.config import logging_config
from sergas.settings.base import *  # noqa: F403
from sergas.settings.base import LOG_LEVEL, SERGAS_SCHEDULING, audit_witnesses, env

DEBUG = False

SECRET_KEY = env.str("SECRET_KEY", default="")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured(
        "Production settings need a real SECRET_KEY: at least 50 random characters, e.g. "
        'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("Production settings need ALLOWED_HOSTS (comma-separated).")

# HTTPS only. Health checks and scrapes from inside the network may stay on plain HTTP.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$", r"^readyz$", r"^metrics$"]
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Cookies: HTTPS only, never read by scripts, gone when the browser closes after a work day.
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE_SECONDS", default=12 * 3600)
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True

# The simulated runner and the synthetic accounts record invented results: refused
# (system checks scheduling.E001/E002) unless explicitly allowed, e.g. for a demo.
SERGAS_SCHEDULING = {
    **SERGAS_SCHEDULING,
    "ALLOW_SIMULATION": env.bool("SCHEDULING_ALLOW_SIMULATION", default=False),
}

# Seal heads are signed with a key made by `manage.py audit_keygen` and published to
# witnesses outside the database: both required (checks audit.E001/E002) unless
# AUDIT_WITNESS_OPT_OUT=true. Nothing is generated, and no witness is assumed.
AUDIT_SIGNING_KEY_FILE = env.str("AUDIT_SIGNING_KEY_FILE", default="")
AUDIT_SIGNING_KEY_AUTOCREATE = False
AUDIT_WITNESSES = audit_witnesses(
    env.list("AUDIT_WITNESS_FILES", default=[]),
    env.list("AUDIT_WITNESS_URLS", default=[]),
    env.str("AUDIT_WITNESS_TOKEN", default=""),
)

# One JSON object per line, for the log shipper (docs/operations.md, "Logs").
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
