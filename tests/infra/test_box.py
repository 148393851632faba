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
from tests.infra.procfs import listening_tcp_ports, listening_tcp_sockets, processes, processes_named
from tests.infra.target import Target

pytestmark = pytest.mark.usefixtures("box_ready")

# The management plugin's default port (rabbitmq_management_port).
MANAGEMENT_PORT = 15672


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
    zombies = [process for process in processes(host) if process.state == "Z"]
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
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        login = subprocess.run(target.ssh_command("true"), capture_output=True, timeout=30, check=False)
        if login.returncode == 0:
            return
        time.sleep(5)
    pytest.fail(f"sshd did not accept the test key within {seconds:.0f} s after the audit")
