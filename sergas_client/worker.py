"""``Worker``: takes batches from a work queue and runs a handler on each.

    def review(lease: Lease) -> list[AccountResult] | None:
        results = []
        for account_id in lease.account_ids:
            if lease.should_stop:
                return None  # given back unfinished (dropped if the lease was lost)
            results.append(AccountResult.reviewed(account_id, [...]))
        return results

    with SergasClient(url, token) as client:
        Worker(client, "crm-reviewers", review).run()

The loop long-polls a claim. While the handler works, a thread heartbeats the lease; a
heartbeat answered ``409 lease_lost`` (the session was paused, the run cancelled, the
lease taken over) marks the lease lost, which turns ``lease.should_stop`` true. Then the
batch is completed with the handler's results, failed if the handler raised
(``FatalBatchError``: not worth another attempt), given back if the handler returned
None, or dropped if the lease was lost. SIGTERM and SIGINT (when ``run`` is called in the
main thread) or ``stop()`` stop the worker gracefully: no more claims, the current batch
is finished or given back, and ``run`` returns. A stop during a claim's long poll takes
effect when the claim answers (within ``wait_seconds``); a batch it brings is given back
at once. A second signal ends the process the default way.
"""

import logging
import os
import random
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, TypeVar

import httpx

from sergas_client.client import LeaseLost, SergasAPIError, SergasClient
from sergas_client.types import AccountResult, BatchState, CompletedBatch, Lease

logger = logging.getLogger(__name__)

T = TypeVar("T")

# How often a stop asked for by a signal is passed on (a signal handler only sets a flag).
_SIGNAL_WATCH_SECONDS = 0.1
# A heartbeat that did not get through is tried again this soon (or at its interval).
_HEARTBEAT_RETRY_SECONDS = 2.0
_HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class FatalBatchError(Exception):
    """Raised by a handler when the batch cannot be done and another attempt would not
    help: the batch is failed as not retryable, so its run fails."""


@dataclass
class BatchReport:
    """What a handler returns when it has more than results to send: tool/task
    ``events`` (as for ``SergasClient.send_events``) and session ``metrics`` counters."""

    results: Sequence[AccountResult | Mapping[str, Any]]
    events: Sequence[Mapping[str, Any]] = ()
    metrics: Mapping[str, int] = field(default_factory=dict)


HandlerAnswer = Sequence[AccountResult | Mapping[str, Any]] | BatchReport | None
Handler = Callable[[Lease], HandlerAnswer]


class Worker:
    """Runs ``handler`` on each batch of ``queue``. The handler gets the ``Lease`` and
    returns one result per account (a list, or a ``BatchReport``), or None when it
    stopped early (``lease.should_stop``). Override the ``on_*`` hooks to report
    progress; they are called in the thread that runs ``run``."""

    def __init__(
        self,
        client: SergasClient,
        queue: str,
        handler: Handler,
        *,
        wait_seconds: int = 20,
        holder: str | None = None,
        heartbeat_seconds: float | None = None,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        if not 0 <= wait_seconds <= 30:
            raise ValueError("wait_seconds must be between 0 and 30")
        if heartbeat_seconds is not None and heartbeat_seconds <= 0:
            raise ValueError("heartbeat_seconds must be positive")
        self.client = client
        self.queue = queue
        self.handler = handler
        self.wait_seconds = wait_seconds
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"[:200]
        self.heartbeat_seconds = heartbeat_seconds
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._stopping = threading.Event()
        self._signalled = False
        self._current: Lease | None = None
        # When the current lease runs out if no heartbeat gets through (time.monotonic).
        self._deadline = 0.0

    # --- control ----------------------------------------------------------------------
    def run(self, max_batches: int | None = None) -> int:
        """Work until stopped (or until ``max_batches`` batches were worked on); returns
        how many were. A queue that does not exist or that the token may not use, at the
        first claim, raises ``SergasAPIError``; network errors, 5xx and 429 are waited
        out with a growing delay."""
        worked = 0
        failures = 0
        queue_seen = False
        with self._signals_handled():
            while not self._stop_requested() and (max_batches is None or worked < max_batches):
                try:
                    lease = self.client.claim_batch(
                        self.queue, wait_seconds=self.wait_seconds, holder=self.holder
                    )
                except (httpx.TransportError, SergasAPIError) as exc:
                    if not self._claim_error_passes(exc, queue_seen=queue_seen):
                        logger.error("Cannot take work from queue %s: %s", self.queue, exc)
                        raise
                    failures += 1
                    delay = self._backoff(failures)
                    logger.warning(
                        "Claim from queue %s failed (%s); trying again in %.1f s",
                        self.queue,
                        exc,
                        delay,
                    )
                    self._stopping.wait(delay)
                    continue
                queue_seen, failures = True, 0
                if lease is None:
                    if not self.wait_seconds:  # no long poll: do not spin on an empty queue
                        self._stopping.wait(self.backoff_seconds)
                    continue
                self._deadline = time.monotonic() + lease.lease_seconds
                if self._stop_requested():
                    logger.info("Batch %s leased while stopping: giving it back", lease.batch_id)
                    self._give_back(lease)
                    break
                worked += 1
                self._work(lease)
        logger.info("Worker on queue %s stopped after %d batch(es)", self.queue, worked)
        return worked

    def stop(self) -> None:
        """Stop after the current batch (whose handler sees ``lease.should_stop``).
        Thread-safe, but not for signal handlers: ``run`` handles SIGTERM and SIGINT."""
        self._stopping.set()
        current = self._current
        if current is not None:
            current.request_stop()

    @property
    def stopping(self) -> bool:
        return self._stop_requested()

    # --- hooks ------------------------------------------------------------------------
    def on_leased(self, lease: Lease) -> None:
        """A batch was leased; its handler runs next."""

    def on_completed(self, lease: Lease, answer: CompletedBatch) -> None:
        """The batch's results were recorded."""

    def on_failed(self, lease: Lease, error: str, state: BatchState) -> None:
        """The handler raised; the batch was failed (back in the queue, or failed)."""

    def on_released(self, lease: Lease, state: BatchState) -> None:
        """The batch was given back unfinished."""

    def on_lost(self, lease: Lease, reason: str) -> None:
        """The lease was lost (``reason`` as the API gave it); the batch was dropped."""

    # --- one batch --------------------------------------------------------------------
    def _work(self, lease: Lease) -> None:
        self._current = lease
        if self._stop_requested():  # stop() ran before it could see this lease
            lease.request_stop()
        logger.info(
            "Leased batch %s (%d accounts, attempt %d) of run %s",
            lease.batch_id,
            len(lease.account_ids),
            lease.attempt,
            lease.run.execution_id,
        )
        done = threading.Event()
        beats = threading.Thread(
            target=self._keep_alive,
            args=(lease, done),
            name=f"sergas-heartbeat-{lease.batch_id}",
            daemon=True,
        )
        beats.start()
        try:
            self.on_leased(lease)
            self._handle(lease)
        finally:
            done.set()
            beats.join(timeout=5.0)
            self._current = None

    def _handle(self, lease: Lease) -> None:
        try:
            answer = self.handler(lease)
        except Exception as exc:
            if lease.lost:
                self._report_lost(lease)
                return
            fatal = isinstance(exc, FatalBatchError)
            logger.error(
                "Batch %s: the handler raised; failing it (%s)",
                lease.batch_id,
                "not retryable" if fatal else "retryable",
                exc_info=True,
            )
            self._fail(lease, f"{type(exc).__name__}: {exc}", retryable=not fatal)
            return
        if lease.lost:
            self._report_lost(lease)
        elif answer is None:
            logger.info("Batch %s: the handler stopped early; giving it back", lease.batch_id)
            self._give_back(lease)
        else:
            report = answer if isinstance(answer, BatchReport) else BatchReport(results=answer)
            self._complete(lease, report)

    def _complete(self, lease: Lease, report: BatchReport) -> None:
        try:
            answer = self._finish(
                lease,
                lambda: self.client.complete_batch(
                    lease, report.results, events=report.events, metrics=report.metrics
                ),
            )
        except SergasAPIError as exc:
            if exc.status_code != 422:
                self._drop(lease, exc)
                return
            logger.error("Batch %s: its results were refused: %s", lease.batch_id, exc)
            self._fail(lease, f"results refused: {exc.detail}", retryable=True)
            return
        if answer is not None:
            logger.info(
                "Batch %s completed: %s%s",
                lease.batch_id,
                answer.outcomes,
                " (replayed)" if answer.replayed else "",
            )
            self.on_completed(lease, answer)

    def _fail(self, lease: Lease, error: str, *, retryable: bool) -> None:
        try:
            state = self._finish(
                lease, lambda: self.client.fail_batch(lease, error, retryable=retryable)
            )
        except SergasAPIError as exc:
            self._drop(lease, exc)
            return
        if state is not None:
            logger.info(
                "Batch %s failed: %s, %d attempt(s) left",
                lease.batch_id,
                state.status,
                state.attempts_left,
            )
            self.on_failed(lease, error, state)

    def _give_back(self, lease: Lease) -> None:
        try:
            state = self._finish(lease, lambda: self.client.release_batch(lease))
        except SergasAPIError as exc:
            self._drop(lease, exc)
            return
        if state is not None:
            logger.info("Batch %s given back", lease.batch_id)
            self.on_released(lease, state)

    def _finish(self, lease: Lease, call: Callable[[], T]) -> T | None:
        """``call`` (complete, fail or release: the lease token makes a repeat harmless),
        tried again after network errors and 5xx until the lease would have run out.
        None when the lease turned out lost (reported); other refusals are raised."""
        failures = 0
        while True:
            try:
                return call()
            except LeaseLost:
                self._report_lost(lease)
                return None
            except (httpx.TransportError, SergasAPIError) as exc:
                if isinstance(exc, SergasAPIError) and not _transient(exc):
                    raise
                left = self._deadline - time.monotonic()
                if left <= 0:
                    logger.error(
                        "Batch %s: the API could not be reached before the lease ran out (%s)",
                        lease.batch_id,
                        exc,
                    )
                    lease.mark_lost("lease_expired")
                    self._report_lost(lease)
                    return None
                failures += 1
                delay = min(self._backoff(failures), left)
                logger.warning("Batch %s: %s; trying again in %.1f s", lease.batch_id, exc, delay)
                time.sleep(delay)

    def _drop(self, lease: Lease, exc: SergasAPIError) -> None:
        """The API refused the batch's end in a way no retry mends (404, 401, ...)."""
        logger.error("Batch %s: the API refused it: %s", lease.batch_id, exc)
        lease.mark_lost(exc.code)
        self._report_lost(lease)

    def _report_lost(self, lease: Lease) -> None:
        reason = lease.lost_reason or "unknown"
        logger.warning("Batch %s: lease lost (%s); its work is dropped", lease.batch_id, reason)
        self.on_lost(lease, reason)

    # --- heartbeats -------------------------------------------------------------------
    def _keep_alive(self, lease: Lease, done: threading.Event) -> None:
        """Heartbeat ``lease`` until ``done``; mark it lost when the API says so, or when
        no heartbeat got through before it would have run out."""
        interval = self.heartbeat_seconds or lease.heartbeat_seconds
        wait = interval
        while not done.wait(wait):
            sent = time.monotonic()
            try:
                renewal = self.client.heartbeat_batch(lease)
            except LeaseLost as exc:  # the client marked the lease lost
                logger.warning("Batch %s: %s", lease.batch_id, exc.detail)
                return
            except (httpx.TransportError, SergasAPIError) as exc:
                if isinstance(exc, SergasAPIError) and not _transient(exc):
                    logger.error("Batch %s: heartbeat refused: %s", lease.batch_id, exc)
                    lease.mark_lost(exc.code)
                    return
                if time.monotonic() >= self._deadline:
                    logger.error("Batch %s: no heartbeat got through in time", lease.batch_id)
                    lease.mark_lost("lease_expired")
                    return
                logger.warning("Batch %s: heartbeat failed (%s)", lease.batch_id, exc)
                wait = min(interval, _HEARTBEAT_RETRY_SECONDS)
                continue
            except Exception:  # a bug here must not end the heartbeats quietly
                logger.exception("Batch %s: heartbeat failed", lease.batch_id)
                wait = min(interval, _HEARTBEAT_RETRY_SECONDS)
                continue
            if self._current is lease:  # not a straggler of a batch already ended
                self._deadline = sent + renewal.lease_seconds
            wait = interval

    # --- plumbing ---------------------------------------------------------------------
    def _stop_requested(self) -> bool:
        return self._signalled or self._stopping.is_set()

    def _backoff(self, failures: int) -> float:
        """Doubling with each failure, up to the maximum; jittered so that agents cut off
        together do not all come back in the same instant."""
        ceiling = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** min(failures - 1, 20))
        return ceiling * random.uniform(0.5, 1.0)

    def _claim_error_passes(self, exc: Exception, *, queue_seen: bool) -> bool:
        """Whether to wait and claim again. A queue that exists no more (its reviews were
        deleted) may come back; one that never answered is a mistake to report."""
        if not isinstance(exc, SergasAPIError) or _transient(exc):
            return True
        return queue_seen and exc.code == "queue_not_found"

    @contextmanager
    def _signals_handled(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the worker while it runs (signals reach only the main
        thread, so elsewhere the caller uses ``stop()``)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.getsignal(number) for number in _HANDLED_SIGNALS}

        def restore() -> None:
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)

        def on_signal(number: int, frame: FrameType | None) -> None:
            # Only a flag: a lock taken here could be held by the very code interrupted.
            self._signalled = True
            restore()  # a second signal acts as if the worker were not there

        finished = threading.Event()
        watcher = threading.Thread(
            target=self._watch_signals, args=(finished,), name="sergas-worker-signals", daemon=True
        )
        for number in _HANDLED_SIGNALS:
            signal.signal(number, on_signal)
        watcher.start()
        try:
            yield
        finally:
            finished.set()
            watcher.join()
            restore()

    def _watch_signals(self, finished: threading.Event) -> None:
        """Pass a signal's stop request on to the lease and the waits."""
        while not finished.wait(_SIGNAL_WATCH_SECONDS):
            if self._signalled:
                logger.info("Signal received: stopping after the current batch")
                self.stop()
                return


def _transient(exc: SergasAPIError) -> bool:
    return exc.status_code >= 500 or exc.status_code == 429
