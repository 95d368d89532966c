import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import start_http_server

from sergas.metrics import metrics_registry, multiprocess_dir


class Command(BaseCommand):
    help = (
        "Serve the metrics that this host's processes (Celery workers, beat) wrote to "
        "PROMETHEUS_MULTIPROC_DIR, for a host that runs no web process. Runs until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=9101)
        parser.add_argument("--address", default="0.0.0.0", help="Default: every interface.")

    def handle(self, *args: Any, port: int, address: str, **options: Any) -> None:
        if multiprocess_dir() is None:
            raise CommandError(
                "PROMETHEUS_MULTIPROC_DIR is not set: another process's metrics live in its "
                "own memory. Set it (the same directory) for the workers and this command."
            )
        # The metrics read from the database are exported by the web processes only:
        # summing targets must not count them once more per host.
        start_http_server(port, addr=address, registry=metrics_registry(with_database=False))
        self.stdout.write(f"Serving {multiprocess_dir()} on http://{address}:{port}/metrics")
        while True:
            time.sleep(3600)
