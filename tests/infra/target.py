"""The box under test, described by the JSON file that a scenario writes before verify."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

# Seconds a killed service may take to serve again.
RECOVERY_SECONDS = 15


@dataclass(frozen=True)
class Target:
    """Endpoints and credentials of one box, as seen from the machine that runs the tests."""

    kind: str  # "image" (a container of the built image) or "host"
    address: str
    ssh_port: int
    amqp_port: int
    ssh_key: Path
    admin_user: str
    admin_password_file: str | None = None  # path on the box, readable by root
    admin_password_local_file: str | None = None  # path on the machine that runs the tests
    # Accounts and virtual hosts from rabbitmq_users and rabbitmq_vhosts (hosts
    # only). The first account's password is in app_password_local_file, and
    # its permissions are on the first virtual host.
    app_users: list[str] = field(default_factory=list)
    app_vhosts: list[str] = field(default_factory=list)
    app_password_local_file: str | None = None
    # AMQP over TLS: the port on address, and the CA file (on the machine
    # that runs the tests) that signed the box's certificate.
    amqps_port: int | None = None
    tls_ca_file: str | None = None
    container: str | None = None  # the container that is the box, or that runs the host
    image: str | None = None
    # Multiplies every wait bound of the tests. A box that runs slower than a
    # container on the test machine, such as a VM under QEMU TCG, sets it above 1.
    wait_scale: float = 1.0
    # Extra containers that image tests start from the image: their name prefix
    # and the port on 127.0.0.1 for their AMQP (None lets Docker pick one).
    spare_container_prefix: str = "mqbox-test"
    spare_amqp_port: int | None = None

    @classmethod
    def from_file(cls, path: Path) -> Target:
        """Read a target file written by a Molecule scenario."""
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        data["ssh_key"] = Path(data["ssh_key"])
        return cls(**data)

    def amqp_url(self, password: str, port: int | None = None) -> str:
        """Return the AMQP URL of the default virtual host for the admin user."""
        return (
            f"amqp://{quote(self.admin_user, safe='')}:{quote(password, safe='')}"
            f"@{self.address}:{port or self.amqp_port}/%2F"
        )

    def ssh_command(self, *command: str, user: str = "root") -> list[str]:
        """Return an OpenSSH client command line that runs a command on the box with the test key."""
        return [
            "ssh",
            "-i",
            str(self.ssh_key),
            "-p",
            str(self.ssh_port),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{self.address}",
            *command,
        ]

    def wait_for_ssh(self, seconds: float, interval: float = 1.0) -> bool:
        """Retry a key login until one succeeds; return False when none did within seconds."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            login = subprocess.run(self.ssh_command("true"), capture_output=True, timeout=30, check=False)
            if login.returncode == 0:
                return True
            time.sleep(interval)
        return False


def load_target() -> Target:
    """Load the target named by MQBOX_TARGET_FILE."""
    path = os.environ.get("MQBOX_TARGET_FILE")
    if not path:
        raise RuntimeError("MQBOX_TARGET_FILE is not set: run these tests through a Molecule scenario's verify step")
    return Target.from_file(Path(path))


def docker(*arguments: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run the Docker CLI and return its result. Raises CalledProcessError when it fails."""
    return subprocess.run(["docker", *arguments], check=True, capture_output=True, text=True, timeout=timeout)
