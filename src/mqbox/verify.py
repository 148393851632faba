"""Run the testinfra modules of tests/infra against a container or the hosts of an inventory.

This is what the Molecule scenarios' verify step does (molecule/run_infra_tests.yml):
a target file describes the box, MQBOX_TARGET_FILE names it, and pytest
connects with testinfra through `docker://` or `ssh://`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from xml.etree import ElementTree

from mqbox import docker_engine
from mqbox.errors import MqboxError
from mqbox.playbook import CANCELLED_RC, check_inventory, default_artifact_dir
from mqbox.project import find_project_dir

# Exit status when a test failed, the same as ansible-playbook's for failed hosts.
TESTS_FAILED_RC = 2

# File into which the image's first start writes a generated administrator password.
GENERATED_PASSWORD_FILE = "/var/lib/rabbitmq/admin-password"  # noqa: S105 - a path, not a password

SSH_OPTIONS = (
    "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
)  # fmt: skip


@dataclass(frozen=True)
class TestCounts:
    """pytest's counts for one verified box."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verify run."""

    status: str  # successful, failed or canceled
    rc: int  # 0, 2 when a test failed, 130 when cancelled
    hosts: dict[str, TestCounts] = field(default_factory=dict)
    artifact_dir: Path | None = None  # target files and a JUnit XML report per box

    @property
    def ok(self) -> bool:
        """True when every test passed or was skipped."""
        return self.rc == 0


@dataclass(frozen=True)
class _Box:
    name: str
    testinfra_host: str
    target: dict[str, Any]
    ssh_config: Path | None = None


def _published_port(container: Any, port: str) -> tuple[str, int]:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(port) or []
    if not bindings:
        raise MqboxError(
            f"container {container.name} does not publish port {port} on this machine: "
            f"start it with --publish 127.0.0.1::{port.partition('/')[0]}"
        )
    address = bindings[0].get("HostIp") or "127.0.0.1"
    if address in {"0.0.0.0", "::"}:  # noqa: S104 - a wildcard binding is reached through loopback
        address = "127.0.0.1"
    return address, int(bindings[0]["HostPort"])


def _container_box(container: Any, ssh_key: Path, spare_amqp_port: int | None) -> _Box:
    address, ssh_port = _published_port(container, "22/tcp")
    _address, amqp_port = _published_port(container, "5672/tcp")
    environment = dict(item.split("=", 1) for item in container.attrs.get("Config", {}).get("Env") or [] if "=" in item)
    if "RABBITMQ_DEFAULT_PASS" in environment and "RABBITMQ_DEFAULT_PASS_FILE" not in environment:
        raise MqboxError(
            f"container {container.name} takes its password from RABBITMQ_DEFAULT_PASS, which verify does not read: "
            "start it with RABBITMQ_DEFAULT_PASS_FILE or without a password"
        )
    tags = container.image.tags
    target = {
        "kind": "image",
        "address": address,
        "ssh_port": ssh_port,
        "amqp_port": amqp_port,
        "ssh_key": str(ssh_key),
        "admin_user": environment.get("RABBITMQ_DEFAULT_USER", "admin"),
        "admin_password_file": environment.get("RABBITMQ_DEFAULT_PASS_FILE", GENERATED_PASSWORD_FILE),
        "container": container.name,
        "image": tags[0] if tags else container.image.id,
        "spare_container_prefix": f"{container.name}-spare",
        "spare_amqp_port": spare_amqp_port,
    }
    return _Box(name=container.name, testinfra_host=f"docker://{container.name}", target=target)


def _ssh_key_pair(folder: Path) -> Path:
    key = folder / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mqbox-verify", "-f", str(key)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return key


@contextmanager
def _image_container(
    client: Any, image: str, name: str, ssh_port: int | None, amqp_port: int | None
) -> Iterator[tuple[Any, Path]]:
    """Start a container of the image with a fresh SSH key; remove both afterwards."""
    docker_engine.require_image(client, image)
    with tempfile.TemporaryDirectory(prefix="mqbox-verify-") as folder:
        key = _ssh_key_pair(Path(folder))
        container = client.containers.run(
            image,
            name=name,
            detach=True,
            ports={"22/tcp": ("127.0.0.1", ssh_port), "5672/tcp": ("127.0.0.1", amqp_port)},
            volumes={f"{key}.pub": {"bind": "/etc/ssh/authorized_keys/root", "mode": "ro"}},
        )
        try:
            container.reload()
            yield container, key
        finally:
            container.remove(force=True, v=True)


def _inventory_boxes(  # noqa: PLR0913, PLR0917 - the inventory target's settings, one by one
    project_dir: Path, inventory: str, limit: str | None, ssh_key: Path | None, amqp_port: int, folder: Path
) -> list[_Box]:
    command = [str(Path(sys.executable).parent / "ansible-inventory"), "-i", inventory, "--list"]
    if limit:
        command.append(f"--limit={limit}")
    listing = subprocess.run(command, cwd=project_dir, capture_output=True, text=True, timeout=120, check=False)
    if listing.returncode != 0:
        raise MqboxError(f"ansible-inventory could not read {inventory}: {' '.join(listing.stderr.split())[:300]}")
    data = json.loads(listing.stdout)

    def group_hosts(group: str) -> list[str]:
        entry = data.get(group) or {}
        hosts = list(entry.get("hosts") or [])
        for child in entry.get("children") or []:
            hosts += group_hosts(child)
        return hosts

    names = sorted(set(group_hosts("mqbox")))
    if not names:
        raise MqboxError(f"inventory {inventory} has no host in group mqbox (with the --limit given)")
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}

    boxes = []
    for name in names:
        variables = hostvars.get(name) or {}
        key = ssh_key or (
            Path(variables["ansible_ssh_private_key_file"]) if "ansible_ssh_private_key_file" in variables else None
        )
        if key is None:
            raise MqboxError(f"no SSH key for host {name}: pass --ssh-key with a key that root on the host accepts")
        address = str(variables.get("ansible_host", name))
        port = int(variables.get("ansible_port", 22))
        ssh_config = folder / f"ssh-config-{name}"
        ssh_config.write_text(
            f"Host {name}\n  HostName {address}\n  Port {port}\n  User root\n  IdentityFile {key}\n"
            "  IdentitiesOnly yes\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n",
            encoding="utf-8",
        )
        target = {
            "kind": "host",
            "address": address,
            "ssh_port": port,
            "amqp_port": amqp_port,
            "ssh_key": str(key),
            "admin_user": "admin",
            "container": variables.get("mqbox_verify_container"),
        }
        boxes.append(_Box(name=name, testinfra_host=f"ssh://{name}", target=target, ssh_config=ssh_config))
    return boxes


def _check_ssh(box: _Box) -> None:
    target = box.target
    command = [
        "ssh",
        "-i",
        target["ssh_key"],
        "-p",
        str(target["ssh_port"]),
        *SSH_OPTIONS,
        f"root@{target['address']}",
        "true",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        reason = " ".join(result.stderr.split()) or f"ssh exited with {result.returncode}"
        raise MqboxError(
            f"host {box.name} ({target['address']}:{target['ssh_port']}) is unreachable over SSH as root: {reason}; "
            "check that it runs and accepts the key given with --ssh-key"
        )


def _junit_counts(report: Path) -> TestCounts:
    if not report.exists():
        return TestCounts()
    root = ElementTree.parse(report).getroot()  # noqa: S314 - pytest wrote this file in this run
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tests = failed = errors = skipped = 0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failed += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
    return TestCounts(passed=tests - failed - errors - skipped, failed=failed, errors=errors, skipped=skipped)


def _run_pytest(project_dir: Path, box: _Box, run_dir: Path, output: TextIO) -> tuple[int, TestCounts]:
    target_file = run_dir / f"target-{box.name}.json"
    target_file.write_text(json.dumps(box.target, indent=2), encoding="utf-8")
    report = run_dir / f"junit-{box.name}.xml"
    command = [
        sys.executable, "-m", "pytest", "tests/infra", f"--hosts={box.testinfra_host}",
        "-p", "no:cacheprovider", "-v", f"--junitxml={report}",
    ]  # fmt: skip
    if box.ssh_config is not None:
        command.append(f"--ssh-config={box.ssh_config}")
    environment = {**os.environ, "MQBOX_TARGET_FILE": str(target_file)}

    process = subprocess.Popen(
        command, cwd=project_dir, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            output.write(line)
            output.flush()
        rc = process.wait()
    except KeyboardInterrupt:
        # pytest is in this process group and got the same SIGINT: let it finish its report.
        process.wait(timeout=60)
        return CANCELLED_RC, _junit_counts(report)
    return rc, _junit_counts(report)


def verify(  # noqa: PLR0913 - keyword options of the public API
    *,
    image: str | None = None,
    container: str | None = None,
    inventory: str | None = None,
    project_dir: Path | None = None,
    ssh_key: Path | None = None,
    admin_password_file: Path | None = None,
    limit: str | None = None,
    container_name: str | None = None,
    ssh_port: int | None = None,
    amqp_port: int | None = None,
    spare_amqp_port: int | None = None,
    artifact_dir: Path | None = None,
    output: TextIO = sys.stdout,
) -> VerifyResult:
    """Run tests/infra against one target: a new container of an image, a running container, or hosts.

    Args:
        image: Start a container from this image with a new SSH key, test it, remove it.
        container: Test this running container; it must publish ports 22 and 5672.
        inventory: Test every host of group `mqbox` in this inventory over SSH as root.
        project_dir: The mqbox checkout that contains tests/infra; default find_project_dir().
        ssh_key: Private key root accepts: default `.mqbox/id_ed25519` for --container
            (the key of `mqbox run`), required for hosts without ansible_ssh_private_key_file.
        admin_password_file: Local file with the administrator password; required for hosts.
        limit: Host pattern that narrows the inventory.
        container_name: Name of the container started for `image`; default mqbox-verify-<random>.
        ssh_port: Host port on 127.0.0.1 for SSH of that container; None lets Docker pick one.
        amqp_port: Host port for AMQP: of that container (None: Docker picks), or of the hosts (default 5672).
        spare_amqp_port: Port on 127.0.0.1 for AMQP of the extra containers that image tests start,
            named <container>-spare-<random>; None lets Docker pick.
        artifact_dir: Parent of the run's folder of target files and JUnit reports.
        output: Where pytest's report goes.

    Raises:
        MqboxError: No Docker engine, image, container, inventory, key or password file, or an unreachable host.
    """
    chosen = [value for value in (image, container, inventory) if value]
    if len(chosen) != 1:
        raise MqboxError("name exactly one target: an image, a container or an inventory")
    project_dir = find_project_dir(project_dir)
    # pytest and ansible-inventory run in the checkout, so relative paths must not reach them.
    ssh_key = ssh_key.resolve() if ssh_key else None
    if inventory:
        inventory = check_inventory(inventory)

    run_dir = (artifact_dir or default_artifact_dir(project_dir)).resolve() / (
        f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-verify-{uuid.uuid4().hex[:6]}"
    )

    with ExitStack() as stack:
        if inventory:
            if admin_password_file is None or not admin_password_file.is_file():
                raise MqboxError(
                    "verifying hosts needs --admin-password-file, a local file with the RabbitMQ administrator password"
                )
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mqbox-verify-")))
            boxes = _inventory_boxes(project_dir, inventory, limit, ssh_key, amqp_port or 5672, folder)
            for box in boxes:
                box.target["admin_password_local_file"] = str(admin_password_file.resolve())
                _check_ssh(box)
        else:
            client = docker_engine.connect()
            if image:
                name = container_name or f"mqbox-verify-{uuid.uuid4().hex[:8]}"
                started, key = stack.enter_context(_image_container(client, image, name, ssh_port, amqp_port))
                boxes = [_container_box(started, key, spare_amqp_port)]
            else:
                assert container is not None
                running = docker_engine.require_container(client, container)
                key = ssh_key or project_dir / ".mqbox" / "id_ed25519"
                if not key.is_file():
                    raise MqboxError(
                        f"SSH key {key} not found: pass --ssh-key with a key the container accepts for root"
                    )
                boxes = [_container_box(running, key, spare_amqp_port)]

        run_dir.mkdir(parents=True)
        hosts: dict[str, TestCounts] = {}
        rc = 0
        for box in boxes:
            box_rc, hosts[box.name] = _run_pytest(project_dir, box, run_dir, output)
            if box_rc == CANCELLED_RC:
                return VerifyResult(status="canceled", rc=CANCELLED_RC, hosts=hosts, artifact_dir=run_dir)
            if box_rc != 0:
                rc = TESTS_FAILED_RC

    return VerifyResult(status="successful" if rc == 0 else "failed", rc=rc, hosts=hosts, artifact_dir=run_dir)
