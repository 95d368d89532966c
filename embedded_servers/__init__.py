"""Embedded PostgreSQL and Redis for a machine that has neither configured: what
``make run`` and ``make test`` start when ``DATABASE_URL``/``REDIS_URL`` are unset.
A development tool, not part of the product; it imports nothing of Sergas."""
