"""Servers a drill owns and may break: a PostgreSQL of its own, gunicorn serving the project.

The machine's PostgreSQL and Redis are never stopped by a drill: the PostgreSQL drill
starts the embedded server (the ``pgserver`` wheel, as ``sergas.embedded`` does) in a
directory of its own and stops and starts that one.
"""

import contextlib
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import httpx

from tests.processes import spawn

ROOT = Path(__file__).resolve().parent.parent.parent
DATABASE = "sergas_drill"


class PostgresServer:
    """A private PostgreSQL 16 on a unix socket under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.pgdata = directory / "pg"
        self.socket_dir: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{DATABASE}?host={self.socket_dir}"

    def _user(self) -> str | None:
        return "pgserver" if os.geteuid() == 0 else None

    def start(self) -> None:
        """The first start runs initdb and creates the database; later ones restart it."""
        if self.socket_dir is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pgserver

            self.pgdata.mkdir(parents=True, exist_ok=True)
            server = pgserver.get_server(self.pgdata, cleanup_mode=None)
            server.psql(f"CREATE DATABASE {DATABASE};")
            self.socket_dir = str(server.get_postmaster_info().socket_dir)
            return
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.pgdata / "log"),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-m", mode, "stop")

    def _pg_ctl(self, *args: str) -> None:
        from pgserver._commands import pg_ctl

        pg_ctl(list(args), pgdata=self.pgdata, user=self._user(), timeout=60)

    def close(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self.stop("immediate")


def manage(*args: str, env: dict[str, str]) -> str:
    """Run ``manage.py`` with ``env`` added; return its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout


class Gunicorn:
    """The project under gunicorn on ``127.0.0.1:port``, as in production."""

    def __init__(
        self,
        port: int,
        log_dir: Path,
        env: dict[str, str],
        workers: int = 2,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self.port = port
        self.env = env
        self.workers = workers
        self.log_path = log_dir / f"gunicorn-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "Gunicorn":
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "sergas.wsgi",
            "--bind",
            f"{self.host}:{self.port}",
            "--workers",
            str(self.workers),
            "--threads",
            "4",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
        ]
        self.process = spawn(
            command,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "sergas.settings.test", **self.env},
            log_path=self.log_path,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{self.url}/healthz", timeout=2)
                return self
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"gunicorn did not start:\n{self.log()[-3000:]}") from None
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
