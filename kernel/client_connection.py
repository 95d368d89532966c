"""Whether the HTTP client of a request is still connected.

A long poll (``POST /api/v1/work/claim`` with ``wait_seconds``) outlives its client when
the client dies while it waits: nothing tells the server until it writes the answer.
Before the poll takes work on the client's behalf it asks here, so a batch is not leased
to a process that is gone (it would wait out the lease before anyone else could take
it). The answer comes from the client's socket: under gunicorn it is in the WSGI
environ; under Django's own server (runserver, the test live server) it is found behind
``wsgi.input``. Where neither is found, the client is presumed connected.
"""

import socket
from typing import Any

from django.http import HttpRequest


def _client_socket(request: HttpRequest) -> socket.socket | None:
    found = request.META.get("gunicorn.socket")
    if isinstance(found, socket.socket):
        return found
    # Django's server: wsgi.input is a LimitedStream reading the socket's buffered reader.
    reader: Any = getattr(getattr(request.META.get("wsgi.input"), "_read", None), "__self__", None)
    found = getattr(getattr(reader, "raw", None), "_sock", None)
    return found if isinstance(found, socket.socket) else None


def client_disconnected(request: HttpRequest) -> bool:
    """True when the client closed its end of the connection (read as end of file)."""
    client = _client_socket(request)
    if client is None:
        return False
    try:
        peeked = client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except (BlockingIOError, InterruptedError):
        return False  # open, with nothing more sent
    except OSError:
        return True  # reset or closed
    return peeked == b""
