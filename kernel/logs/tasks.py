"""The request id in Celery tasks: sent as a message header by whoever enqueues a task
within a request (or within a task that carries one), bound with the task id while the
task runs.

``before_task_publish`` covers ``apply_async``/``delay``; review runs go through
``scheduling.publishing``, which adds ``task_headers()`` itself."""

from typing import Any

from celery import signals

from kernel.logs import context
from kernel.logs.requests import sane_request_id

REQUEST_ID_HEADER = "request_id"  # task.request.request_id on the worker
_TOKEN = "_sergas_log_context"


def task_headers() -> dict[str, str]:
    """The headers that carry the context in force into a task message."""
    request_id = sane_request_id(context.request_id())
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


@signals.before_task_publish.connect(dispatch_uid="kernel.logs.tasks.add_headers")
def _add_headers(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    if headers is not None:
        for name, value in task_headers().items():
            headers.setdefault(name, value)


@signals.task_prerun.connect(dispatch_uid="kernel.logs.tasks.bind")
def _bind(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    # A task run eagerly runs inside its caller, whose context it extends.
    fields: dict[str, Any] = dict(context.current()) if getattr(request, "is_eager", False) else {}
    fields["task_id"] = task_id
    if request_id := sane_request_id(getattr(request, REQUEST_ID_HEADER, None)):
        fields["request_id"] = request_id
    token = context.replace(fields)
    if request is not None:
        setattr(request, _TOKEN, token)


@signals.task_postrun.connect(dispatch_uid="kernel.logs.tasks.unbind")
def _unbind(task: Any = None, **kwargs: Any) -> None:
    token = getattr(getattr(task, "request", None), _TOKEN, None)
    if token is None:
        context.clear()
        return
    try:
        context.reset(token)
    except (ValueError, RuntimeError):  # set in another context, or reset already
        context.clear()
