"""Agents as real OS processes: ``docs/agent_worker.py`` (sergas_client.Worker) speaking
only HTTP to a server, optionally inside a network namespace of its own."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.processes import ROOT, spawn

EXAMPLE = ROOT / "docs" / "agent_worker.py"


class AgentProcess:
    """``docs/agent_worker.py`` in a process group of its own, its lines in a log file."""

    def __init__(
        self,
        log_dir: Path,
        *,
        url: str,
        token: str,
        queue: str,
        args: tuple[str, ...] = (),
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.command = [
            *prefix,
            sys.executable,
            str(EXAMPLE),
            "--url",
            url,
            "--token",
            token,
            "--queue",
            queue,
            *args,
        ]
        self.log_path = log_dir / f"agent-{uuid.uuid4().hex[:8]}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "AgentProcess":
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        self.process = spawn(
            self.command, env={**env, "PYTHONUNBUFFERED": "1"}, log_path=self.log_path
        )
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self, kind: str) -> list[dict[str, str]]:
        """The ``<kind> key=value ...`` lines it printed, as dicts."""
        found = []
        for line in self.output().splitlines():
            if line.startswith(f"{kind} "):
                found.append(dict(re.findall(r"(\w+)=(\S+)", line)))
        return found

    def wait_for(self, kind: str, count: int = 1, timeout: float = 60) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            events = self.events(kind)
            if len(events) >= count:
                return events
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"the agent exited:\n{self.output()[-3000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the agent never printed {kind!r}:\n{self.output()[-3000:]}")
            time.sleep(0.05)

    def signal(self, number: int) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, number)

    def wait(self, timeout: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGKILL)
            self.process.wait()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


class NetworkNamespace:
    """A network namespace of its own joined to this one by a veth pair: ``host_address``
    on this side, ``agent_address`` inside. ``create`` raises ``OSError`` or
    ``CalledProcessError`` where the machine forbids it; ``destroy`` removes both."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"sergas-agent-{tag}"
        self._host_side, self._agent_side = f"vsh{tag}", f"vsa{tag}"
        subnet = 200 + int(tag[:2], 16) % 50
        self.host_address, self.agent_address = f"10.{subnet}.77.1", f"10.{subnet}.77.2"

    def create(self) -> "NetworkNamespace":
        if shutil.which("ip") is None:
            raise OSError("the ip command (iproute2) is not installed")
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self._host_side, "type", "veth", "peer", "name", self._agent_side)
            _ip("link", "set", self._agent_side, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/24", "dev", self._host_side)
            _ip("link", "set", self._host_side, "up")
            inside = ("netns", "exec", self.name, "ip")
            _ip(*inside, "addr", "add", f"{self.agent_address}/24", "dev", self._agent_side)
            _ip(*inside, "link", "set", self._agent_side, "up")
            _ip(*inside, "link", "set", "lo", "up")
        except BaseException:
            self.destroy()
            raise
        return self

    def run_inside(self) -> tuple[str, ...]:
        """The command prefix that runs a program inside the namespace."""
        return ("ip", "netns", "exec", self.name)

    def destroy(self) -> None:
        subprocess.run(["ip", "link", "del", self._host_side], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
