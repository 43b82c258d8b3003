"""The host firewall that keeps functions off the host and off the local network.

A container on the functions' bridge may reach the internet and the worker's Runtime API
ports on the bridge's gateway address. Everything else of the host (Postgres, Redis, the
console, the Docker API, any service listening on all addresses) and every private or
link-local network the host can route to (other machines, a cloud metadata service) is
dropped. Containers on the bridge cannot reach one another either: the network is created
without inter-container communication.

The rules sit in two chains of their own, reached only by a jump for traffic that comes in
on the bridge, so no other interface is affected. Installing is idempotent: both chains
are rewritten in one `iptables-restore` transaction, and each jump exists exactly once, as
the first rule of its parent chain. It needs root (CAP_NET_ADMIN and CAP_NET_RAW).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from invocations.sandboxes.base import SandboxError

INPUT_CHAIN = "STRATUS-FUNCTIONS-INPUT"
FORWARD_CHAIN = "STRATUS-FUNCTIONS-FORWARD"
# Docker evaluates this chain first in FORWARD and never rewrites it.
DOCKER_FORWARD_CHAIN = "DOCKER-USER"
DEFAULT_RUNTIME_API_PORTS = "20000-29999"
# Private, shared (carrier-grade NAT) and link-local space, where the local network and
# metadata services live.
BLOCKED_NETWORKS_V4 = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
)
BLOCKED_NETWORKS_V6 = ("fc00::/7", "fe80::/10")
DNS_PORT = 53
_ROUTE_TABLE = Path("/proc/net/route")
_RESOLV_CONF = Path("/etc/resolv.conf")
_COMMAND_TIMEOUT_SECONDS = 30
_LOCK_FILE = "stratus-functions-firewall.lock"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class FirewallError(SandboxError):
    """The firewall rules could not be read or installed."""


@dataclass(frozen=True)
class PortRange:
    first: int
    last: int

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """ "20000-29999" (or a single port) -> PortRange; ValueError if malformed."""
        first_text, dash, last_text = text.strip().partition("-")
        try:
            first = int(first_text)
            last = int(last_text) if dash else first
        except ValueError:
            raise ValueError(f"not a port range: {text!r} (expected e.g. 20000-29999)") from None
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"not a port range: {text!r} (ports 1-65535, first <= last)")
        return cls(first, last)

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"

    def as_range(self) -> range:
        return range(self.first, self.last + 1)

    @property
    def iptables(self) -> str:
        return f"{self.first}:{self.last}" if self.last != self.first else str(self.first)


@dataclass(frozen=True)
class FirewallPolicy:
    """What containers on one bridge may reach, for one address family."""

    bridge: str
    #: "iptables" or "ip6tables".
    command: str
    #: The bridge's gateway address, where the Runtime API servers listen.
    gateway: str
    runtime_api_ports: PortRange
    blocked_networks: tuple[str, ...]
    #: Name servers inside blocked networks that stay reachable on port 53, because
    #: Docker's embedded DNS forwards the containers' queries to them from the container.
    name_servers: tuple[str, ...] = ()

    def input_rules(self) -> list[str]:
        """The rules for traffic from the bridge to the host itself, as `iptables -S`
        prints them."""
        prefix = f"-A {INPUT_CHAIN}"
        host_bits = 128 if ":" in self.gateway else 32
        return [
            f"{prefix} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"{prefix} -d {self.gateway}/{host_bits} -p tcp -m tcp "
            f"--dport {self.runtime_api_ports.iptables} -j ACCEPT",
            f"{prefix} -j DROP",
        ]

    def forward_rules(self) -> list[str]:
        """The rules for traffic from the bridge to other hosts; RETURN hands it back to
        Docker's own rules, which let it out."""
        prefix = f"-A {FORWARD_CHAIN}"
        rules = [f"{prefix} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN"]
        for server in self.name_servers:
            host_bits = 128 if ":" in server else 32
            for protocol in ("udp", "tcp"):
                rules.append(
                    f"{prefix} -d {server}/{host_bits} -p {protocol} -m {protocol} "
                    f"--dport {DNS_PORT} -j RETURN"
                )
        rules.extend(f"{prefix} -d {network} -j DROP" for network in self.blocked_networks)
        rules.append(f"{prefix} -j RETURN")
        return rules

    def jump_rule(self, parent: str, chain: str) -> str:
        return f"-A {parent} -i {self.bridge} -j {chain}"


def firewall_policies(
    *,
    bridge: str,
    gateways: Sequence[str],
    runtime_api_ports: PortRange,
    route_table: Path = _ROUTE_TABLE,
    resolv_conf: Path = _RESOLV_CONF,
) -> list[FirewallPolicy]:
    """One policy per address family the bridge has a gateway for."""
    name_servers = _name_servers(resolv_conf)
    policies = []
    for gateway in gateways:
        version = ipaddress.ip_address(gateway).version
        if version == 4:
            blocked = _without_nested(
                [*BLOCKED_NETWORKS_V4, *_local_networks(route_table, exclude=bridge)]
            )
            command = "iptables"
        else:
            blocked = _without_nested(list(BLOCKED_NETWORKS_V6))
            command = "ip6tables"
        reachable = tuple(
            server
            for server in name_servers
            if ipaddress.ip_address(server).version == version
            and any(ipaddress.ip_address(server) in ipaddress.ip_network(n) for n in blocked)
        )
        policies.append(
            FirewallPolicy(
                bridge=bridge,
                command=command,
                gateway=gateway,
                runtime_api_ports=runtime_api_ports,
                blocked_networks=tuple(blocked),
                name_servers=reachable,
            )
        )
    return policies


def firewall_install(policy: FirewallPolicy) -> None:
    """Rewrite the chains and make sure each is jumped to once, first, for the bridge."""
    if shutil.which(policy.command) is None:
        raise FirewallError(
            f"{policy.command} is not installed; the functions' network cannot be locked down "
            "(on Debian: apt-get install iptables)"
        )
    lines = [
        "*filter",
        f":{INPUT_CHAIN} - [0:0]",
        f":{FORWARD_CHAIN} - [0:0]",
        *policy.input_rules(),
        *policy.forward_rules(),
        "COMMIT",
        "",
    ]
    with _host_lock():
        # With --noflush, a declared chain is emptied and refilled; nothing else is touched.
        _run([f"{policy.command}-restore", "-w", "--noflush"], stdin="\n".join(lines))
        _ensure_first_jump(policy, "INPUT", INPUT_CHAIN)
        forward_parent = (
            DOCKER_FORWARD_CHAIN if _chain_exists(policy, DOCKER_FORWARD_CHAIN) else "FORWARD"
        )
        _ensure_first_jump(policy, forward_parent, FORWARD_CHAIN)


def firewall_rules(policy: FirewallPolicy, chain: str) -> list[str]:
    """The rules of `chain` as `iptables -S` prints them, without its -N line."""
    listing = _run([policy.command, "-w", "-S", chain])
    return [line for line in listing.splitlines() if line.startswith("-A ")]


def _ensure_first_jump(policy: FirewallPolicy, parent: str, chain: str) -> None:
    rule = policy.jump_rule(parent, chain)
    arguments = rule.split()[2:]
    rules = firewall_rules(policy, parent)
    if rules and rules[0] == rule and rules.count(rule) == 1:
        return
    for _ in range(rules.count(rule)):
        _run([policy.command, "-w", "-D", parent, *arguments])
    _run([policy.command, "-w", "-I", parent, "1", *arguments])


def _chain_exists(policy: FirewallPolicy, chain: str) -> bool:
    try:
        _run([policy.command, "-w", "-S", chain])
    except FirewallError:
        return False
    return True


def _run(command: list[str], *, stdin: str | None = None) -> str:
    try:
        completed = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=_COMMAND_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FirewallError(f"{' '.join(command)}: {exc}") from exc
    if completed.returncode != 0:
        hint = (
            " (it needs root: CAP_NET_ADMIN and CAP_NET_RAW)"
            if "ermission" in completed.stderr
            else ""
        )
        raise FirewallError(
            f"{' '.join(command)} failed (exit {completed.returncode}){hint}: "
            f"{completed.stderr.strip()}"
        )
    return completed.stdout


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """One installer at a time on this host, so two workers never add the same jump twice."""
    with open(Path(tempfile.gettempdir()) / _LOCK_FILE, "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _local_networks(route_table: Path, *, exclude: str) -> list[str]:
    """IPv4 networks attached directly to the host's interfaces (other than `exclude`)."""
    try:
        lines = route_table.read_text().splitlines()[1:]
    except OSError:
        return []
    networks = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[0] in (exclude, "lo"):
            continue
        destination, gateway, mask = (_route_address(f) for f in (fields[1], fields[2], fields[7]))
        if gateway != "0.0.0.0" or mask == "0.0.0.0":
            continue
        networks.append(str(ipaddress.ip_network(f"{destination}/{mask}", strict=False)))
    return networks


def _route_address(hex_text: str) -> str:
    """/proc/net/route writes addresses as hex numbers in the host's byte order."""
    return str(ipaddress.IPv4Address(int(hex_text, 16).to_bytes(4, sys.byteorder)))


def _name_servers(resolv_conf: Path) -> list[str]:
    servers = []
    with contextlib.suppress(OSError):
        for line in resolv_conf.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 2 and fields[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    servers.append(str(ipaddress.ip_address(fields[1].split("%")[0])))
    return servers


def _without_nested(networks: list[str]) -> list[str]:
    """The networks in order, without duplicates or any that another one listed contains."""
    unique = list(dict.fromkeys(ipaddress.ip_network(n, strict=False) for n in networks))
    return [
        str(network)
        for network in unique
        if not any(other != network and _contains(other, network) for other in unique)
    ]


def _contains(outer: IPNetwork, inner: IPNetwork) -> bool:
    return (
        outer.version == inner.version
        and int(outer.network_address) <= int(inner.network_address)
        and int(inner.broadcast_address) <= int(outer.broadcast_address)
    )
