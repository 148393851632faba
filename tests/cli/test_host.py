"""`mqbox host provision` and `mqbox verify -i` against a systemd-booted container reached over SSH.

The host is a container of mqbox-test-host:bookworm (made by the Molecule
scenario `host`), started with the flags of that scenario: systemd as PID 1
without --privileged.
"""

from __future__ import annotations

import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli.conftest import docker, remove_container, run_mqbox

HOST_IMAGE = "mqbox-test-host:bookworm"
HOST = "mqbox-cli-host"
SSH_PORT = 23222
AMQP_PORT = 23272


@dataclass(frozen=True)
class HostUnderTest:
    """The running host and the files that reach it."""

    inventory: Path
    admin_password_file: Path


def _wait_for_ssh(key: Path) -> None:
    command = [
        "ssh", "-i", str(key), "-p", str(SSH_PORT), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
        "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "root@127.0.0.1", "true",
    ]  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if subprocess.run(command, capture_output=True, check=False, timeout=30).returncode == 0:
            return
        time.sleep(2)
    pytest.fail(f"SSH on 127.0.0.1:{SSH_PORT} did not accept the test key within 90 s")


@pytest.fixture(scope="module")
def host_under_test(ssh_key: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostUnderTest]:
    """Start the systemd host, authorize the test key, write its inventory."""
    if subprocess.run(["docker", "image", "inspect", HOST_IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {HOST_IMAGE} is missing: `molecule create -s host` makes it")

    remove_container(HOST)
    docker(
        "run", "--detach", "--name", HOST, "--hostname", HOST,
        "--tmpfs", "/run", "--tmpfs", "/run/lock", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--env", "container=docker", "--cap-add", "DAC_READ_SEARCH", "--cap-add", "SYS_PTRACE",
        "--stop-signal", "SIGRTMIN+3",
        "--publish", f"127.0.0.1:{SSH_PORT}:22", "--publish", f"127.0.0.1:{AMQP_PORT}:5672", HOST_IMAGE,
    )  # fmt: skip
    try:
        public_key = Path(f"{ssh_key}.pub").read_text(encoding="utf-8").strip()
        docker(
            "exec", HOST, "sh", "-c",
            'install -d -m 0700 /root/.ssh && printf "%s\\n" "$0" >/root/.ssh/authorized_keys', public_key,
        )  # fmt: skip
        _wait_for_ssh(ssh_key)

        folder = tmp_path_factory.mktemp("host")
        password_file = folder / "admin-password"
        password_file.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        password_file.chmod(0o600)
        inventory = folder / "hosts.yml"
        inventory.write_text(
            f"""---
mqbox:
  hosts:
    {HOST}:
      ansible_host: 127.0.0.1
      ansible_port: {SSH_PORT}
      ansible_user: root
      ansible_ssh_private_key_file: {ssh_key}
      ansible_ssh_extra_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
      mqbox_verify_container: {HOST}
  vars:
    rabbitmq_admin_password: "{{{{ lookup('ansible.builtin.file', '{password_file}') }}}}"
    sshd_authorized_keys:
      - {public_key}
""",
            encoding="utf-8",
        )
        yield HostUnderTest(inventory=inventory, admin_password_file=password_file)
    finally:
        remove_container(HOST)


def test_provision_converges(host_under_test: HostUnderTest, artifact_dir: Path) -> None:
    provisioned = run_mqbox(
        "host", "provision", "-i", str(host_under_test.inventory), "--json", f"--artifact-dir={artifact_dir}"
    )
    assert provisioned.rc == 0, provisioned.stderr[-5000:]
    result = provisioned.result()
    assert result["status"] == "successful"
    assert result["hosts"][HOST]["failed"] == 0
    assert result["hosts"][HOST]["changed"] > 0

    password = host_under_test.admin_password_file.read_text(encoding="utf-8")
    assert password not in provisioned.stdout
    assert password not in provisioned.stderr
    stored = [path for path in Path(result["artifact_dir"]).rglob("*") if path.is_file()]
    assert stored
    for path in stored:
        assert password not in path.read_text(encoding="utf-8", errors="replace"), f"the password is in {path}"


def test_check_mode_reports_no_change(host_under_test: HostUnderTest, artifact_dir: Path) -> None:
    checked = run_mqbox(
        "host", "provision", "-i", str(host_under_test.inventory), "--check", "--diff", f"--artifact-dir={artifact_dir}"
    )
    assert checked.rc == 0, checked.stdout[-5000:]
    assert f"{HOST}  ok=" in checked.stdout
    assert " changed=0 failed=0 unreachable=0" in checked.stdout


def test_verify_inventory_passes(host_under_test: HostUnderTest, artifact_dir: Path) -> None:
    verified = run_mqbox(
        "verify", "-i", str(host_under_test.inventory), f"--admin-password-file={host_under_test.admin_password_file}",
        f"--amqp-port={AMQP_PORT}", f"--artifact-dir={artifact_dir}",
    )  # fmt: skip
    assert verified.rc == 0, verified.stdout[-5000:] + verified.stderr[-2000:]
    assert f"{HOST}: passed=" in verified.stdout
    assert "failed=0 errors=0" in verified.stdout
