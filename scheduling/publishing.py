"""Publishing review runs to the broker, many at a time.

The 09:00 herd (thousands of daily reviews due in the same second) must be on the queue
within a couple of seconds, on a machine whose workers are busy with the first runs.
``Task.apply_async`` sends about 2,000 messages/s on Redis and even kombu's batched
``Producer.publish`` spends ~100 us of Python per message, which is too slow here.

On Redis the publisher therefore works like this: it asks kombu, once per process and
priority, to publish a sentinel run message to a scratch queue, reads back the exact
bytes kombu stored and where, and from then on writes run messages itself by putting the
run id (and a fresh delivery tag) into that template, many per ``LPUSH`` in one pipeline.
The messages are byte for byte what kombu would have written (kombu wrote the template),
so any Celery worker consumes them. Other brokers (RabbitMQ) get kombu's own path.

Runs published within a request (a trigger, a recovery) or a task that carries its id
carry the request id as a header (``kernel.logs.tasks``): a template of its own holds a
stand-in for it.
"""

import base64
import functools
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kernel.logs.tasks import REQUEST_ID_HEADER, task_headers
from scheduling import conf
from scheduling.models import PRIORITY_MESSAGE_LEVEL

RUN_TASK = "scheduling.tasks.run_review"
BATCH_TASK = "scheduling.tasks.run_review_batch"
PREPARE_TASK = "scheduling.tasks.prepare_runs"
_SENTINEL = "00000000-0000-4000-8000-5e0715e17e1a"  # stands for the argument
_SENTINEL_ID = "00000000-0000-4000-8000-1d0f5e071e1d"  # stands for the task id
_SENTINEL_REQUEST_ID = "sergas-request-id-5e0715e17e1a"  # stands for the request id
_REDIS_SCHEMES = {"redis", "rediss", "redis+socket", "socket"}
# Lives beside the queues in the broker's Redis database, so it is lost exactly when they
# are: a restart without persistence, a FLUSHDB, a failover to an empty replica. Followed
# by the review queue's name (deployments may share a database).
BROKER_MARKER_PREFIX = "sergas.broker-marker."


@dataclass(frozen=True)
class RunMessage:
    """One task message on the review queue: ``task(arg)``, with the run's priority.

    ``arg`` (an execution id for ``run_review``, a batch id for ``run_review_batch``,
    comma-separated execution ids for ``prepare_runs``) is also the Celery task id of a
    run; other messages get a fresh id each."""

    execution_id: str
    priority: str
    task: str = RUN_TASK

    @property
    def task_id(self) -> str:
        return self.execution_id if self.task == RUN_TASK else str(uuid.uuid4())


def publish_runs(messages: Iterable[RunMessage], *, queue: str | None = None) -> int:
    """Publish the messages to the review queue (or ``queue``); returns how many were
    sent. Raises if the broker cannot take them; callers leave the runs in the outbox
    then."""
    from sergas.celery import app

    messages = list(messages)
    if not messages:
        return 0
    queue = queue or conf.review_queue()
    request_id = task_headers().get(REQUEST_ID_HEADER)
    if app.conf.broker_url.split(":", 1)[0] in _REDIS_SCHEMES:
        return _redis_publisher(queue).publish(messages, request_id=request_id)
    return _publish_with_kombu(messages, queue, request_id=request_id)


def _broker_client() -> Any | None:
    """The broker's Redis client, or None for brokers that keep their messages across
    restarts (RabbitMQ: durable queues, persistent messages)."""
    from sergas.celery import app

    if app.conf.broker_url.split(":", 1)[0] not in _REDIS_SCHEMES:
        return None
    return _redis_publisher(conf.review_queue())._client


def broker_marker_key() -> str:
    return BROKER_MARKER_PREFIX + conf.review_queue()


def broker_marker_missing() -> bool:
    """True when the broker may have lost the messages it held: on Redis, the marker
    key is gone. Also true before the first ``broker_marker_set``, when sending again is
    harmless (a duplicated message claims nothing)."""
    client = _broker_client()
    return client is not None and not client.exists(broker_marker_key())


def broker_marker_set() -> None:
    """Mark the broker's current contents as complete (after sending again what it lost)."""
    from django.utils import timezone

    client = _broker_client()
    if client is not None:
        client.set(broker_marker_key(), timezone.now().isoformat())


def _task_message(task: str, task_id: str, arg: str, request_id: str | None) -> Any:
    from sergas.celery import app

    message = app.amqp.create_task_message(
        task_id, task, (arg,), {}, argsrepr=f"('{arg}',)", kwargsrepr="{}"
    )
    if request_id is not None:
        message.headers[REQUEST_ID_HEADER] = request_id
    return message


def _publish_with_kombu(
    messages: list[RunMessage],
    queue: str,
    *,
    connection: Any = None,
    request_id: str | None = None,
) -> int:
    from sergas.celery import app

    with app.producer_or_acquire(
        app.amqp.Producer(connection.default_channel) if connection is not None else None
    ) as producer:
        # Through the default exchange a message to a queue nobody declared yet would be
        # dropped (AMQP): declare it as Celery's workers do (with x-max-priority).
        app.amqp.queues.select_add(queue)(producer.channel).declare()
        with producer.batch(max_size=1000):
            _publish_each(producer, messages, queue, request_id)
    return len(messages)


def _publish_each(
    producer: Any, messages: list[RunMessage], queue: str, request_id: str | None
) -> None:
    for message in messages:
        task_message = _task_message(
            message.task, message.task_id, message.execution_id, request_id
        )
        producer.publish(
            task_message.body,
            exchange="",
            routing_key=queue,
            headers=task_message.headers,
            # AMQP serves the highest priority first (queues declared with
            # x-max-priority, CELERY_TASK_QUEUE_MAX_PRIORITY); Redis the lowest.
            priority=9 - PRIORITY_MESSAGE_LEVEL[message.priority],
            serializer="json",
            retry=True,
            **task_message.properties,
        )


class _RedisRunPublisher:
    """Writes run messages into Redis lists from templates kombu produced itself."""

    def __init__(self, queue: str) -> None:
        from sergas.celery import app

        self.queue = queue
        self._client = app.connection_for_write().default_channel.client
        # (task, priority level, with a request id) -> (list key, message template,
        # sentinel body, tag)
        self._templates: dict[tuple[str, int, bool], tuple[str, str, bytes, str]] = {}
        self._lock = threading.Lock()

    def _template(self, task: str, level: int, traced: bool) -> tuple[str, str, bytes, str]:
        with self._lock:
            if (task, level, traced) not in self._templates:
                self._templates[(task, level, traced)] = self._capture(task, level, traced)
            return self._templates[(task, level, traced)]

    def _capture(self, task: str, level: int, traced: bool) -> tuple[str, str, bytes, str]:
        from sergas.celery import app

        scratch = f"sergas.publish-template.{uuid.uuid4().hex}"
        task_message = _task_message(
            task, _SENTINEL_ID, _SENTINEL, _SENTINEL_REQUEST_ID if traced else None
        )
        with app.producer_or_acquire() as producer:
            producer.publish(
                task_message.body,
                exchange="",
                routing_key=scratch,
                headers=task_message.headers,
                priority=level,
                serializer="json",
                **task_message.properties,
            )
        [key] = [k.decode() for k in self._client.scan_iter(f"{scratch}*")]
        raw = self._client.rpop(key).decode()
        self._client.delete(key)
        stored = json.loads(raw)
        body = base64.b64decode(stored["body"])
        return (
            self.queue + key[len(scratch) :],  # the same priority suffix on our queue
            raw.replace(scratch, self.queue),
            body,
            stored["properties"]["delivery_tag"],
        )

    def publish(self, messages: list[RunMessage], *, request_id: str | None = None) -> int:
        """``request_id``: sane (``kernel.logs``), so it goes into the JSON text as it is."""
        by_key: dict[str, list[str]] = defaultdict(list)
        for message in messages:
            key, template, body, tag = self._template(
                message.task, PRIORITY_MESSAGE_LEVEL[message.priority], request_id is not None
            )
            if request_id is not None:
                template = template.replace(_SENTINEL_REQUEST_ID, request_id)
            arg = message.execution_id
            encoded = base64.b64encode(body.replace(_SENTINEL.encode(), arg.encode()))
            by_key[key].append(
                template.replace(base64.b64encode(body).decode(), encoded.decode())
                .replace(_SENTINEL_ID, message.task_id)
                .replace(_SENTINEL, arg)
                .replace(tag, str(uuid.uuid4()))
            )
        pipeline = self._client.pipeline(transaction=False)
        for key, payloads in by_key.items():
            for start in range(0, len(payloads), 1000):
                pipeline.lpush(key, *payloads[start : start + 1000])
        pipeline.execute()
        return len(messages)


@functools.cache
def _redis_publisher(queue: str) -> _RedisRunPublisher:
    return _RedisRunPublisher(queue)
