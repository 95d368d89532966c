"""Settings shared by every environment, read from the process environment.

Every value that differs between machines comes from ``env`` (django-environ). With no
``DATABASE_URL``/``REDIS_URL`` in the environment, ``python -m embedded_servers exec``
(used by ``make run`` and ``make test``) starts the embedded servers and sets them.
"""

from datetime import timedelta
from pathlib import Path

import environ

from kernel.logs.config import logging_config
from sergas.settings.knobs import knobs_from_env

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-local-development-only")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "psqlextra",
    "django_celery_beat",
    "django_prometheus",
    "axes",
    "sessions.apps.SessionsConfig",
    "scheduling.apps.SchedulingConfig",
    "audit.apps.AuditConfig",
    "access.apps.AccessConfig",
    "housekeeping.apps.HousekeepingConfig",
    "traces.apps.TracesConfig",
    "demo.apps.DemoConfig",
    "sergas.apps.SergasConfig",
]

MIDDLEWARE = [
    # First, so every line logged for a request carries its id (kernel/logs).
    "kernel.logs.requests.RequestContextMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # An address with too many failed staff logins gets 429 before the login view runs.
    "access.middleware.StaffLoginThrottleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A view that loses PostgreSQL answers 503 (kernel.availability), not 500.
    "kernel.availability.DatabaseUnavailableMiddleware",
    # Answers a locked-out login attempt (django-axes); after everything that may refuse.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Staff login throttling (django-axes): after LOGIN_FAILURE_LIMIT failures for one username
# from one address, that pair is locked out for LOGIN_LOCKOUT_MINUTES. Attempts are kept in
# PostgreSQL (not Redis), so throttling holds while Redis is down.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("LOGIN_THROTTLING", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client's address is REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT reverse proxies
# (SERGAS_ACCESS, below) read from X-Forwarded-For: access.addresses decides, for axes
# too (without django-ipware, which is not installed, axes would read REMOTE_ADDR only).
AXES_CLIENT_IP_CALLABLE = "access.addresses.client_address"

ROOT_URLCONF = "sergas.urls"
WSGI_APPLICATION = "sergas.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# psqlextra's backend wraps Django's PostgreSQL backend and adds declarative partitioning.
DATABASES = {
    "default": env.db_url(
        "DATABASE_URL",
        default="postgres://postgres@127.0.0.1:5432/sergas",
        engine="psqlextra.backend",
    )
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# Fail fast when PostgreSQL is unreachable instead of hanging a request or a worker.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5)
)
# A server that vanished (host down, network cut) is noticed in about a minute instead of
# the kernel's quarter of an hour; libpq ignores these on unix sockets.
for _name, _value in {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}.items():
    DATABASES["default"]["OPTIONS"].setdefault(_name, _value)
# Off by default (migrations and maintenance may run long); set it for web processes.
if _statement_timeout_ms := env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=0):
    DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={_statement_timeout_ms}"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# One Redis serves the cache tiers, the Celery broker and the result backend.
# ``unix:///path/redis.sock`` and ``redis://host:port/db`` are both accepted.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="sergas"),
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve static files straight from the apps in development (no collectstatic needed).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- Staff dashboard (dashboard/: templated pages, htmx for live parts) ----------------------
# django-htmx ships htmx itself ({% htmx_script %}) and sets request.htmx.
INSTALLED_APPS += ["django_htmx", "dashboard.apps.DashboardConfig"]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
    "django_htmx.middleware.HtmxMiddleware",
)
TEMPLATES[0]["OPTIONS"]["context_processors"].append("dashboard.context_processors.staff_role")
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"
SERGAS_DASHBOARD = knobs_from_env(
    env,
    {
        "PAGE_SIZE": ("DASHBOARD_PAGE_SIZE", env.int),
        "REFRESH_SECONDS": ("DASHBOARD_REFRESH_SECONDS", env.int),
        "LATE_RUN_SECONDS": ("DASHBOARD_LATE_RUN_SECONDS", env.int),
        "OVERVIEW_CACHE_SECONDS": ("DASHBOARD_OVERVIEW_CACHE_SECONDS", env.float),
        "LATE_RECORD_SECONDS": ("DASHBOARD_LATE_RECORD_SECONDS", env.int),
    },
)

# --- Celery ------------------------------------------------------------------------
# kombu spells a Redis unix socket ``redis+socket://``; redis-py spells it ``unix://``.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=REDIS_URL.replace("unix://", "redis+socket://", 1),
)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="celery")
# RabbitMQ as the broker (CELERY_BROKER_URL=amqp://...): queues with message priorities.
CELERY_TASK_QUEUE_MAX_PRIORITY = 10
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
# Zero loss: a task is acknowledged only once it has finished, a task whose worker died is
# redelivered, and a worker holds no more than the task it is running.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redelivery happens after the visibility timeout, so it must outlast the longest review.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_SECONDS", default=12 * 3600),
    # Review priorities map to these message priorities; on Redis 0 is served first.
    "priority_steps": [0, 3, 6, 9],
}
# django-celery-beat's DatabaseScheduler plus the bulk review dispatcher and leadership.
CELERY_BEAT_SCHEDULER = "scheduling.beat:ReviewScheduler"
# Its periodic tasks (CELERY_BEAT_SCHEDULE) are built from the apps' settings in one
# place, sergas/beat_schedule.py, and installed by sergas/celery.py.

# --- Partitioning (psqlextra) --------------------------------------------------------
PSQLEXTRA_PARTITIONING_MANAGER = "audit.partitions.partitioning.manager"
# We use no hstore; the embedded PostgreSQL (pgserver) ships no contrib extensions.
POSTGRES_EXTRA_AUTO_EXTENSION_SET_UP = False

# --- Sergas apps -------------------------------------------------------------------------
# Each app reads one dict, SERGAS_<APP>, through its conf.py, which holds every default
# (docs/architecture.md, "Settings"). Here only: which environment variable sets which key.
SERGAS_SESSIONS = {
    **knobs_from_env(
        env,
        {
            "CHECKPOINTS_KEPT": ("SESSION_CHECKPOINTS_KEPT", env.int),
            "HEARTBEAT_TIMEOUT_SECONDS": ("SESSION_HEARTBEAT_TIMEOUT_SECONDS", env.int),
            "STALE_CHECK_SECONDS": ("SESSION_STALE_CHECK_SECONDS", env.float),
            "ARCHIVE_AFTER_DAYS": ("SESSION_ARCHIVE_AFTER_DAYS", env.int),
            "CACHE_LOCAL_TTL_SECONDS": ("SESSION_CACHE_LOCAL_TTL_SECONDS", env.float),
            "CACHE_LOCAL_MAXSIZE": ("SESSION_CACHE_LOCAL_MAXSIZE", env.int),
            "CACHE_REDIS_TTL_SECONDS": ("SESSION_CACHE_REDIS_TTL_SECONDS", env.int),
            "CACHE_KEY_PREFIX": ("SESSION_CACHE_KEY_PREFIX", env.str),
            "EVENTS_MAX_BATCH": ("EVENTS_MAX_BATCH", env.int),
            "EVENTS_DEDUPE_WINDOW_SECONDS": ("EVENTS_DEDUPE_WINDOW_SECONDS", env.int),
            "EVENTS_MAX_FUTURE_SECONDS": ("EVENTS_MAX_FUTURE_SECONDS", env.int),
            "EVENTS_MAX_AGE_DAYS": ("EVENTS_MAX_AGE_DAYS", env.int),
            "APPROVAL_WAIT_MAX_SECONDS": ("SESSION_APPROVAL_WAIT_MAX_SECONDS", env.float),
            "APPROVAL_WAIT_FALLBACK_SECONDS": (
                "SESSION_APPROVAL_WAIT_FALLBACK_SECONDS",
                env.float,
            ),
            "APPROVAL_EXPIRY_CHECK_SECONDS": (
                "SESSION_APPROVAL_EXPIRY_CHECK_SECONDS",
                env.float,
            ),
        },
    ),
    # Called by every lifecycle transition, in the lock order (sessions/owners.py).
    "OWNERS": ["scheduling.session_owner.ScheduledRunOwner"],
}

SERGAS_SCHEDULING = knobs_from_env(
    env,
    {
        # Empty: agents do all the work (reviews then need executor "queue:<name>").
        "REVIEW_RUNNER": ("SERGAS_REVIEW_RUNNER", env.str),
        "ACCOUNT_SOURCE": ("SERGAS_ACCOUNT_SOURCE", env.str),
        "REVIEW_QUEUE": ("SCHEDULING_REVIEW_QUEUE", env.str),
        "RECOVERY_CHECK_SECONDS": ("SCHEDULING_RECOVERY_CHECK_SECONDS", env.float),
        "DISPATCH_BATCH_SIZE": ("SCHEDULING_DISPATCH_BATCH_SIZE", env.int),
        "DISPATCH_POLL_SECONDS": ("SCHEDULING_DISPATCH_POLL_SECONDS", env.float),
        "DISPATCH_LEAD_SECONDS": ("SCHEDULING_DISPATCH_LEAD_SECONDS", env.float),
        "PREPARE_BATCH_SIZE": ("SCHEDULING_PREPARE_BATCH_SIZE", env.int),
        "BEAT_STANDBY_POLL_SECONDS": ("SCHEDULING_BEAT_STANDBY_POLL_SECONDS", env.float),
        "BEAT_LEADER_STALE_SECONDS": ("SCHEDULING_BEAT_LEADER_STALE_SECONDS", env.float),
        "RUNNER_BATCH_SIZE": ("SCHEDULING_RUNNER_BATCH_SIZE", env.int),
        "BATCH_LEASE_SECONDS": ("SCHEDULING_BATCH_LEASE_SECONDS", env.int),
        "SIMULATED_ACCOUNT_MS": ("SCHEDULING_SIMULATED_ACCOUNT_MS", env.int),
        "SIMULATED_FAILURE_RATE": ("SCHEDULING_SIMULATED_FAILURE_RATE", env.float),
        "WORK_LEASE_SECONDS": ("SCHEDULING_WORK_LEASE_SECONDS", env.int),
        "WORK_WAIT_MAX_SECONDS": ("SCHEDULING_WORK_WAIT_MAX_SECONDS", env.int),
        "BATCH_MAX_ATTEMPTS": ("SCHEDULING_BATCH_MAX_ATTEMPTS", env.int),
        "WAKEUP_FALLBACK_SECONDS": ("SCHEDULING_WAKEUP_FALLBACK_SECONDS", env.float),
        "BATCH_RETENTION_DAYS": ("SCHEDULING_BATCH_RETENTION_DAYS", env.int),
        "EXECUTION_RETENTION_DAYS": ("SCHEDULING_EXECUTION_RETENTION_DAYS", env.int),
        "ALLOW_SIMULATION": ("SCHEDULING_ALLOW_SIMULATION", env.bool),
    },
)

# The API's access layer: tokens, throttling, the input guard, idempotency.
SERGAS_ACCESS = knobs_from_env(
    env,
    {
        "THROTTLE_RATE": ("API_THROTTLE_RATE", env.str),
        "MAX_JSON_DEPTH": ("API_MAX_JSON_DEPTH", env.int),
        "IDEMPOTENCY_TTL_HOURS": ("API_IDEMPOTENCY_TTL_HOURS", env.int),
        "ADMISSION_SECONDS": ("API_ADMISSION_SECONDS", env.float),
        "TOKEN_CACHE_SECONDS": ("API_TOKEN_CACHE_SECONDS", env.float),
        "AUTH_FAILURE_LIMIT": ("AUTH_FAILURE_LIMIT", env.int),
        "AUTH_FAILURE_WINDOW_SECONDS": ("AUTH_FAILURE_WINDOW_SECONDS", env.int),
        "AUTH_FAILURE_FLUSH_SECONDS": ("AUTH_FAILURE_FLUSH_SECONDS", env.float),
        "TRUSTED_PROXY_COUNT": ("TRUSTED_PROXY_COUNT", env.int),
    },
)
# The largest request body, for every view: the API answers 413 above it (its limit,
# access.conf.max_body_bytes, is this one) before Django would refuse to read the body.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("API_MAX_BODY_BYTES", default=4 * 1024 * 1024)

SERGAS_AUDIT = knobs_from_env(
    env,
    {
        "PREMAKE_MONTHS": ("AUDIT_PREMAKE_MONTHS", env.int),
        "RETENTION_MONTHS": ("AUDIT_RETENTION_MONTHS", env.int),
        "ARCHIVE_DIR": ("AUDIT_ARCHIVE_DIR", env.str),
        "MAINTENANCE_QUEUE": ("MAINTENANCE_QUEUE", env.str),
        "SEAL_INTERVAL_SECONDS": ("AUDIT_SEAL_INTERVAL_SECONDS", env.int),
        "SEAL_MAX_EVENTS": ("AUDIT_SEAL_MAX_EVENTS", env.int),
        "DDL_LOCK_TIMEOUT_SECONDS": ("AUDIT_DDL_LOCK_TIMEOUT_SECONDS", env.int),
        "AUTO_REPAIR_MAX_ROWS": ("AUDIT_AUTO_REPAIR_MAX_ROWS", env.int),
        "SIGNING_KEY": ("AUDIT_SIGNING_KEY", env.str),
        "SIGNING_KEY_FILE": ("AUDIT_SIGNING_KEY_FILE", env.str),
        "SIGNING_KEY_AUTOCREATE": ("AUDIT_SIGNING_KEY_AUTOCREATE", env.bool),
        "VERIFY_KEY_FILES": ("AUDIT_VERIFY_KEY_FILES", env.list),
        "WITNESS_FILES": ("AUDIT_WITNESS_FILES", env.list),
        "WITNESS_URLS": ("AUDIT_WITNESS_URLS", env.list),
        "WITNESS_TOKEN": ("AUDIT_WITNESS_TOKEN", env.str),
        "WITNESS_OPT_OUT": ("AUDIT_WITNESS_OPT_OUT", env.bool),
    },
)

# Spans of OpenTelemetry traces (docs/api.md "OpenTelemetry traces", docs/operations.md
# "Traces"). TRACES_MODEL_PRICES is JSON: {"claude-sonnet-4": {"input": 3, "output": 15}},
# USD per million tokens.
SERGAS_TRACES = knobs_from_env(
    env,
    {
        "RETENTION_DAYS": ("TRACES_RETENTION_DAYS", env.int),
        "PREMAKE_DAYS": ("TRACES_PREMAKE_DAYS", env.int),
        "MAX_DECODED_BYTES": ("TRACES_MAX_DECODED_BYTES", env.int),
        "MAX_FUTURE_SECONDS": ("TRACES_MAX_FUTURE_SECONDS", env.int),
        "DDL_LOCK_TIMEOUT_SECONDS": ("TRACES_DDL_LOCK_TIMEOUT_SECONDS", env.int),
        "MODEL_PRICES": ("TRACES_MODEL_PRICES", env.json),
    },
)

# --- Logs (kernel/logs; docs/operations.md, "Logs") ----------------------------------------
# One line per record on stderr, from every logger (ours, Django's, Celery's, gunicorn's):
# "text" for people (development), "json" for log shippers (production's default).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
LOGGING_CONFIG = "kernel.logs.config.configure"
