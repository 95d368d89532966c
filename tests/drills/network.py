"""Hosts on one machine: network namespaces joined by a bridge, each with an address of
its own, so processes reach one another only over the (virtual) network and a drill can
cut one host's link.

The root namespace gets the bridge's own address (``.1``), so the test process can query
the database host like any other host. Everything is named ``sgs-<tag>-...`` and torn
down by ``LocalNetwork.destroy``; a machine that forbids namespaces raises ``OSError`` or
``CalledProcessError`` from ``create`` (the drill skips).
"""

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class Host:
    """A network namespace with one veth into the bridge."""

    role: str
    namespace: str
    address: str
    bridge_side: str  # the veth end on the bridge, in the root namespace
    host_side: str  # the veth end inside the namespace

    def prefix(self) -> tuple[str, ...]:
        """The command prefix that runs a program on this host."""
        return ("ip", "netns", "exec", self.namespace)

    def cut(self) -> None:
        """Pull the cable: nothing reaches the host or leaves it, no connection is closed."""
        _ip("link", "set", self.bridge_side, "down")

    def restore(self) -> None:
        _ip("link", "set", self.bridge_side, "up")


@dataclass
class LocalNetwork:
    """A bridge ``sgs-<tag>`` on ``10.213.<n>.0/24`` and hosts added one by one."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:4])
    hosts: dict[str, Host] = field(default_factory=dict)
    _created: bool = False

    @property
    def bridge(self) -> str:
        return f"sgs-{self.tag}"

    @property
    def subnet(self) -> str:
        return f"10.213.{int(self.tag, 16) % 250 + 1}"

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (where the test process talks from)."""
        return f"{self.subnet}.1"

    def create(self) -> "LocalNetwork":
        if shutil.which("ip") is None:
            raise OSError("the ip command (iproute2) is not installed")
        _ip("link", "add", self.bridge, "type", "bridge")
        self._created = True
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        return self

    def add_host(self, role: str) -> Host:
        index = len(self.hosts) + 1
        host = Host(
            role=role,
            namespace=f"sgs-{self.tag}-{role}",
            address=f"{self.subnet}.{10 + index}",
            bridge_side=f"sgs-{self.tag}-{index}b",
            host_side=f"sgs-{self.tag}-{index}h",
        )
        self.hosts[role] = host
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.bridge_side, "type", "veth", "peer", "name", host.host_side)
        _ip("link", "set", host.host_side, "netns", host.namespace)
        _ip("link", "set", host.bridge_side, "master", self.bridge)
        _ip("link", "set", host.bridge_side, "up")
        inside = ("netns", "exec", host.namespace, "ip")
        _ip(*inside, "addr", "add", f"{host.address}/24", "dev", host.host_side)
        _ip(*inside, "link", "set", host.host_side, "up")
        _ip(*inside, "link", "set", "lo", "up")
        return host

    def destroy(self) -> None:
        """Remove every veth, namespace and the bridge; safe to call after a partial
        ``create`` and twice."""
        for host in self.hosts.values():
            subprocess.run(["ip", "link", "del", host.bridge_side], capture_output=True)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        self.hosts.clear()
        if self._created:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
            self._created = False
