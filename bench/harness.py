"""Shared plumbing of the benchmark scripts under ``bench/``.

Each script measures the project and a baseline side by side in one run and reports
``Figure``s. ``report`` prints them as a table and writes ``bench/results/<script>.json``;
``make bench`` collects those files into ``bench/results/latest.json`` and a Markdown
table. Every script accepts ``--quick`` (small sizes, for ``make test``) and runs with
``DATABASE_URL``/``REDIS_URL`` set (``make bench`` uses the embedded servers by default).
"""

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# A script run as ``python bench/<name>.py`` has bench/ first on sys.path, where
# ``http.py`` would hide the standard library's ``http`` package from Django.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != RESULTS.parent]
LOGS = ROOT / "var" / "bench-logs"


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


# --- shared plumbing -------------------------------------------------------------------------

# Modules under bench/ that are plumbing, not benchmarks.
NOT_SCRIPTS = frozenset(
    {"__init__", "harness", "herds", "run", "runners", "settings", "stock_beat", "urls"}
)


def scripts() -> list[str]:
    """The benchmark scripts under bench/, by name."""
    here = Path(__file__).resolve().parent
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in NOT_SCRIPTS)


def use_fresh_database(suffix: str) -> str:
    """Point ``DATABASE_URL`` at a new, empty ``<name>_bench_<suffix>`` on the same server
    (dropped first if a previous run left it), so a benchmark never touches real data."""
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
    fresh = urlunsplit(url._replace(path=f"/{name}"))
    os.environ["DATABASE_URL"] = fresh
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sergas.settings.base")
    return fresh


def migrate() -> None:
    """``setup_django`` then ``migrate`` (quietly) and the audit partitions."""
    setup_django()
    from django.core.management import call_command

    from audit.services import audit_partitions_maintain

    call_command("migrate", verbosity=0, interactive=False)
    audit_partitions_maintain(actor="bench")


def purge_bench_queues() -> None:
    """Drop the benchmarks' Celery queues and scratch keys from Redis."""
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    for pattern in ("bench-*", "bench:*", "_kombu.binding.bench-*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


def spawn(command: list[str], *, log_name: str, env: dict[str, str] | None = None) -> Any:
    """Start a process of the project in its own process group, logging to var/."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / f"{log_name}.log", "ab") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def celery_worker(concurrency: int, *, log_name: str) -> Any:
    """A Celery worker on the benchmarks' queues (bench-reviews, bench-celery)."""
    return spawn(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sergas",
            "worker",
            "--concurrency",
            str(concurrency),
            "--queues",
            "bench-reviews,bench-celery",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        log_name=log_name,
    )


def stop(*processes: Any) -> None:
    """SIGTERM each process group, then SIGKILL what lingers after 30 s."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def gunicorn(
    *, workers: int = 2, threads: int | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """Serve the project with gunicorn as docs/deployment.md configures it; yields the base
    URL once ``/healthz`` answers and every worker has served a request. ``threads``:
    threaded workers (gthread), which agents' long polls need."""
    import httpx

    port = free_port()
    server = spawn(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "sergas.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            *(["--threads", str(threads)] if threads else []),
        ],
        log_name=f"gunicorn-{port}",
        env={"DEBUG": "0", "API_THROTTLE_RATE": "100000000/min", **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.returncode}; see {LOGS}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become healthy in 60 s")
            time.sleep(0.2)
        with httpx.Client(timeout=60) as warm:  # every worker imports and connects once
            for _ in range(workers * 4):
                warm.get(f"{base}/healthz")
        yield base
    finally:
        stop(server)
