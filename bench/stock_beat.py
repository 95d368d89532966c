"""Celery app for the stock django-celery-beat baseline of ``schedule_accuracy.py``.

It is the project's app plus two recorders: the beat process logs when it publishes each
baseline task (``after_task_publish``) and the worker logs when it starts it, both into
Redis lists, so the baseline is measured exactly as our dispatcher is: from the nominal
time to the send, and to the start.
"""

import json
import os
import time

import redis
from celery import shared_task
from celery.signals import after_task_publish

from sergas.celery import app

__all__ = ["app"]

SENT_KEY = "bench:stock:sent"
STARTED_KEY = "bench:stock:started"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REDIS_URL"])


@after_task_publish.connect
def _record_send(sender: str | None = None, body: object = None, **kwargs: object) -> None:
    if sender != "bench.noop":
        return
    args = body[0] if isinstance(body, list | tuple) else []
    _redis().rpush(SENT_KEY, json.dumps({"index": args[0], "at": time.time()}))


@shared_task(name="bench.noop")
def noop(index: int) -> None:
    _redis().rpush(STARTED_KEY, json.dumps({"index": index, "at": time.time()}))
