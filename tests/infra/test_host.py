"""Checks that only apply to a bare host: systemd units, no build guards, restarts."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pika.exceptions
import pytest

from mqbox.amqp import consume_all, publish_persistent, round_trip, wait_for_round_trip
from tests.infra.target import Target, docker

pytestmark = pytest.mark.usefixtures("box_ready")

# Persistent messages in a durable queue that must survive a host restart.
PERSISTENT_MESSAGES = 200


@pytest.fixture(autouse=True)
def _host_only(target: Target) -> None:
    if target.kind != "host":
        pytest.skip("bare host checks")


def test_declared_vhosts_and_users(host: Any, target: Target) -> None:
    """rabbitmq_vhosts and rabbitmq_users exist, and the account works on its own vhost only."""
    if not target.app_users or not target.app_password_local_file:
        pytest.skip("the scenario declares no rabbitmq_users")
    vhosts = host.run("rabbitmqctl --quiet list_vhosts").stdout.split()
    users = host.run("rabbitmqctl --quiet list_users").stdout.split()
    for vhost in target.app_vhosts:
        assert vhost in vhosts
    for user in target.app_users:
        assert user in users

    password = Path(target.app_password_local_file).read_text(encoding="utf-8").strip()
    credentials = f"{quote(target.app_users[0], safe='')}:{quote(password, safe='')}"
    vhost = quote(target.app_vhosts[0], safe="")
    assert round_trip(f"amqp://{credentials}@{target.address}:{target.amqp_port}/{vhost}").body
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        round_trip(f"amqp://{credentials}@{target.address}:{target.amqp_port}/%2F")


@pytest.mark.parametrize("unit", ["monit", "ssh", "rabbitmq-server"])
def test_unit_enabled(host: Any, unit: str) -> None:
    assert host.run(f"systemctl is-enabled {unit}").stdout.strip() == "enabled"


def test_monit_runs_under_systemd(host: Any) -> None:
    assert host.run("systemctl is-active monit").stdout.strip() == "active"


def test_no_policy_rc_d(host: Any) -> None:
    assert not host.file("/usr/sbin/policy-rc.d").exists


def test_no_initctl_diversion(host: Any) -> None:
    assert host.run("dpkg-divert --listpackage /sbin/initctl").stdout.strip() == ""


def test_monit_checks_through_systemctl(host: Any) -> None:
    checks = host.file("/etc/monit/conf.d/rabbitmq").content_string
    assert "systemctl start rabbitmq-server" in checks
    assert "systemctl start ssh" in host.file("/etc/monit/conf.d/sshd").content_string


def _wait_for_box(target: Target, password: str, seconds: float) -> None:
    seconds *= target.wait_scale
    deadline = time.monotonic() + seconds
    if not target.wait_for_ssh(seconds):
        pytest.fail(f"SSH did not come back within {seconds:.0f} s")
    wait_for_round_trip(target.amqp_url(password), timeout=max(1.0, deadline - time.monotonic()))


def test_services_back_after_monit_restart(host: Any, target: Target, admin_password: str) -> None:
    assert host.run("systemctl restart monit").rc == 0
    started = time.monotonic()
    _wait_for_box(target, admin_password, 60)
    assert host.run("systemctl is-active monit").stdout.strip() == "active"
    print(f"serving {time.monotonic() - started:.1f} s after systemctl restart monit")


def _restart_host(target: Target) -> None:
    """Restart the host: the container that runs it, else a reboot over SSH."""
    if target.container:
        docker("restart", target.container, timeout=120 * target.wait_scale)
        return
    # The connection drops while the command runs, so its exit status is not checked.
    subprocess.run(target.ssh_command("systemctl", "reboot"), capture_output=True, timeout=60, check=False)
    time.sleep(5)


def test_services_back_after_host_restart(host: Any, target: Target, admin_password: str) -> None:
    url = target.amqp_url(admin_password)
    queue = f"mqbox-test-{uuid.uuid4().hex[:8]}"
    published = publish_persistent(url, queue, count=PERSISTENT_MESSAGES)

    started = time.monotonic()
    _restart_host(target)
    _wait_for_box(target, admin_password, 300)
    print(f"SSH and AMQP serving {time.monotonic() - started:.1f} s after the host restarted")
    assert host.run("systemctl is-active monit rabbitmq-server ssh").stdout.split() == ["active"] * 3

    consumed = consume_all(url, queue)
    print(f"{len(published)} persistent messages published before the restart, {len(consumed)} consumed after")
    assert consumed == published
