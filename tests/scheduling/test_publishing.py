"""Run messages on both brokers: the templated Redis path and kombu's path (RabbitMQ)."""

import json
import socket
import uuid

import pytest
from kombu import Connection, Queue

from scheduling import publishing
from scheduling.publishing import BATCH_TASK, RUN_TASK, RunMessage


def _rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not _rabbitmq_answers(), reason="no RabbitMQ on 127.0.0.1:5672")
def test_on_rabbitmq_the_queue_is_declared_and_critical_runs_come_first():
    queue = f"sergas-test-amqp-{uuid.uuid4().hex[:8]}"
    runs = [
        RunMessage("00000000-0000-4000-8000-00000000000a", "low"),
        RunMessage("00000000-0000-4000-8000-00000000000b", "critical"),
        RunMessage("7", "medium", task=BATCH_TASK),
    ]
    with Connection("amqp://guest:guest@127.0.0.1:5672//") as connection:
        publishing._publish_with_kombu(runs, queue, connection=connection)
        bound = Queue(queue, routing_key=queue, queue_arguments={"x-max-priority": 10})(
            connection.default_channel
        )
        try:
            received = [bound.get(no_ack=True, accept=["json"]) for _ in runs]
        finally:
            bound.delete()
    first = received[0]
    assert first.headers["task"] == RUN_TASK
    assert first.headers["id"] == runs[1].execution_id  # critical overtook the low one
    assert json.loads(first.body)[0] == [runs[1].execution_id]
    tasks = {m.headers["task"]: json.loads(m.body)[0] for m in received}
    assert tasks[BATCH_TASK] == ["7"]


@pytest.mark.django_db
def test_on_redis_the_templated_messages_are_what_kombu_would_write(review_queue_length):
    from sergas.celery import app

    runs = [RunMessage(str(uuid.uuid4()), "high"), RunMessage("42", "low", task=BATCH_TASK)]
    assert publishing.publish_runs(runs) == 2
    assert review_queue_length() == 2
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        raw = [client.rpop(key) for key in client.scan_iter("sergas-test-reviews*")]
    messages = [json.loads(item) for item in raw if item]
    by_task = {m["headers"]["task"]: m for m in messages}
    run = by_task[RUN_TASK]
    assert run["headers"]["id"] == run["properties"]["correlation_id"] == runs[0].execution_id
    assert run["headers"]["argsrepr"] == f"('{runs[0].execution_id}',)"
    batch = by_task[BATCH_TASK]
    assert batch["headers"]["argsrepr"] == "('42',)"
    assert batch["headers"]["id"] != run["headers"]["id"]
    assert run["properties"]["delivery_tag"] != batch["properties"]["delivery_tag"]


@pytest.mark.django_db
def test_on_redis_runs_published_within_a_request_carry_its_id(review_queue_length):
    from kernel.logs import context
    from sergas.celery import app

    untraced = RunMessage(str(uuid.uuid4()), "high")
    traced = RunMessage(str(uuid.uuid4()), "high")
    publishing.publish_runs([untraced])
    token = context.replace({"request_id": "req-publish-0001"})
    try:
        publishing.publish_runs([traced])
    finally:
        context.reset(token)
    with app.connection_for_write() as connection:
        client = connection.default_channel.client
        raw = [
            item
            for key in client.scan_iter("sergas-test-reviews*")
            for item in client.lrange(key, 0, -1)
        ]
    headers = {m["headers"]["id"]: m["headers"] for m in map(json.loads, raw)}
    assert headers[traced.execution_id]["request_id"] == "req-publish-0001"
    assert "request_id" not in headers[untraced.execution_id]
    # The same template otherwise: only the header differs.
    for which in (traced, untraced):
        headers[which.execution_id].pop("request_id", None)
        headers[which.execution_id].pop("id")
        headers[which.execution_id].pop("argsrepr")
        headers[which.execution_id].pop("root_id")
    assert headers[traced.execution_id] == headers[untraced.execution_id]
