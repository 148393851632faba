"""Checks that only apply to a container of the built image."""

from __future__ import annotations

import json
import ssl
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from mqbox.amqp import consume_all, publish_persistent, wait_for_round_trip
from tests.infra.procfs import lasting_zombies, listening_tcp_ports, processes, processes_named
from tests.infra.target import RECOVERY_SECONDS, Target, docker
from tests.infra.tls import write_test_pki

pytestmark = pytest.mark.usefixtures("box_ready")

# The ports inside a container: plain AMQP and AMQP over TLS.
AMQP_PORT = 5672
AMQPS_PORT = 5671
# rabbitmq_start_timeout in the image.
START_TIMEOUT_SECONDS = 90


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
    assert set(config["ExposedPorts"]) == {"22/tcp", "5671/tcp", "5672/tcp"}
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


def test_sshd_restarted_after_kill(host: Any, target: Target) -> None:
    old = processes_named(host, "sshd")
    assert old, "sshd does not run"
    listener = min(process.pid for process in old)
    assert host.run(f"kill -KILL {listener}").rc == 0

    started = time.monotonic()
    assert target.wait_for_ssh(RECOVERY_SECONDS, interval=0.2), f"sshd not back within {RECOVERY_SECONDS} s"
    print(f"sshd serving again {time.monotonic() - started:.1f} s after SIGKILL")
    assert lasting_zombies(host) == []


def test_rabbitmq_restarted_after_kill(host: Any, target: Target, admin_password: str) -> None:
    beams = processes_named(host, "beam.smp")
    assert len(beams) == 1
    assert host.run(f"kill -KILL {beams[0].pid}").rc == 0

    started = time.monotonic()
    wait_for_round_trip(target.amqp_url(admin_password), timeout=RECOVERY_SECONDS)
    print(f"RabbitMQ serving again {time.monotonic() - started:.1f} s after SIGKILL")
    assert [process.pid for process in processes_named(host, "beam.smp")] != [beams[0].pid]
    assert lasting_zombies(host) == []


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


# Files of one instance's identity, as paths inside a layer archive.
_IDENTITY_FILES = (
    "etc/ssh/ssh_host_ed25519_key",
    "etc/ssh/ssh_host_rsa_key",
    "etc/ssh/ssh_host_ecdsa_key",
    "var/lib/rabbitmq/.erlang.cookie",
    "var/lib/rabbitmq/admin-password",
    "etc/rabbitmq/conf.d/90-mqbox-admin.conf",
    "var/lib/monit/id",
)


def _layer_findings(layer: tarfile.TarFile) -> list[str]:
    """Return the instance identity that one layer archive of the image contains."""
    findings = []
    for member in layer.getmembers():
        name = member.name.removeprefix("./")
        if name in _IDENTITY_FILES or name.startswith("etc/ssh/ssh_host_"):
            findings.append(name)
        elif name in {"etc/machine-id", "var/lib/dbus/machine-id"} and member.size > 0:
            findings.append(f"{name} ({member.size} bytes)")
        elif name == "etc/shadow":
            content = layer.extractfile(member)
            assert content is not None
            for line in content.read().decode().splitlines():
                user, hashed = line.split(":")[:2]
                if hashed not in {"*", "!", "!*"} and not hashed.startswith("!"):
                    findings.append(f"etc/shadow: a password hash for {user}")
    return findings


@pytest.mark.parametrize("plain", [True, False], ids=["plain-on", "plain-off"])
def test_tls_listener_from_mounted_files(target: Target, tmp_path: Path, plain: bool) -> None:
    """A container given RABBITMQ_TLS_CERT_FILE and RABBITMQ_TLS_KEY_FILE serves AMQP over TLS on 5671.

    With RABBITMQ_AMQP_PLAIN=false nothing listens on 5672, and monit tests 5671 instead.
    """
    assert target.image
    write_test_pki(tmp_path)
    name = f"{target.spare_container_prefix}-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    docker(
        "run", "--detach", "--name", name, "--volume", f"{tmp_path}:/run/mqbox-tls:ro",
        "--env", "RABBITMQ_TLS_CERT_FILE=/run/mqbox-tls/cert.pem",
        "--env", "RABBITMQ_TLS_KEY_FILE=/run/mqbox-tls/key.pem",
        "--env", f"RABBITMQ_AMQP_PLAIN={str(plain).lower()}",
        "--env", f"RABBITMQ_DEFAULT_PASS={password}", "--publish", "127.0.0.1::5671", target.image,
    )  # fmt: skip
    try:
        port = int(docker("port", name, "5671/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        url = target.amqp_url(password, port=port)
        result = wait_for_round_trip(url, timeout=90 * target.wait_scale, tls=context)
        print(f"AMQP over TLS round trip {result.seconds:.3f} s on a container with mounted certificate files")

        box = testinfra.get_host(f"docker://{name}")
        assert (AMQP_PORT in listening_tcp_ports(box)) is plain
        checked_port = AMQP_PORT if plain else AMQPS_PORT
        assert f" port {checked_port} type tcp " in box.file("/etc/monit/conf.d/rabbitmq").content_string
        if not plain:
            # monit tests the port once the node has run for its start timeout.
            _wait_for_monit_port_test(box, checked_port, (START_TIMEOUT_SECONDS + 30) * target.wait_scale)
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False)


def _wait_for_monit_port_test(box: Any, port: int, seconds: float) -> None:
    """Wait until `monit status rabbitmq` shows a passed test of the port."""
    deadline = time.monotonic() + seconds
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines = [line for line in box.run("monit status rabbitmq").stdout.splitlines() if "port response" in line]
        if lines and f":{port} " in lines[0] and "FAILED" not in lines[0]:
            return
        time.sleep(1)
    pytest.fail(f"monit shows no passed test of port {port} within {seconds:.0f} s: {lines}")


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        (["RABBITMQ_AMQP_PLAIN=false"], "RABBITMQ_AMQP_PLAIN=false leaves no AMQP listener"),
        (["RABBITMQ_AMQP_PLAIN=no"], "RABBITMQ_AMQP_PLAIN must be true or false"),
        (["RABBITMQ_TLS_CERT_FILE=/run/missing.pem"], "RABBITMQ_TLS_CERT_FILE and RABBITMQ_TLS_KEY_FILE must both"),
        (["RABBITMQ_DEFAULT_PASS_FILE=/run/missing"], "RABBITMQ_DEFAULT_PASS_FILE=/run/missing is not a readable file"),
    ],
    ids=["plain-off-without-tls", "plain-not-boolean", "certificate-missing", "password-file-missing"],
)
def test_bad_start_environment_stops_container(target: Target, environment: list[str], message: str) -> None:
    """A wrong variable at container start stops the container with status 1 and a message naming it."""
    assert target.image
    name = f"{target.spare_container_prefix}-{uuid.uuid4().hex[:8]}"
    options = [argument for variable in environment for argument in ("--env", variable)]
    docker("run", "--detach", "--name", name, *options, target.image)
    try:
        status = docker("wait", name, timeout=60).stdout.strip()
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True, timeout=60, check=True)
        print(f"exit status {status}: {logs.stderr.strip().splitlines()[-1]}")
        assert status == "1"
        assert message in logs.stderr
        # The variables are checked before the data folder gets a cookie or a password.
        for path in ("/var/lib/rabbitmq/.erlang.cookie", "/var/lib/rabbitmq/admin-password"):
            copy = subprocess.run(["docker", "cp", f"{name}:{path}", "-"], capture_output=True, timeout=60, check=False)
            assert copy.returncode != 0, f"{path} was written before the error"
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False)


def test_image_layers_hold_no_identity(target: Target, tmp_path: Path) -> None:
    """`docker save` of the image: no layer contains a host key, cookie, machine id or password hash."""
    assert target.image
    archive = tmp_path / "image.tar"
    with archive.open("wb") as output:
        subprocess.run(["docker", "save", target.image], stdout=output, check=True, timeout=600)
    findings = []
    with tarfile.open(archive) as image:
        manifest_file = image.extractfile("manifest.json")
        assert manifest_file is not None
        layers = json.load(manifest_file)[0]["Layers"]
        for layer_name in layers:
            layer_file = image.extractfile(layer_name)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file) as layer:
                findings += [f"{layer_name}: {finding}" for finding in _layer_findings(layer)]
    print(f"scanned {len(layers)} layers of {target.image}")
    assert findings == []


def _identity_digest(name: str, seconds: float) -> dict[str, str]:
    """Wait for a container's host keys and Erlang cookie, and return SHA-256 digests of them."""
    paths = ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key", "/var/lib/rabbitmq/.erlang.cookie"]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = subprocess.run(
            ["docker", "exec", name, "sha256sum", *paths], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode == 0:
            return {line.split()[1]: line.split()[0] for line in result.stdout.splitlines()}
        time.sleep(1)
    pytest.fail(f"{name}: host keys and Erlang cookie did not appear within {seconds:.0f} s")


def test_two_containers_distinct_identity(target: Target) -> None:
    """Each container of one image makes its own SSH host keys and Erlang cookie at first start."""
    assert target.image
    names = [f"{target.spare_container_prefix}-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        for name in names:
            docker("run", "--detach", "--name", name, target.image)
        first, second = (_identity_digest(name, 60 * target.wait_scale) for name in names)
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", *names], capture_output=True, check=False)
    assert set(first) == set(second)
    for path, digest in first.items():
        assert digest != second[path], f"{path} is the same in two containers"


# Persistent messages the data tests publish, each with a publisher confirm.
_DATA_MESSAGES = 500


class _DataContainer:
    """A container of the image whose RabbitMQ data is on a named volume, started and removed by a test."""

    def __init__(self, target: Target, volume: str, password: str) -> None:
        assert target.image
        self.target = target
        self.volume = volume
        self.password = password
        self.name = ""

    def start(self, hostname: str) -> None:
        self.name = f"{self.target.spare_container_prefix}-{uuid.uuid4().hex[:8]}"
        docker(
            "run", "--detach", "--name", self.name, "--hostname", hostname,
            "--volume", f"{self.volume}:/var/lib/rabbitmq", "--env", f"RABBITMQ_DEFAULT_PASS={self.password}",
            "--publish", f"127.0.0.1:{self.target.spare_amqp_port or ''}:5672", str(self.target.image),
        )  # fmt: skip

    def url(self) -> str:
        """Return the AMQP URL; the published port may change when the container starts again."""
        port = int(docker("port", self.name, "5672/tcp").stdout.splitlines()[0].rsplit(":", 1)[1])
        return self.target.amqp_url(self.password, port=port)

    def wait_serving(self) -> str:
        url = self.url()
        wait_for_round_trip(url, timeout=90 * self.target.wait_scale)
        return url

    def rabbitmqctl(self, *arguments: str) -> str:
        return docker("exec", self.name, "rabbitmqctl", "--quiet", *arguments, timeout=120).stdout

    def remove(self) -> None:
        if self.name:
            subprocess.run(["docker", "rm", "--force", self.name], capture_output=True, check=False)


@pytest.fixture
def data_container(target: Target) -> Iterator[_DataContainer]:
    """Yield a container factory on a fresh volume; remove the container and the volume at the end."""
    volume = f"{target.spare_container_prefix}-data-{uuid.uuid4().hex[:8]}"
    container = _DataContainer(target, volume, uuid.uuid4().hex)
    try:
        yield container
    finally:
        container.remove()
        subprocess.run(["docker", "volume", "rm", "--force", volume], capture_output=True, check=False)


def test_messages_survive_stop_start(data_container: _DataContainer) -> None:
    """Confirmed persistent messages in a durable queue survive `docker stop` and `docker start`."""
    data_container.start("mqbox-data")
    published = publish_persistent(data_container.wait_serving(), "mqbox-test-durable", _DATA_MESSAGES)

    docker("stop", data_container.name, timeout=120)
    docker("start", data_container.name)
    consumed = consume_all(data_container.wait_serving(), "mqbox-test-durable")
    print(f"{len(published)} persistent messages published before docker stop, {len(consumed)} consumed after start")
    assert consumed == published


def test_data_survives_new_hostname(data_container: _DataContainer) -> None:
    """A new container with another host name on the same volume keeps users, vhosts and messages."""
    data_container.start("mqbox-first")
    published = publish_persistent(data_container.wait_serving(), "mqbox-test-durable", _DATA_MESSAGES)
    data_container.rabbitmqctl("add_vhost", "mqbox-test-vhost")
    data_container.rabbitmqctl("add_user", "mqbox-test-user", uuid.uuid4().hex)

    docker("stop", data_container.name, timeout=120)
    data_container.remove()
    data_container.start("mqbox-second")
    consumed = consume_all(data_container.wait_serving(), "mqbox-test-durable")
    print(f"{len(published)} messages published on host mqbox-first, {len(consumed)} consumed on mqbox-second")
    assert consumed == published
    assert "mqbox-test-vhost" in data_container.rabbitmqctl("list_vhosts").split()
    assert "mqbox-test-user" in data_container.rabbitmqctl("list_users").split()
