"""Real Celery processes (beat, worker) for integration tests and drills.

They run the project's own commands against the test database and broker, in their own
process group, so a test can stop them gracefully or kill them like a crash would.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def child_database_url() -> str:
    """A URL to the database the tests use (``test_...``), for child processes."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    socket_dir = db.get("OPTIONS", {}).get("host")
    if socket_dir and not db.get("HOST"):
        return f"postgresql://{auth}/{db['NAME']}?host={socket_dir}"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgresql://{auth}{db.get('HOST') or '127.0.0.1'}{port}/{db['NAME']}"


def spawn(command: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in the project directory, in a process group of its own (so
    one signal reaches all its children), its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class CeleryProcess:
    """``prefix`` runs it elsewhere (``ip netns exec NAME``: on another host)."""

    def __init__(
        self, kind: str, log_dir: Path, *args: str, prefix: tuple[str, ...] = (), **env: str
    ) -> None:
        self.kind = kind
        self.args = list(args)
        self.prefix = prefix
        self.env = env
        self.log_path = log_dir / f"{kind}-{time.monotonic_ns()}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "CeleryProcess":
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "sergas.settings.test",
            "DATABASE_URL": child_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "SESSION_CACHE_KEY_PREFIX": settings.SERGAS_SESSIONS["CACHE_KEY_PREFIX"],
            **self.env,
        }
        command = [
            *self.prefix,
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sergas",
            self.kind,
            "--loglevel",
            "INFO",
            *self.args,
        ]
        self.process = spawn(command, env=env, log_path=self.log_path)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"{self.kind} exited:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind} never logged {text!r}:\n{self.log()[-3000:]}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def beat(log_dir: Path, prefix: tuple[str, ...] = (), **env: str) -> CeleryProcess:
    return CeleryProcess("beat", log_dir, "--max-interval", "1", prefix=prefix, **env)


def worker(log_dir: Path, *args: str, prefix: tuple[str, ...] = (), **env: str) -> CeleryProcess:
    from scheduling import conf

    queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{conf.review_queue()}"
    return CeleryProcess(
        "worker",
        log_dir,
        "--queues",
        queues,
        "--without-mingle",
        "--without-gossip",
        *args,
        prefix=prefix,
        **env,
    )
