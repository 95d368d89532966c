"""Shared plumbing of the benchmark scripts under ``bench/``.

Each script measures the project and a baseline side by side in one run and reports
``Figure``s. ``report`` prints them as a table and writes ``bench/results/<script>.json``;
``make bench`` collects those files into ``bench/results/latest.json`` and a Markdown
table. Every script accepts ``--quick`` (small sizes, for ``make test``) and runs with
``DATABASE_URL``/``REDIS_URL`` set (``make bench`` uses the embedded servers by default).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    name: str  # what was measured, e.g. "recover 1 MB via API p99"
    value: float
    unit: str  # "ms", "req/s", "s", "x"
    baseline_name: str = ""
    baseline_value: float | None = None
    target: str = ""  # e.g. "< 20 ms"
    met: bool | None = None  # whether the target is met, when there is one

    @property
    def ratio(self) -> float | None:
        """value / baseline (for latencies: how many times slower than the baseline)."""
        if not self.baseline_value:
            return None
        return self.value / self.baseline_value


def parser(description: str) -> argparse.ArgumentParser:
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run for make test"
    )
    return arguments


def setup_django(settings_module: str = "sergas.settings.base") -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    import django

    django.setup()


def fresh_database(suffix: str) -> str:
    """Drop and create ``<DATABASE_URL name>_bench_<suffix>`` and point ``DATABASE_URL``
    (and Django's settings module, unless set) at it, so a benchmark starts clean and
    never touches the database it was given. Returns the new URL."""
    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"{url.path.lstrip('/') or 'sergas'}_bench_{suffix}"
    admin = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = urlunsplit(url._replace(path=f"/{name}"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")
    return os.environ["DATABASE_URL"]


def percentile(samples: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5, 0.95, 0.99) of ``samples``, interpolated."""
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=1000, method="inclusive")
    return cuts[min(int(fraction * 1000) - 1, len(cuts) - 1)]


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(script: str, figures: list[Figure], *, quick: bool, notes: str = "") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "script": script,
        "quick": quick,
        "commit": commit(),
        "notes": notes,
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
    }
    (RESULTS / f"{script}.json").write_text(json.dumps(payload, indent=2))
    print(f"\n{script}{' (quick)' if quick else ''}")
    for f in figures:
        baseline = (
            f"  baseline {f.baseline_name}: {f.baseline_value:.3f} {f.unit}  ratio {f.ratio:.2f}"
            if f.baseline_value is not None and f.ratio is not None
            else ""
        )
        target = f"  target {f.target} ({'met' if f.met else 'NOT met'})" if f.target else ""
        print(f"  {f.name}: {f.value:.3f} {f.unit}{baseline}{target}")
