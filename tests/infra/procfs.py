"""Read processes and listening sockets from /proc of the box.

The image carries neither ps nor ss, so the tests read /proc through the
testinfra host instead of testinfra's process and socket modules.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

_LIST_PROCESSES = r"""
for directory in /proc/[0-9]*; do
    stat=$(cat "$directory/stat" 2>/dev/null) || continue
    command=$(tr '\0\n' '  ' <"$directory/cmdline" 2>/dev/null)
    printf '%s\t%s\n' "$stat" "$command"
done
"""

_TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Process:
    """One process of the box."""

    pid: int
    ppid: int
    state: str  # one letter, as in /proc/PID/stat: R, S, D, Z, ...
    name: str  # the command name (comm)
    command: str  # the whole command line, arguments joined by spaces


def processes(host: Any) -> list[Process]:
    """List the processes of the box."""
    result = host.run(_LIST_PROCESSES)
    assert result.rc == 0, result.stderr
    found = []
    for line in result.stdout.splitlines():
        stat, _, command = line.partition("\t")
        # The command name is in brackets and may contain spaces and brackets.
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        process = Process(pid=int(stat.split()[0]), ppid=int(fields[1]), state=fields[0], name=name, command=command)
        found.append(process)
    return found


def processes_named(host: Any, name: str) -> list[Process]:
    """List the processes whose command name is name."""
    return [process for process in processes(host) if process.name == name]


def lasting_zombies(host: Any, seconds: float = 6.0) -> list[Process]:
    """List the zombie processes that are still unreaped after seconds.

    monit reaps a `check program` child on the cycle after it exits, so a
    zombie may exist for one cycle. One that outlasts a few cycles has a
    parent that never reaps it.
    """
    zombies = {(process.pid, process.ppid) for process in processes(host) if process.state == "Z"}
    if not zombies:
        return []
    time.sleep(seconds)
    return [process for process in processes(host) if process.state == "Z" and (process.pid, process.ppid) in zombies]


def listening_tcp_ports(host: Any) -> set[int]:
    """Return the TCP ports that sockets of the box listen on, IPv4 and IPv6."""
    result = host.run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null")
    ports = set()
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _TCP_LISTEN:
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _address(hex_address: str) -> str:
    """Turn a /proc/net/tcp address (hex, host byte order per 32-bit word) into text."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_tcp_sockets(host: Any) -> set[tuple[str, int]]:
    """Return the (address, port) pairs that sockets of the box listen on, IPv4 and IPv6."""
    result = host.run("cat /proc/net/tcp /proc/net/tcp6 2>/dev/null")
    sockets = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3] == _TCP_LISTEN:
            address, port = fields[1].rsplit(":", 1)
            sockets.add((_address(address), int(port, 16)))
    return sockets
