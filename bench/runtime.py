"""Run-time figures of one image: start to first AMQP round trip, message
rates, and recovery after SIGKILL of RabbitMQ and of sshd."""

from __future__ import annotations

import socket
import time
import uuid
from dataclasses import dataclass

from bench.common import PREFIX, docker, remove_containers
from mqbox.amqp import consume_all, publish_persistent, wait_for_round_trip

# Bound of every wait. The reference checks its services every 120 s (the
# default `set daemon 120` of Debian's monitrc), so a bound under that would
# cut its recovery short.
WAIT_SECONDS = 300.0


@dataclass(frozen=True)
class BoxImage:
    """An image to measure and how to reach its broker."""

    label: str
    image: str
    # Environment of the container and the AMQP credentials it gives.
    environment: tuple[str, ...]
    user: str
    password: str


@dataclass
class RunningBox:
    """A started container and its published ports."""

    name: str
    amqp_port: int
    ssh_port: int
    url: str


def start(box: BoxImage) -> tuple[RunningBox, float]:
    """Start a container and return it with the seconds until its first AMQP round trip."""
    name = f"{PREFIX}-{box.label}-{uuid.uuid4().hex[:8]}"
    arguments = ["run", "--detach", "--name", name, "--publish", "127.0.0.1::5672", "--publish", "127.0.0.1::22"]
    for variable in box.environment:
        arguments += ["--env", variable]
    started = time.monotonic()
    docker(*arguments, box.image)
    amqp_port = int(docker("port", name, "5672/tcp").splitlines()[0].rsplit(":", 1)[1])
    ssh_port = int(docker("port", name, "22/tcp").splitlines()[0].rsplit(":", 1)[1])
    url = f"amqp://{box.user}:{box.password}@127.0.0.1:{amqp_port}/%2F"
    try:
        wait_for_round_trip(url, timeout=WAIT_SECONDS)
    except BaseException:
        remove_containers(name)
        raise
    return RunningBox(name=name, amqp_port=amqp_port, ssh_port=ssh_port, url=url), time.monotonic() - started


def message_rates(box: RunningBox, count: int) -> tuple[float, float]:
    """Publish count persistent 1 KiB messages with confirms, consume them; return both rates per second."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    published = publish_persistent(box.url, queue, count, size=1024)
    publish_seconds = time.monotonic() - started
    started = time.monotonic()
    consumed = consume_all(box.url, queue)
    consume_seconds = time.monotonic() - started
    if consumed != published:
        raise RuntimeError(f"{box.name}: published {len(published)} messages, consumed {len(consumed)} others back")
    return count / publish_seconds, count / consume_seconds


def kill_process(box: RunningBox, process: str) -> None:
    """Send SIGKILL to the process of that name with the lowest PID in the container.

    The images need not have pgrep, so the shell reads /proc.
    """
    script = (
        "for dir in $(ls -d /proc/[0-9]* | sort -t/ -k3 -n); do "
        'if [ "$(cat "$dir/comm" 2>/dev/null)" = "$0" ]; then kill -KILL "${dir#/proc/}"; exit 0; fi; '
        'done; echo "no process $0" >&2; exit 1'
    )
    docker("exec", box.name, "sh", "-c", script, process)


def rabbitmq_recovery(box: RunningBox) -> float | None:
    """Kill beam.smp and return the seconds until an AMQP round trip succeeds, or None past the bound."""
    kill_process(box, "beam.smp")
    started = time.monotonic()
    try:
        wait_for_round_trip(box.url, timeout=WAIT_SECONDS)
    except TimeoutError:
        return None
    return time.monotonic() - started


def ssh_banner(port: int) -> bool:
    """Return whether an SSH server sends its identification string on the port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def sshd_kill(box: RunningBox) -> float:
    """Kill the listening sshd and return the monotonic time of the kill."""
    if not ssh_banner(box.ssh_port):
        raise RuntimeError(f"{box.name}: no SSH banner on port {box.ssh_port} before the kill")
    kill_process(box, "sshd")
    return time.monotonic()


def sshd_recovery(box: RunningBox, killed_at: float) -> float | None:
    """Return the seconds from the kill until sshd sends its banner again, or None past the bound."""
    time.sleep(0.5)
    while time.monotonic() - killed_at < WAIT_SECONDS:
        if ssh_banner(box.ssh_port):
            return time.monotonic() - killed_at
        time.sleep(0.5)
    return None
