"""The trace view of the session page, and model usage on it and on the overview."""

import re

import pytest
from django.urls import reverse
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

from tests.factories import make_session
from tests.traces.otel import MODEL, PRICES, agent_spans
from traces.models import Span, SpanKind
from traces.services import spans_ingest

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _prices(settings):
    settings.SERGAS_TRACES = {**settings.SERGAS_TRACES, "MODEL_PRICES": PRICES}


def traced_session(**spans):
    session = make_session("running")
    export = encode_spans(agent_spans(session.session_id, **spans))
    spans_ingest(export, agent_name="otel-agent", actor="agent:otel-agent")
    return session


def page(client, session, **params):
    response = client.get(reverse("dashboard:session", args=[session.session_id]), params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_session_page_draws_a_waterfall_of_its_spans(viewer_client):
    session = traced_session(failing_tool=True)
    html = page(viewer_client, session)
    assert html.count('class="span-row') == 4
    assert html.count("<svg") >= 1
    for kind in ("k-agent", "k-model", "k-tool"):
        assert f"bar {kind}" in html
    assert "bar k-tool failed" in html  # the failed tool call stands out
    assert "1000\u2192200 tok" in html  # a model call's tokens beside its bar
    # Tree order: the agent's row first, its calls indented under it.
    labels = re.findall(r'class="span-label" x="([\d.]+)"', html)
    assert labels[0] == "6.0"
    assert set(labels[1:]) == {"18.0"}
    assert "cdn" not in html.lower()


def test_clicking_a_span_shows_its_attributes(viewer_client):
    session = traced_session()
    tool = Span.objects.filter(session_id=session.session_id, kind=SpanKind.TOOL).first()
    key = f"{tool.trace_id}-{tool.span_id}"
    html = page(viewer_client, session)
    assert f'href="?span={key}#span-detail"' in html
    fragment = reverse(
        "dashboard:session_span", args=[session.session_id, tool.trace_id, tool.span_id]
    )
    assert f'hx-get="{fragment}"' in html
    # Without JavaScript the link reloads the page with the span shown ...
    shown = page(viewer_client, session, span=key)
    assert f'data-span-detail="{key}"' in shown
    assert "&quot;gen_ai.tool.name&quot;: &quot;crm.get_account&quot;" in shown
    # ... with htmx the fragment alone replaces the detail.
    response = viewer_client.get(fragment)
    assert response.status_code == 200
    assert "crm.get_account" in response.content.decode()
    assert "<html" not in response.content.decode()
    missing = reverse("dashboard:session_span", args=[session.session_id, tool.trace_id, "0" * 16])
    assert viewer_client.get(missing).status_code == 404


def test_the_session_page_and_the_overview_show_tokens_and_cost(viewer_client):
    session = traced_session()
    traced_session(model="mystery-1", tools=0)
    html = page(viewer_client, session)
    assert re.search(r"data-model-tokens>1000 in · 200 out<", html)
    assert re.search(r"data-model-cost>\$0\.006<", html)
    overview = viewer_client.get(reverse("dashboard:overview")).content.decode()
    usage = overview[overview.index("data-model-usage") :]
    assert MODEL in usage
    assert "mystery-1" in usage
    assert "no price" in usage
    assert "$0.006 in all" in usage


def test_a_session_without_spans_says_how_to_send_them(viewer_client):
    html = page(viewer_client, make_session("running"))
    assert "No spans." in html
    assert "/api/v1/otlp/v1/traces" in html
