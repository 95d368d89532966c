"""Read ``/metrics`` the way Prometheus does (prometheus_client's text parser)."""

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families


def scrape(client: Client | None = None) -> dict[tuple[str, frozenset], float]:
    """Every sample of ``/metrics`` keyed by (sample name, labels)."""
    response = (client or Client()).get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)
