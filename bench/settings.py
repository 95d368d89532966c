"""Settings of the HTTP benchmark's server: the project's, plus a trivial baseline view."""

from sergas.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
