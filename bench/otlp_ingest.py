"""OTLP trace ingest over HTTP against COPY straight into the span table, in one run.

The HTTP path is the real one: gunicorn workers serving ``POST /api/v1/otlp/v1/traces``
with protobuf bodies of ``--batch`` spans (as the SDK's ``BatchSpanProcessor`` sends
them, 512 by default): token check, throttle, decoding, one bulk insert of the spans per
session, their tool and task spans as audit events, usage into the session's metrics,
metrics on commit. The baseline COPYs the same spans, decoded and ready-made, into
``trace_span`` over as many connections as there are clients, one transaction per batch:
the raw ceiling of the table. Prints spans/s and the ratio.

    DATABASE_URL=... REDIS_URL=... python bench/otlp_ingest.py [--quick]

It runs in a database of its own (``<name>_bench_otlp_ingest``, made afresh).
"""

import logging
import os
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    Figure,
    gunicorn,
    migrate,
    parser,
    report,
    use_fresh_database,
)

ACTOR = "bench:otlp_ingest"
MODEL = "bench-model"
SESSIONS = 8


def main() -> int:
    arguments = parser(__doc__.split("\n")[0])
    arguments.add_argument("--spans", type=int, help="spans per path (default 51200)")
    arguments.add_argument("--batch", type=int, default=512, help="spans per request")
    arguments.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    arguments.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    args = arguments.parse_args()
    total = args.spans or (2048 if args.quick else 51_200)
    batches = -(-total // args.batch)

    use_fresh_database("otlp_ingest")
    migrate()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from access.services import agent_token_create
    from sessions import services
    from traces.services import trace_partitions_maintain

    trace_partitions_maintain(actor=ACTOR)
    token = agent_token_create(name="bench-otlp", scopes=["write"], actor=ACTOR).secret
    sessions = []
    for _ in range(SESSIONS):
        session = services.session_create(orchestrator_id="bench-otlp", actor=ACTOR)
        services.session_start(session.session_id, actor=ACTOR)
        sessions.append(session.session_id)

    # The baseline goes first, on the emptier table: the order favours it, not us.
    copy_rate = _copy_ingest(
        [_request(sessions[n % SESSIONS], args.batch) for n in range(batches)],
        clients=args.clients,
    )
    bodies = [
        _request(sessions[n % SESSIONS], args.batch).SerializeToString() for n in range(batches)
    ]
    sent = batches * args.batch
    http_rate = _http_ingest(bodies, token, spans=sent, workers=args.workers, clients=args.clients)
    figures = [
        Figure(
            name=f"OTLP/HTTP ingest (protobuf, {args.batch} spans/request, {args.workers} workers)",
            value=http_rate,
            unit="spans/s",
            baseline_name="COPY into trace_span",
            baseline_value=copy_rate,
        )
    ]
    report(
        "otlp_ingest",
        figures,
        quick=args.quick,
        notes=(
            f"{sent} spans per path in {batches} requests, {args.clients} concurrent clients"
            " or connections; a quarter each agent, task, tool and model spans"
        ),
    )
    return 0


def _request(session_id: str, count: int):  # noqa: ANN202 - protobuf's generated class
    """An export request of ``count`` spans of one session, shaped like an agent's: each
    group of four is a task span under an agent span with a tool call and a model call."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from traces.spans import keyvalues

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend(
        keyvalues({"service.name": "bench-agent", "sergas.session_id": session_id})
    )
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "bench.otlp_ingest"
    now = time.time_ns()
    trace_id = os.urandom(16)
    root = os.urandom(8)
    shapes = [
        ("invoke_agent reviewer", {"gen_ai.operation.name": "invoke_agent",
                                   "gen_ai.agent.name": "reviewer"}),
        ("review_account", {"sergas.task.type": "review_account", "account_id": "acct_1"}),
        ("execute_tool crm.get_account", {"gen_ai.operation.name": "execute_tool",
                                          "gen_ai.tool.name": "crm.get_account"}),
        (f"chat {MODEL}", {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL,
                           "gen_ai.usage.input_tokens": 900, "gen_ai.usage.output_tokens": 150}),
    ]  # fmt: skip
    for number in range(count):
        name, attributes = shapes[number % 4]
        span = scope.spans.add()
        span.trace_id = trace_id
        span.span_id = root if number == 0 else os.urandom(8)
        if number:
            span.parent_span_id = root
        span.name = name
        span.kind = 1
        span.start_time_unix_nano = now + number * 1000
        span.end_time_unix_nano = now + number * 1000 + 2_000_000
        span.attributes.extend(keyvalues({**attributes, "bench.run": uuid.uuid4().hex[:8]}))
    return request


def _http_ingest(
    bodies: list[bytes], token: str, *, spans: int, workers: int, clients: int
) -> float:
    import httpx
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceResponse,
    )

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-protobuf"}
    with gunicorn(workers=workers) as base:
        url = f"{base}/api/v1/otlp/v1/traces"
        local = threading.local()

        def send(body: bytes) -> None:
            if not hasattr(local, "http"):  # one keep-alive connection per client thread
                local.http = httpx.Client(timeout=120)
            response = local.http.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.content[:300]!r}")
            answer = ExportTraceServiceResponse.FromString(response.content)
            if answer.partial_success.rejected_spans:
                raise RuntimeError(answer.partial_success.error_message)

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(send, bodies))
        elapsed = time.perf_counter() - started
    from traces.models import Span

    stored = Span.objects.exclude(actor="agent:bench-copy").count()
    if stored != spans:
        raise RuntimeError(f"HTTP path stored {stored} of {spans} spans")
    return spans / elapsed


def _copy_ingest(requests: list, *, clients: int) -> float:
    """COPY the requests' spans, decoded and ready-made, one transaction per request, from
    ``clients`` connections at once (the concurrency the HTTP path gets)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from kernel.pgcopy import copy_rows
    from traces.models import Span
    from traces.spans import spans_decode

    fields = Span._meta.concrete_fields
    columns = [field.column for field in fields]
    now = timezone.now()
    batches = []
    for request in requests:
        rows = [
            span.row(actor="agent:bench-copy", received_at=now)
            for span in spans_decode(request).spans
        ]
        batches.append(
            [
                [field.get_db_prep_save(row[field.attname], connection) for field in fields]
                for row in rows
            ]
        )

    def write(share: list[list]) -> None:
        try:
            for values in share:
                with transaction.atomic():
                    copy_rows(Span._meta.db_table, columns, values)
        finally:
            connection.close()

    shares = [batches[index::clients] for index in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(write, shares))
    elapsed = time.perf_counter() - started
    return sum(len(values) for values in batches) / elapsed


if __name__ == "__main__":
    sys.exit(main())
