"""Prometheus metrics of trace ingest (observed after the spans commit)."""

from prometheus_client import Counter

SPANS = Counter(
    "sergas_trace_spans_total",
    "OTLP spans received, by outcome: stored, duplicate (a resent span), rejected.",
    ["outcome"],
)
MODEL_TOKENS = Counter(
    "sergas_model_tokens_total",
    "Tokens of model calls reported in traces, by model and direction (input, output).",
    ["model", "direction"],
)
