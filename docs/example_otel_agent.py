"""An example agent instrumented with OpenTelemetry: its spans go to Sergas over OTLP/HTTP.

    python docs/example_otel_agent.py --url http://127.0.0.1:8000 --token "$SERGAS_TOKEN"

It creates and starts a session through the API (``sergas_client``), then does its work
under OpenTelemetry spans that follow the GenAI semantic conventions: one
``invoke_agent`` span, a ``review_account`` task span per account (``sergas.task.type``),
and under each an ``execute_tool`` span (the CRM call, which fails now and then) and a
``chat`` span with its token usage. The SDK's ``BatchSpanProcessor`` and
``OTLPSpanExporter`` send them to ``<url>/api/v1/otlp/v1/traces`` with the agent's token;
the resource's ``sergas.session_id`` tells Sergas whose spans they are. It flushes the
exporter before it completes the session, so the session's summary (written as it ends)
counts every tool call; spans that arrive after the end are still stored, and their
tokens and cost still counted.

Sergas turns the tool and task spans into audit events and Prometheus metrics, and the
chat spans' tokens into the session's ``input_tokens``, ``output_tokens`` and
``cost_usd`` (priced by ``SERGAS_TRACES["MODEL_PRICES"]``). The session page draws the
trace. Needs ``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp-proto-http``.
"""

import argparse
import os
import random
import sys
import time

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sergas_client import SergasAPIError, SergasClient

MODEL = "claude-sonnet-4"


class CrmTimeout(Exception):
    """What a flaky CRM call raises now and then."""


def exporter_for(url: str, token: str, *, gzip: bool) -> OTLPSpanExporter:
    return OTLPSpanExporter(
        endpoint=f"{url.rstrip('/')}/api/v1/otlp/v1/traces",
        headers={"Authorization": f"Bearer {token}"},
        compression=Compression.Gzip if gzip else Compression.NoCompression,
        timeout=10,
    )


def run(
    client: SergasClient,
    *,
    url: str,
    token: str,
    accounts: list[str],
    gzip: bool = True,
    resend: bool = False,
    seed: int = 7,
) -> str:
    """Review ``accounts`` under traced spans; returns the session id. With ``resend``
    every span is exported a second time at the end, as an exporter retrying batches
    whose answers were lost would: Sergas stores and counts them once."""
    rng = random.Random(seed)
    session = client.create_session(
        orchestrator_id="otel-example", session_type="on_demand", account_ids=accounts
    )
    sid = session.session_id
    client.start(sid)
    resource = Resource.create({"service.name": "otel-example-agent", "sergas.session_id": sid})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter_for(url, token, gzip=gzip)))
    kept = InMemorySpanExporter()
    if resend:
        provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("sergas.example_otel_agent")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "account-reviewer"}
    with tracer.start_as_current_span("invoke_agent account-reviewer", attributes=agent):
        for account in accounts:
            task = {"sergas.task.type": "review_account", "account_id": account}
            with tracer.start_as_current_span("review_account", attributes=task):
                try:
                    tool = {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "crm.get_account",
                        "account_id": account,
                    }
                    # The SDK records the exception and an ERROR status as it leaves.
                    with tracer.start_as_current_span(
                        "execute_tool crm.get_account", attributes=tool
                    ):
                        time.sleep(rng.uniform(0.001, 0.004))
                        if rng.random() < 0.2:
                            raise CrmTimeout(f"CRM did not answer for {account}")
                except CrmTimeout:
                    continue
                chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL}
                with tracer.start_as_current_span(f"chat {MODEL}", attributes=chat) as span:
                    time.sleep(rng.uniform(0.002, 0.006))
                    span.set_attribute("gen_ai.response.model", MODEL)
                    span.set_attribute("gen_ai.usage.input_tokens", rng.randint(800, 1200))
                    span.set_attribute("gen_ai.usage.output_tokens", rng.randint(100, 300))
    provider.force_flush()  # every span is in before the session ends and is summarised
    client.complete(sid)
    provider.shutdown()
    if resend:
        again = exporter_for(url, token, gzip=gzip)
        again.export(kept.get_finished_spans())
        again.shutdown()
    return sid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SERGAS_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--token", default=os.environ.get("SERGAS_TOKEN"), required=False)
    parser.add_argument("--accounts", type=int, default=6)
    parser.add_argument("--no-gzip", action="store_true", help="send uncompressed protobuf")
    parser.add_argument("--resend", action="store_true", help="export every span twice")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("pass --token or set SERGAS_TOKEN (manage.py create_agent_token NAME)")
    accounts = [f"acct_{n:05d}" for n in range(args.accounts)]
    with SergasClient(args.url, args.token) as client:
        try:
            sid = run(
                client,
                url=args.url,
                token=args.token,
                accounts=accounts,
                gzip=not args.no_gzip,
                resend=args.resend,
            )
            session = client.get_session(sid)
        except SergasAPIError as exc:
            print(f"API error {exc.status_code} {exc.code}: {exc.detail}", file=sys.stderr)
            return 1
    metrics = session.metrics or {}
    print(f"session {sid}: {session.status}")
    print(
        f"usage input_tokens={metrics.get('input_tokens')}"
        f" output_tokens={metrics.get('output_tokens')} cost_usd={metrics.get('cost_usd')}"
    )
    print(f"summary: {session.summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
