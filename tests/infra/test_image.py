"""Checks that only apply to a container of the built image."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mqbox.amqp import wait_for_round_trip
from tests.infra.procfs import processes, processes_named
from tests.infra.target import Target, docker

pytestmark = pytest.mark.usefixtures("box_ready")

# Recovery bound after SIGKILL: one monit check cycle (2 s) plus a RabbitMQ boot.
RECOVERY_SECONDS = 15


@pytest.fixture(autouse=True)
def _image_only(target: Target) -> None:
    if target.kind != "image":
        pytest.skip("container image checks")


def test_pid1_is_tini(host: Any) -> None:
    init = [process for process in processes(host) if process.pid == 1]
    assert init, "no process 1"
    assert init[0].name == "tini"
    assert "monit -I" in " ".join(process.command for process in processes_named(host, "monit"))


def test_policy_rc_d_blocks_services(host: Any) -> None:
    policy = host.file("/usr/sbin/policy-rc.d")
    assert policy.is_file
    assert policy.mode == 0o755
    assert host.run("/usr/sbin/policy-rc.d ssh start").rc == 101


def test_image_config(target: Target) -> None:
    assert target.image
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", target.image).stdout)
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "/usr/local/sbin/mqbox-entrypoint"]
    assert config["Cmd"] == ["/usr/bin/monit", "-I"]
    assert set(config["ExposedPorts"]) == {"22/tcp", "5672/tcp"}
    for label in ("version", "revision", "created"):
        assert config["Labels"].get(f"org.opencontainers.image.{label}"), f"label {label} is missing"


def test_image_is_one_layer(target: Target) -> None:
    """The build exports the cleaned build container, so no earlier layer can hold a deleted file."""
    assert target.image
    image_layers = json.loads(docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", target.image).stdout)
    assert len(image_layers) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/etc/ssh/ssh_host_ed25519_key",
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_ecdsa_key",
        "/var/lib/rabbitmq/.erlang.cookie",
        "/var/lib/rabbitmq/admin-password",
        "/etc/rabbitmq/conf.d/90-mqbox-admin.conf",
        "/var/lib/monit/id",
        "/run/monit.pid",
        "/var/lib/mqbox/bootstrap-packages",
    ],
)
def test_image_has_no_instance_file(target: Target, path: str) -> None:
    assert target.image
    result = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/sh", target.image, "-c", f"test ! -e {path}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{path} is in the image"


def test_image_machine_id_empty(target: Target) -> None:
    assert target.image
    content = docker("run", "--rm", "--entrypoint", "/bin/cat", target.image, "/etc/machine-id").stdout
    assert content == ""


def test_admin_password_file_root_only(host: Any, target: Target) -> None:
    assert target.admin_password_file
    password_file = host.file(target.admin_password_file)
    assert password_file.user == "root"
    assert password_file.mode == 0o600


def _wait_for_ssh(target: Target, deadline: float) -> bool:
    while time.monotonic() < deadline:
        result = subprocess.run(target.ssh_command("true"), capture_output=True, timeout=30, check=False)
        if result.returncode == 0:
            return True
        time.sleep(0.2)
    return False


def test_sshd_restarted_after_kill(host: Any, target: Target) -> None:
    old = processes_named(host, "sshd")
    assert old, "sshd does not run"
    listener = min(process.pid for process in old)
    assert host.run(f"kill -KILL {listener}").rc == 0

    started = time.monotonic()
    assert _wait_for_ssh(target, started + RECOVERY_SECONDS), f"sshd not back within {RECOVERY_SECONDS} s"
    print(f"sshd serving again {time.monotonic() - started:.1f} s after SIGKILL")
    assert all(process.state != "Z" for process in processes(host))


def test_rabbitmq_restarted_after_kill(host: Any, target: Target, admin_password: str) -> None:
    beams = processes_named(host, "beam.smp")
    assert len(beams) == 1
    assert host.run(f"kill -KILL {beams[0].pid}").rc == 0

    started = time.monotonic()
    wait_for_round_trip(target.amqp_url(admin_password), timeout=RECOVERY_SECONDS)
    print(f"RabbitMQ serving again {time.monotonic() - started:.1f} s after SIGKILL")
    assert [process.pid for process in processes_named(host, "beam.smp")] != [beams[0].pid]
    assert all(process.state != "Z" for process in processes(host))


@pytest.fixture
def fresh_container(target: Target) -> Iterator[tuple[str, int, str]]:
    """Start another container from the image with a known password; yield name, AMQP port, password."""
    assert target.image
    name = f"{target.spare_container_prefix}-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    docker(
        "run", "--detach", "--name", name, "--publish", f"127.0.0.1:{target.spare_amqp_port or ''}:5672",
        "--env", f"RABBITMQ_DEFAULT_PASS={password}", target.image,
    )  # fmt: skip
    try:
        port = int(docker("port", name, "5672/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])
        yield name, port, password
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False)


def test_docker_stop_is_clean(target: Target, fresh_container: tuple[str, int, str]) -> None:
    name, port, password = fresh_container
    started = time.monotonic()
    result = wait_for_round_trip(target.amqp_url(password, port=port), timeout=90)
    print(f"first AMQP round trip {time.monotonic() - started:.1f} s after docker run ({result.seconds:.3f} s itself)")

    stop_started = time.monotonic()
    docker("stop", name)
    print(f"docker stop took {time.monotonic() - stop_started:.1f} s")

    # Exit code 0 comes from the entrypoint; 137 would mean Docker killed it after its timeout.
    assert docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    log = subprocess.run(
        ["docker", "cp", f"{name}:/var/log/rabbitmq/rabbit@localhost.log", "-"],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode(errors="replace")
    assert "SIGTERM received - shutting down" in log
    # The persistent message store stops last: its data is on disk.
    assert "msg_store_persistent' is stopped" in log


def test_env_password_used(target: Target, fresh_container: tuple[str, int, str]) -> None:
    _name, port, password = fresh_container
    assert wait_for_round_trip(target.amqp_url(password, port=port), timeout=90).body
