"""Idempotent re-run time of site.yml on a converged systemd host container."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PREFIX, ROOT, docker, remove_containers, timed

HOST = f"{PREFIX}-host"
# systemd as init, sshd and Python, as on a Debian server install.
HOST_PACKAGES = "systemd systemd-sysv dbus openssh-server python3 python3-apt"
RUN_TIMEOUT = 1800


def host_image(base_image: str) -> str:
    """Return the host image made from the base image, making it when missing."""
    image = f"{PREFIX}-host:{base_image.rsplit(':', 1)[-1]}"
    if docker("image", "ls", "--quiet", image).strip():
        return image
    builder = f"{PREFIX}-host-build"
    remove_containers(builder)
    try:
        docker(
            "run", "--name", builder, base_image, "sh", "-c",
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
            + HOST_PACKAGES,
            timeout=RUN_TIMEOUT,
        )  # fmt: skip
        docker("commit", "--change", 'CMD ["/sbin/init"]', builder, image)
    finally:
        remove_containers(builder)
    return image


class Host:
    """A systemd-booted container reached over SSH on 127.0.0.1, with an inventory for site.yml."""

    def __init__(self, image: str, folder: Path) -> None:
        self.folder = folder
        key = folder / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        remove_containers(HOST)
        docker(
            "run", "--detach", "--name", HOST, "--hostname", HOST,
            "--tmpfs", "/run", "--tmpfs", "/run/lock", "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "--env", "container=docker", "--cap-add", "DAC_READ_SEARCH", "--cap-add", "SYS_PTRACE",
            "--stop-signal", "SIGRTMIN+3", "--publish", "127.0.0.1::22", image,
        )  # fmt: skip
        port = docker("port", HOST, "22/tcp").splitlines()[0].rsplit(":", 1)[1]
        public_key = Path(f"{key}.pub").read_text(encoding="utf-8").strip()
        docker(
            "exec", HOST, "sh", "-c",
            'install -d -m 0700 /root/.ssh && printf "%s\\n" "$0" >/root/.ssh/authorized_keys', public_key,
        )  # fmt: skip
        password = folder / "admin-password"
        password.write_text(secrets.token_urlsafe(24), encoding="utf-8")
        password.chmod(0o600)
        self.inventory = folder / "hosts.yml"
        self.inventory.write_text(
            f"""---
mqbox:
  hosts:
    {HOST}:
      ansible_host: 127.0.0.1
      ansible_port: {port}
      ansible_user: root
      ansible_ssh_private_key_file: {key}
      ansible_ssh_extra_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  vars:
    rabbitmq_admin_password: "{{{{ lookup('ansible.builtin.file', '{password}') }}}}"
    sshd_authorized_keys:
      - {public_key}
""",
            encoding="utf-8",
        )
        self._wait_for_ssh(key, int(port))

    @staticmethod
    def _wait_for_ssh(key: Path, port: int) -> None:
        command = [
            "ssh", "-i", str(key), "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1", "true",
        ]  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if subprocess.run(command, capture_output=True, check=False, timeout=30).returncode == 0:
                return
            time.sleep(2)
        raise TimeoutError(f"{HOST}: SSH on 127.0.0.1:{port} did not accept the key within 120 s")

    def converge(self) -> float:
        """Run site.yml on the host and return the seconds it took."""

        def run() -> None:
            result = subprocess.run(
                [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory), "site.yml"],
                cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
            )  # fmt: skip
            if result.returncode != 0:
                raise RuntimeError(f"site.yml failed on {HOST} (exit {result.returncode}):\n{result.stdout[-4000:]}")

        return timed(run)

    def remove(self) -> None:
        remove_containers(HOST)
