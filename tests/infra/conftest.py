"""Fixtures shared by the testinfra modules of every scenario."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.infra.procfs import listening_tcp_ports
from tests.infra.target import Target, load_target


@pytest.fixture(scope="session")
def target() -> Target:
    """The box under test."""
    return load_target()


@pytest.fixture(scope="module")
def admin_password(host: Any, target: Target) -> str:
    """The RabbitMQ administrator password, read from the box or from the test machine."""
    if target.admin_password_local_file:
        password = Path(target.admin_password_local_file).read_text(encoding="utf-8").strip()
    else:
        assert target.admin_password_file, "the target file names no administrator password file"
        password = host.file(target.admin_password_file).content_string.strip()
    assert password, "the administrator password is empty"
    return password


@pytest.fixture(scope="module")
def box_ready(host: Any, target: Target) -> None:
    """Wait until monit reports every service OK and their ports listen.

    monit reports RabbitMQ OK as soon as its process runs, while the node
    needs a few more seconds before it accepts AMQP connections.
    """
    seconds = 90 * target.wait_scale
    deadline = time.monotonic() + seconds
    summary = ""
    while time.monotonic() < deadline:
        summary = host.run("monit summary").stdout
        services_ok = all(_service_ok(summary, name) for name in ("sshd", "rabbitmq"))
        if services_ok and {22, 5672} <= listening_tcp_ports(host):
            return
        time.sleep(1)
    pytest.fail(f"sshd and rabbitmq were not OK with ports 22 and 5672 listening within {seconds:.0f} s:\n{summary}")


def _service_ok(summary: str, name: str) -> bool:
    for line in summary.splitlines():
        words = line.split()
        if words and words[0] == name:
            return "OK" in words[1:]
    return False
