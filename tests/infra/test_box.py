"""Checks of a converged box, shared by every scenario (image and host)."""

from __future__ import annotations

import ipaddress
import json
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paramiko
import pika
import pika.exceptions
import pytest

from mqbox.amqp import round_trip, wait_for_round_trip
from tests.infra.procfs import lasting_zombies, listening_tcp_ports, listening_tcp_sockets, processes_named
from tests.infra.target import RECOVERY_SECONDS, Target

pytestmark = pytest.mark.usefixtures("box_ready")

# The management plugin's default port (rabbitmq_management_port).
MANAGEMENT_PORT = 15672
EPMD_PORT = 4369


@pytest.mark.parametrize("name", ["monit", "sshd", "beam.smp"])
def test_service_process_runs(host: Any, name: str) -> None:
    assert processes_named(host, name), f"no process named {name} runs"


@pytest.mark.parametrize("port", [22, 5672])
def test_port_listens(host: Any, port: int) -> None:
    assert port in listening_tcp_ports(host)


@pytest.mark.parametrize("port", [4369, 25672])
def test_erlang_port_on_loopback_only(host: Any, port: int) -> None:
    """epmd (4369) and the Erlang distribution (25672) serve only this machine's CLI tools."""
    addresses = {address for address, listening in listening_tcp_sockets(host) if listening == port}
    assert addresses, f"nothing listens on port {port}"
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses), addresses


def test_management_on_loopback_only(host: Any) -> None:
    """With the management plugin enabled, its HTTP port listens on the loopback interface only."""
    if "rabbitmq_management" not in host.file("/etc/rabbitmq/enabled_plugins").content_string:
        pytest.skip("the management plugin is not enabled on this box")
    deadline = time.monotonic() + 60
    addresses: set[str] = set()
    while time.monotonic() < deadline and not addresses:
        addresses = {address for address, port in listening_tcp_sockets(host) if port == MANAGEMENT_PORT}
        time.sleep(1)
    assert addresses, f"nothing listens on port {MANAGEMENT_PORT}"
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses), addresses


def test_monit_control_on_unix_socket_only(host: Any) -> None:
    """monit's control interface is a root-only Unix socket, with no TCP port and no password."""
    monitrc = host.file("/etc/monit/monitrc").content_string
    httpd = [line.split() for line in monitrc.splitlines() if line.strip().startswith("set httpd")]
    assert len(httpd) == 1
    assert httpd[0][2] == "unixsocket"
    assert "port" not in httpd[0]
    assert "use address" not in monitrc
    assert "allow admin:" not in monitrc
    assert 2812 not in listening_tcp_ports(host)
    socket = host.file(httpd[0][3])
    assert socket.is_socket
    assert socket.user == "root"
    assert socket.mode == 0o600


def test_monit_summary_all_ok(host: Any) -> None:
    summary = host.run("monit summary")
    assert summary.rc == 0, summary.stderr
    rows = [line.split() for line in summary.stdout.splitlines()[2:] if line.strip()]
    names = {row[0] for row in rows}
    assert {"sshd", "rabbitmq"} <= names, summary.stdout
    for row in rows:
        assert "OK" in row[1:], f"monit reports {' '.join(row)}"


def test_amqp_round_trip_from_outside(target: Target, admin_password: str) -> None:
    result = round_trip(target.amqp_url(admin_password), timeout=15 * target.wait_scale)
    print(f"AMQP round trip: {result.seconds:.3f} s")
    assert len(result.body) == 16


def test_amqps_round_trip(target: Target, admin_password: str) -> None:
    """AMQP over TLS works with a client that trusts the test CA, and fails with one that does not."""
    if target.amqps_port is None or target.tls_ca_file is None:
        pytest.skip("the box has no TLS listener in this scenario")
    url = target.amqp_url(admin_password, port=target.amqps_port)
    trusting = ssl.create_default_context(cafile=target.tls_ca_file)
    result = wait_for_round_trip(url, timeout=60 * target.wait_scale, tls=trusting)
    print(f"AMQP over TLS round trip: {result.seconds:.3f} s")
    with pytest.raises((ssl.SSLError, pika.exceptions.AMQPConnectionError)):
        round_trip(url, tls=ssl.create_default_context())


def test_amqp_guest_login_rejected(target: Target) -> None:
    url = f"amqp://guest:guest@{target.address}:{target.amqp_port}/%2F"
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        round_trip(url, timeout=10)


def test_rabbitmq_users(host: Any, target: Target) -> None:
    users = host.run("rabbitmqctl --quiet list_users")
    assert users.rc == 0, users.stderr
    names = {line.split("\t")[0]: line for line in users.stdout.splitlines()[1:]}
    assert "guest" not in names
    assert target.admin_user in names
    assert "administrator" in names[target.admin_user]


def test_ssh_key_login(target: Target) -> None:
    result = subprocess.run(target.ssh_command("id", "-u"), capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


def test_ssh_password_login_rejected(target: Target) -> None:
    transport = paramiko.Transport((target.address, target.ssh_port))
    try:
        transport.start_client(timeout=10)
        # The reference image's root password; the server must not even offer password login.
        with pytest.raises(paramiko.BadAuthenticationType) as rejected:
            transport.auth_password("root", "root")
        assert rejected.value.allowed_types == ["publickey"]
    finally:
        transport.close()


def test_root_password_unusable(host: Any) -> None:
    entry = host.run("getent shadow root")
    assert entry.rc == 0, entry.stderr
    hashed = entry.stdout.split(":")[1]
    assert hashed == "*" or hashed.startswith("!"), "root has a usable password"


def test_erlang_cookie_private(host: Any) -> None:
    cookie = host.file("/var/lib/rabbitmq/.erlang.cookie")
    assert cookie.is_file
    assert cookie.user == "rabbitmq"
    assert cookie.group == "rabbitmq"
    assert cookie.mode == 0o400


def test_sshd_config_valid(host: Any) -> None:
    assert host.run("/usr/sbin/sshd -t").rc == 0


def test_no_defunct_processes(host: Any) -> None:
    zombies = lasting_zombies(host)
    assert not zombies, f"defunct processes: {zombies}"


def _ssh_audit_failures(report: dict[str, Any]) -> list[str]:
    """Return the algorithms and keys that ssh-audit rates as failures, with its reasons."""
    failures = []
    for section in ("kex", "key", "enc", "mac"):
        for entry in report.get(section, []):
            reasons = entry.get("notes", {}).get("fail", [])
            if reasons:
                failures.append(f"{section} {entry['algorithm']}: {'; '.join(reasons)}")
    return failures


def test_ssh_audit_finds_no_failure(target: Target) -> None:
    """ssh-audit, an outside tool from PyPI, finds no failing algorithm, host key or known CVE.

    Its warnings are allowed: it warns about every key exchange without a
    post-quantum part, which clients older than OpenSSH 8.5 still need.
    """
    audit = Path(sys.executable).parent / "ssh-audit"
    result = subprocess.run(
        [str(audit), "--json", "--port", str(target.ssh_port), target.address],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(result.stdout)
    print(f"ssh-audit exit status {result.returncode}, banner {report['banner']['raw']}")
    for algorithm in report.get("kex", []):
        print(f"  kex {algorithm['algorithm']}")
    assert _ssh_audit_failures(report) == []
    assert report["cves"] == []
    assert {key["algorithm"] for key in report["key"]} <= {"ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"}

    # OpenSSH 9.8 and later (Debian 13) penalize a source address whose
    # connections end before a login (PerSourcePenalties), and ssh-audit's
    # probes do. The later tests log in from the same address, so wait until
    # sshd accepts the test key again.
    seconds = 120 * target.wait_scale
    accepted = target.wait_for_ssh(seconds, interval=5)
    assert accepted, f"sshd did not accept the test key within {seconds:.0f} s after the audit"


def _epmd_lists(host: Any, name: str) -> bool:
    # `epmd -names` queries a running epmd and never starts one.
    names = host.run("epmd -names").stdout.splitlines()
    return any(line.startswith(f"name {name} at port ") for line in names)


def test_epmd_registration_back_after_kill(host: Any, target: Target, admin_password: str) -> None:
    """After SIGKILL of epmd, AMQP keeps serving and rabbitmqctl reaches the node again within 15 s."""
    node = host.file("/etc/rabbitmq/rabbitmq-env.conf").content_string.split("NODENAME=", 1)[1].split()[0]
    name = node.split("@", 1)[0]
    epmds = processes_named(host, "epmd")
    assert len(epmds) == 1, epmds
    assert _epmd_lists(host, name)
    assert host.run(f"kill -KILL {epmds[0].pid}").rc == 0

    started = time.monotonic()
    seconds = RECOVERY_SECONDS * target.wait_scale
    round_trip(target.amqp_url(admin_password), timeout=seconds)
    print(f"AMQP round trip {time.monotonic() - started:.1f} s after SIGKILL of epmd")
    while not _epmd_lists(host, name):
        assert time.monotonic() - started < seconds, f"epmd lists no {node} {seconds:.0f} s after the kill"
        time.sleep(0.2)
    print(f"{node} registered with epmd again {time.monotonic() - started:.1f} s after SIGKILL")

    assert host.run("rabbitmqctl --quiet status").rc == 0
    assert [process.pid for process in processes_named(host, "epmd")] != [epmds[0].pid]
    addresses = {address for address, port in listening_tcp_sockets(host) if port == EPMD_PORT}
    assert addresses, f"nothing listens on port {EPMD_PORT} after the kill"
    assert all(ipaddress.ip_address(address).is_loopback for address in addresses), addresses
    assert lasting_zombies(host) == []
