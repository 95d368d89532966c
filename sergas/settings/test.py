"""Test settings: the same stack as production, on the servers in the environment."""

from sergas.settings.base import *  # noqa: F403
from sergas.settings.base import (
    CACHES,
    DATABASES,
    SERGAS_DASHBOARD,
    SERGAS_SCHEDULING,
    SERGAS_SESSIONS,
    env,
)

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A separate key space so a test run never reads or clears anything a running instance wrote.
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="sergas-test")
SERGAS_SESSIONS["CACHE_KEY_PREFIX"] = env.str("SESSION_CACHE_KEY_PREFIX", default="sergas-test")
# Test workers consume their own queue, never tasks meant for a running instance.
CELERY_TASK_DEFAULT_QUEUE = "sergas-test"
SERGAS_SCHEDULING = {
    **SERGAS_SCHEDULING,
    "REVIEW_QUEUE": "sergas-test-reviews",
    "SIMULATED_ACCOUNT_MS": env.int("SCHEDULING_SIMULATED_ACCOUNT_MS", default=0),
    "BEAT_STANDBY_POLL_SECONDS": 0.5,
    "DISPATCH_POLL_SECONDS": 0.5,
}
# Flushes between transactional tests get past the audit trail's TRUNCATE guard.
DATABASES["default"]["ENGINE"] = "tests.psqlextra_backend"  # psqlextra looks for its name
# Pages show what a test just wrote, not an aggregate computed a few seconds before.
SERGAS_DASHBOARD = {**SERGAS_DASHBOARD, "OVERVIEW_CACHE_SECONDS": 0}
# Login throttling needs a request in authenticate(); tests log in with force_login, and
# the tests of throttling turn it on (tests/test_staff_security.py).
AXES_ENABLED = False
# A lock taken against the documented order raises at once (kernel/locking.py).
SERGAS_CHECK_LOCK_ORDER = True
