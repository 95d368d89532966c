"""Publishing review runs to the broker, many at a time.

The 09:00 herd (thousands of daily reviews due in the same second) must be on the queue
within a couple of seconds. ``Task.apply_async`` sends about 2,000 messages/s on Redis
(it builds a client and looks the exchange up for every message); publishing through the
default exchange straight to the queue inside kombu's ``Producer.batch()`` (a Redis
pipeline) sends several times as many. The messages are ordinary Celery protocol-2 task
messages: any worker consumes them, and brokers without batching publish one by one.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from scheduling import conf
from scheduling.models import PRIORITY_MESSAGE_LEVEL

RUN_TASK = "scheduling.tasks.run_review"


@dataclass(frozen=True)
class RunMessage:
    execution_id: str
    priority: str


def publish_runs(messages: Iterable[RunMessage]) -> int:
    """Publish one ``run_review`` message per execution; returns how many were sent.

    The execution id is the Celery task id, so the broker, the worker logs and the
    execution table name a run the same way.
    """
    from sergas.celery import app

    queue = conf.review_queue()
    sent = 0
    with app.producer_or_acquire() as producer, producer.batch(max_size=1000):
        for message in messages:
            task_message = app.amqp.create_task_message(
                message.execution_id,
                RUN_TASK,
                (message.execution_id,),
                {},
                argsrepr=f"('{message.execution_id}',)",
                kwargsrepr="{}",
            )
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
            sent += 1
    return sent
