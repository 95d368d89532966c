"""The shared kernel: what every app may import (errors, pagination, encoding, COPY,
the Redis guard, conditional requests, the admin base, availability, the lock order,
logs). It imports no app."""
