"""Settings shared by every environment, read from the process environment.

Every value that differs between machines comes from ``env`` (django-environ). With no
``DATABASE_URL``/``REDIS_URL`` in the environment, ``python -m embedded_servers exec``
(used by ``make run`` and ``make test``) starts the embedded servers and sets them.
"""

from datetime import timedelta
from pathlib import Path

import environ

from kernel.logs.config import logging_config

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
# The client's address is REMOTE_ADDR; behind TRUSTED_PROXY_COUNT reverse proxies, it is
# read from X-Forwarded-For (never trusted without proxies: a client could forge it).
# access.addresses decides, for axes too (without django-ipware, which is not installed,
# axes would read REMOTE_ADDR only: the proxy's address).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
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
SERGAS_DASHBOARD = {
    "PAGE_SIZE": env.int("DASHBOARD_PAGE_SIZE", default=50),
    "REFRESH_SECONDS": env.int("DASHBOARD_REFRESH_SECONDS", default=5),
    "LATE_RUN_SECONDS": env.int("DASHBOARD_LATE_RUN_SECONDS", default=60),
    "OVERVIEW_CACHE_SECONDS": env.float("DASHBOARD_OVERVIEW_CACHE_SECONDS", default=5.0),
    "LATE_RECORD_SECONDS": env.int("DASHBOARD_LATE_RECORD_SECONDS", default=10),
}

# --- Celery ------------------------------------------------------------------------
# kombu spells a Redis unix socket ``redis+socket://``; redis-py spells it ``unix://``.
CELERY_BROKER_URL = env.str(
    "CELERY_BROKER_URL",
    default=REDIS_URL.replace("unix://", "redis+socket://", 1),
)
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="celery")
# The daily audit partition maintenance creates, detaches and drops partitions: DDL that
# only the tables' owner may run. Give it a queue of its own, consumed by one worker
# running as the owner, and web and the other workers need no DDL right at all
# (docs/deployment.md, "Roles"). The default queue by default.
MAINTENANCE_QUEUE = env.str("MAINTENANCE_QUEUE", default=CELERY_TASK_DEFAULT_QUEUE)
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
# Crash detection and recovery run every minute; drills shorten them to seconds.
CELERY_BEAT_SCHEDULE = {
    "scheduling-recover-interrupted-runs": {
        "task": "scheduling.tasks.recover_interrupted_runs",
        "schedule": env.float("SCHEDULING_RECOVERY_CHECK_SECONDS", default=60.0),
    },
    "sessions-interrupt-stale": {
        "task": "sessions.tasks.interrupt_stale_sessions",
        "schedule": env.float("SESSION_STALE_CHECK_SECONDS", default=60.0),
    },
    "sessions-expire-approvals": {
        "task": "sessions.tasks.expire_approvals",
        "schedule": env.float("SESSION_APPROVAL_EXPIRY_CHECK_SECONDS", default=60.0),
    },
    "agents-prune-idempotency-records": {
        "task": "agents.tasks.prune_idempotency_records",
        "schedule": 3600.0,
    },
    # One audit event per closed window of failed authentications from one address.
    "agents-flush-auth-failure-summaries": {
        "task": "agents.tasks.flush_auth_failure_summaries",
        "schedule": env.float("AUTH_FAILURE_FLUSH_SECONDS", default=60.0),
    },
    "audit-maintain-partitions": {
        "task": "audit.tasks.maintain_audit_partitions",
        "schedule": 24 * 3600.0,
        "options": {"queue": MAINTENANCE_QUEUE},
    },
    # Finished runs, their batches, finished sessions, by their retentions.
    "housekeeping-prune": {
        "task": "housekeeping.tasks.prune",
        "schedule": 24 * 3600.0,
    },
}

# --- Partitioning (psqlextra) --------------------------------------------------------
PSQLEXTRA_PARTITIONING_MANAGER = "audit.partitions.partitioning.manager"
# We use no hstore; the embedded PostgreSQL (pgserver) ships no contrib extensions.
POSTGRES_EXTRA_AUTO_EXTENSION_SET_UP = False

# --- Sergas apps (each app reads these through its own conf module) ----------------------
SERGAS_SESSIONS = {
    "CHECKPOINTS_KEPT": env.int("SESSION_CHECKPOINTS_KEPT", default=20),
    "HEARTBEAT_TIMEOUT_SECONDS": env.int("SESSION_HEARTBEAT_TIMEOUT_SECONDS", default=300),
    "ARCHIVE_AFTER_DAYS": env.int("SESSION_ARCHIVE_AFTER_DAYS", default=30),
    "CACHE_LOCAL_TTL_SECONDS": env.float("SESSION_CACHE_LOCAL_TTL_SECONDS", default=1.0),
    "CACHE_LOCAL_MAXSIZE": env.int("SESSION_CACHE_LOCAL_MAXSIZE", default=1024),
    "CACHE_REDIS_TTL_SECONDS": env.int("SESSION_CACHE_REDIS_TTL_SECONDS", default=60),
    "CACHE_KEY_PREFIX": env.str("SESSION_CACHE_KEY_PREFIX", default="sergas"),
    # Tool and task events reported by agents (POST /api/v1/events and sessions.hooks).
    "EVENTS_MAX_BATCH": env.int("EVENTS_MAX_BATCH", default=1000),
    "EVENTS_DEDUPE_WINDOW_SECONDS": env.int("EVENTS_DEDUPE_WINDOW_SECONDS", default=24 * 3600),
    "EVENTS_MAX_FUTURE_SECONDS": env.int("EVENTS_MAX_FUTURE_SECONDS", default=300),
    "EVENTS_MAX_AGE_DAYS": env.int("EVENTS_MAX_AGE_DAYS", default=7 * 366),
    # Approvals (docs/api.md, "Approvals").
    "APPROVAL_WAIT_MAX_SECONDS": env.float("SESSION_APPROVAL_WAIT_MAX_SECONDS", default=60.0),
    "APPROVAL_WAIT_FALLBACK_SECONDS": env.float(
        "SESSION_APPROVAL_WAIT_FALLBACK_SECONDS", default=2.0
    ),
    # Called by every lifecycle transition, in the lock order (sessions/owners.py).
    "OWNERS": ["scheduling.session_owner.ScheduledRunOwner"],
}

# --- Scheduling (read through scheduling/conf.py) ------------------------------------------
SERGAS_REVIEW_RUNNER = env.str(
    "SERGAS_REVIEW_RUNNER", default="scheduling.runners.SimulatedReviewRunner"
)
SERGAS_ACCOUNT_SOURCE = env.str(
    "SERGAS_ACCOUNT_SOURCE", default="scheduling.accounts.SyntheticAccountSource"
)
SERGAS_SCHEDULING = {
    "REVIEW_QUEUE": env.str("SCHEDULING_REVIEW_QUEUE", default="reviews"),
    "DISPATCH_BATCH_SIZE": env.int("SCHEDULING_DISPATCH_BATCH_SIZE", default=1000),
    "DISPATCH_POLL_SECONDS": env.float("SCHEDULING_DISPATCH_POLL_SECONDS", default=1.0),
    "DISPATCH_LEAD_SECONDS": env.float("SCHEDULING_DISPATCH_LEAD_SECONDS", default=10.0),
    "PREPARE_BATCH_SIZE": env.int("SCHEDULING_PREPARE_BATCH_SIZE", default=200),
    "BEAT_STANDBY_POLL_SECONDS": env.float("SCHEDULING_BEAT_STANDBY_POLL_SECONDS", default=2.0),
    # /readyz and the alerts call a leader stale past this without a tick (docs/operations.md).
    "BEAT_LEADER_STALE_SECONDS": env.float("SCHEDULING_BEAT_LEADER_STALE_SECONDS", default=60.0),
    "RUNNER_BATCH_SIZE": env.int("SCHEDULING_RUNNER_BATCH_SIZE", default=10),
    "BATCH_LEASE_SECONDS": env.int("SCHEDULING_BATCH_LEASE_SECONDS", default=600),
    "SIMULATED_ACCOUNT_MS": env.int("SCHEDULING_SIMULATED_ACCOUNT_MS", default=50),
    "SIMULATED_FAILURE_RATE": env.float("SCHEDULING_SIMULATED_FAILURE_RATE", default=0.05),
    # The work queue of agents (docs/api.md, "Work queue").
    "WORK_LEASE_SECONDS": env.int("SCHEDULING_WORK_LEASE_SECONDS", default=60),
    "WORK_WAIT_MAX_SECONDS": env.int("SCHEDULING_WORK_WAIT_MAX_SECONDS", default=30),
    "BATCH_MAX_ATTEMPTS": env.int("SCHEDULING_BATCH_MAX_ATTEMPTS", default=3),
    "WAKEUP_FALLBACK_SECONDS": env.float("SCHEDULING_WAKEUP_FALLBACK_SECONDS", default=1.0),
    # Housekeeping (docs/operations.md): days a finished run keeps its batches, and days
    # it is kept at all with its results; 0 keeps them forever.
    "BATCH_RETENTION_DAYS": env.int("SCHEDULING_BATCH_RETENTION_DAYS", default=30),
    "EXECUTION_RETENTION_DAYS": env.int("SCHEDULING_EXECUTION_RETENTION_DAYS", default=400),
    # The simulated runner and synthetic accounts (production refuses them unless true).
    "ALLOW_SIMULATION": env.bool("SCHEDULING_ALLOW_SIMULATION", default=True),
}

# --- Agent API (read through access/conf.py; the API itself is sergas/api.py) ---------
SERGAS_AGENTS = {
    "THROTTLE_RATE": env.str("API_THROTTLE_RATE", default="3000/min"),
    "MAX_BODY_BYTES": env.int("API_MAX_BODY_BYTES", default=4 * 1024 * 1024),
    "MAX_JSON_DEPTH": env.int("API_MAX_JSON_DEPTH", default=32),
    "IDEMPOTENCY_TTL_HOURS": env.int("API_IDEMPOTENCY_TTL_HOURS", default=24),
    # A verified token's requests are admitted without asking Redis for this long (the
    # delay of a revocation elsewhere), and without reading PostgreSQL for the second
    # (docs/api.md, "What a request costs").
    "ADMISSION_SECONDS": env.float("API_ADMISSION_SECONDS", default=1.0),
    "TOKEN_CACHE_SECONDS": env.float("API_TOKEN_CACHE_SECONDS", default=10.0),
    # Failed authentications (bearer tokens, staff logins) per client address and window,
    # before 429; also the window of their summaries in the audit trail (docs/security.md).
    "AUTH_FAILURE_LIMIT": env.int("AUTH_FAILURE_LIMIT", default=20),
    "AUTH_FAILURE_WINDOW_SECONDS": env.int("AUTH_FAILURE_WINDOW_SECONDS", default=300),
}
# Django refuses bodies above this before the API can answer 413 with its own limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = SERGAS_AGENTS["MAX_BODY_BYTES"]

# --- Logs (kernel/logs; docs/operations.md, "Logs") ----------------------------------------
# One line per record on stderr, from every logger (ours, Django's, Celery's, gunicorn's):
# "text" for people (development), "json" for log shippers (production's default).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = logging_config(LOG_FORMAT, LOG_LEVEL)
LOGGING_CONFIG = "kernel.logs.config.configure"

# --- Audit trail (read through audit/conf.py; docs/audit.md) ---------------------------
# Partitions made ahead of the current month, and months kept before a partition is
# archived, verified and dropped (84 = seven years).
AUDIT_PREMAKE_MONTHS = env.int("AUDIT_PREMAKE_MONTHS", default=3)
AUDIT_RETENTION_MONTHS = env.int("AUDIT_RETENTION_MONTHS", default=84)
# Where expired partitions are archived (compressed JSONL with the seals that cover it).
AUDIT_ARCHIVE_DIR = Path(
    env.str("AUDIT_ARCHIVE_DIR", default=str(BASE_DIR / "var" / "audit-archive"))
)
# How often events are sealed into the hash chain, and the most events one seal lists.
AUDIT_SEAL_INTERVAL_SECONDS = env.int("AUDIT_SEAL_INTERVAL_SECONDS", default=60)
AUDIT_SEAL_MAX_EVENTS = env.int("AUDIT_SEAL_MAX_EVENTS", default=50_000)
# How long partition DDL (detach, drop, repair) waits for its lock before giving up
# until the next run, so it never stalls writers queued behind it.
AUDIT_DDL_LOCK_TIMEOUT_SECONDS = env.int("AUDIT_DDL_LOCK_TIMEOUT_SECONDS", default=10)
AUDIT_AUTO_REPAIR_MAX_ROWS = env.int("AUDIT_AUTO_REPAIR_MAX_ROWS", default=100_000)
# Signed seal heads and their witnesses (docs/audit.md, "Witnessed heads"). Development:
# a key generated under var/ on first use and a file witness under var/. Production
# (sergas.settings.production) generates nothing and requires both, or the opt-out.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")  # the PEM itself, if not a file
AUDIT_SIGNING_KEY_FILE = env.str(
    "AUDIT_SIGNING_KEY_FILE", default=str(BASE_DIR / "var" / "audit-signing-key.pem")
)
AUDIT_SIGNING_KEY_AUTOCREATE = env.bool("AUDIT_SIGNING_KEY_AUTOCREATE", default=True)
AUDIT_VERIFY_KEY_FILES = env.list("AUDIT_VERIFY_KEY_FILES", default=[])


def audit_witnesses(files: list[str], urls: list[str], token: str) -> list[dict]:
    """``AUDIT_WITNESSES`` from the environment's lists of witness files and URLs."""
    return [
        {
            "NAME": f"file:{path}",
            "BACKEND": "audit.integrity.witnesses.FileWitness",
            "OPTIONS": {"path": path},
        }
        for path in files
    ] + [
        {
            "NAME": f"http:{url}",
            "BACKEND": "audit.integrity.witnesses.HttpWitness",
            "OPTIONS": {"url": url, "token": token},
        }
        for url in urls
    ]


AUDIT_WITNESSES = audit_witnesses(
    env.list("AUDIT_WITNESS_FILES", default=[str(BASE_DIR / "var" / "audit-witness.jsonl")]),
    env.list("AUDIT_WITNESS_URLS", default=[]),
    env.str("AUDIT_WITNESS_TOKEN", default=""),
)
AUDIT_WITNESS_OPT_OUT = env.bool("AUDIT_WITNESS_OPT_OUT", default=False)
CELERY_BEAT_SCHEDULE["audit-seal-events"] = {
    "task": "audit.tasks.seal_audit_events",
    "schedule": float(AUDIT_SEAL_INTERVAL_SECONDS),
}
