"""Bounded HTTP load for drills: a few agent-like clients in threads, every answer kept.

Traffic goes to 127.0.0.1 only, stops when told or after ``max_seconds``, and each client
sends one request at a time.
"""

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Outcome:
    op: str
    at: float  # monotonic time the request was sent
    elapsed: float
    status: int | None  # None: no answer (connection error or client timeout)
    body: Any  # parsed JSON, or the raw text when it is not JSON
    error: str = ""


class Load:
    """``Load(url, token).run(clients, body)`` runs ``body(agent, index)`` in ``clients``
    threads until ``stop()``; ``agent.call(op, method, path, json=...)`` records each
    request and returns its outcome."""

    def __init__(
        self, base_url: str, token: str, *, timeout: float = 15.0, max_seconds: float = 300
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.agents: list[Agent] = []

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, clients: int, body: Callable[["Agent", int], None]) -> "Load":
        deadline = time.monotonic() + self.max_seconds

        def loop(index: int) -> None:
            with httpx.Client(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            ) as http:
                agent = Agent(self, http)
                with self._lock:
                    self.agents.append(agent)
                while not self._stop.is_set() and time.monotonic() < deadline:
                    body(agent, index)

        self._threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout + 5)

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes.append(outcome)

    def statuses(self, since: float = 0.0) -> Counter:
        return Counter(o.status for o in self.outcomes if o.at >= since)


class Agent:
    def __init__(self, load: Load, http: httpx.Client) -> None:
        self.load = load
        self.http = http
        self.state: dict[str, Any] = {}

    def call(self, op: str, method: str, path: str, **kwargs: Any) -> Outcome:
        started = time.monotonic()
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            outcome = Outcome(op, started, time.monotonic() - started, None, None, repr(exc))
        else:
            try:
                body: Any = response.json()
            except ValueError:
                body = response.text
            outcome = Outcome(op, started, time.monotonic() - started, response.status_code, body)
        self.load.record(outcome)
        return outcome
