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

from scheduling import conf
from scheduling.models import PRIORITY_MESSAGE_LEVEL

RUN_TASK = "scheduling.tasks.run_review"
_SENTINEL = "00000000-0000-4000-8000-5e0715e17e1a"
_REDIS_SCHEMES = {"redis", "rediss", "redis+socket", "socket"}


@dataclass(frozen=True)
class RunMessage:
    execution_id: str
    priority: str


def publish_runs(messages: Iterable[RunMessage]) -> int:
    """Publish one ``run_review`` message per execution; returns how many were sent.

    The execution id is the Celery task id, so the broker, the worker logs and the
    execution table name a run the same way. Raises if the broker cannot take them;
    callers leave the runs in the outbox then.
    """
    from sergas.celery import app

    messages = list(messages)
    if not messages:
        return 0
    if app.conf.broker_url.split(":", 1)[0] in _REDIS_SCHEMES:
        return _redis_publisher(conf.review_queue()).publish(messages)
    return _publish_with_kombu(messages, conf.review_queue())


def _run_message(run_id: str) -> Any:
    from sergas.celery import app

    return app.amqp.create_task_message(
        run_id, RUN_TASK, (run_id,), {}, argsrepr=f"('{run_id}',)", kwargsrepr="{}"
    )


def _publish_with_kombu(messages: list[RunMessage], queue: str) -> int:
    from sergas.celery import app

    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        for message in messages:
            task_message = _run_message(message.execution_id)
            producer.publish(
                task_message.body,
                exchange="",
                routing_key=queue,
                headers=task_message.headers,
                priority=PRIORITY_MESSAGE_LEVEL[message.priority],
                serializer="json",
                retry=True,
                **task_message.properties,
            )
    return len(messages)


class _RedisRunPublisher:
    """Writes run messages into Redis lists from templates kombu produced itself."""

    def __init__(self, queue: str) -> None:
        from sergas.celery import app

        self.queue = queue
        self._client = app.connection_for_write().default_channel.client
        # priority level -> (list key, message template, sentinel body, sentinel tag)
        self._templates: dict[int, tuple[str, str, bytes, str]] = {}
        self._lock = threading.Lock()

    def _template(self, level: int) -> tuple[str, str, bytes, str]:
        with self._lock:
            if level not in self._templates:
                self._templates[level] = self._capture(level)
            return self._templates[level]

    def _capture(self, level: int) -> tuple[str, str, bytes, str]:
        from sergas.celery import app

        scratch = f"sergas.publish-template.{uuid.uuid4().hex}"
        task_message = _run_message(_SENTINEL)
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

    def publish(self, messages: list[RunMessage]) -> int:
        by_key: dict[str, list[str]] = defaultdict(list)
        for message in messages:
            key, template, body, tag = self._template(PRIORITY_MESSAGE_LEVEL[message.priority])
            run_id = message.execution_id
            encoded = base64.b64encode(body.replace(_SENTINEL.encode(), run_id.encode()))
            by_key[key].append(
                template.replace(base64.b64encode(body).decode(), encoded.decode())
                .replace(_SENTINEL, run_id)
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
