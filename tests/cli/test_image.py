"""`mqbox image build` and `mqbox verify` against containers of the built image."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import BuiltImage, docker, image_build_arguments, remove_container, run_mqbox


def test_image_build_succeeds(image: BuiltImage) -> None:
    if image.build is None:
        pytest.skip("MQBOX_CLI_TEST_IMAGE names an existing image")
    build = image.build
    assert build.rc == 0, build.stderr[-3000:]

    result = build.result()
    assert result["status"] == "successful"
    assert result["rc"] == 0
    assert set(result["hosts"]) == {"localhost", f"mqbox-cli-build-{image.reference.split(':')[1]}"}
    assert all(stats["failed"] == 0 for stats in result["hosts"].values())
    assert sum(stats["changed"] for stats in result["hosts"].values()) > 0

    artifacts = Path(result["artifact_dir"])
    assert (artifacts / "status").read_text(encoding="utf-8") == "successful"
    assert (artifacts / "rc").read_text(encoding="utf-8") == "0"
    assert list((artifacts / "job_events").glob("*.json"))
    assert "recap:" in build.stderr
    assert f"artifacts: {artifacts}" in build.stderr


def test_image_build_events_one_per_line(image: BuiltImage) -> None:
    if image.build is None:
        pytest.skip("MQBOX_CLI_TEST_IMAGE names an existing image")
    events = image.build.events()
    kinds = [event.get("event") for event in events[:-1]]
    assert kinds[0] == "playbook_on_start"
    assert "playbook_on_task_start" in kinds
    assert kinds[-1] == "playbook_on_stats"
    assert "mqbox_result" in events[-1]


def test_image_rebuild_reuses_cache(image: BuiltImage, artifact_dir: Path) -> None:
    """A second build with nothing changed tags the cached image without running a playbook.

    The command computes the cache keys itself, so this also checks that its
    keys match those of the playbooks, which cached the image.
    """
    if image.build is None:
        pytest.skip("MQBOX_CLI_TEST_IMAGE names an existing image")
    built_id = docker("image", "inspect", "--format", "{{.Id}}", image.reference).stdout.strip()
    tag = image.reference.split(":")[1]
    rebuild = run_mqbox(*image_build_arguments(tag, artifact_dir))
    assert rebuild.rc == 0, rebuild.stderr[-3000:]

    result = rebuild.result()
    assert result["reused_image"] == image.reference
    assert result["hosts"] == {}
    assert docker("image", "inspect", "--format", "{{.Id}}", image.reference).stdout.strip() == built_id
    assert f"reused the cached image as {image.reference}" in rebuild.stderr


def test_built_image_labels(image: BuiltImage) -> None:
    labels = json.loads(docker("image", "inspect", "--format", "{{json .Config.Labels}}", image.reference).stdout)
    assert labels["org.opencontainers.image.title"] == "mqbox"


def test_verify_image_passes(image: BuiltImage, artifact_dir: Path) -> None:
    name = "mqbox-cli-verify-image"
    try:
        verified = run_mqbox(
            "verify", f"--image={image.reference}", f"--container-name={name}", f"--artifact-dir={artifact_dir}",
            "--ssh-port=23022", "--amqp-port=23672", "--spare-amqp-port=23673",
        )  # fmt: skip
    finally:
        remove_container(name)
    assert verified.rc == 0, verified.stdout[-5000:] + verified.stderr[-2000:]
    assert f"{name}: passed=" in verified.stdout
    assert "failed=0 errors=0" in verified.stdout
    assert subprocess.run(["docker", "inspect", name], capture_output=True, check=False).returncode != 0


@pytest.fixture
def box(image: BuiltImage, ssh_key: Path) -> Iterator[str]:
    """Start container mqbox-cli-box from the image with the test key, as a user would."""
    name = "mqbox-cli-box"
    remove_container(name)
    docker(
        "run", "--detach", "--name", name, "--publish", "127.0.0.1:23122:22", "--publish", "127.0.0.1:23172:5672",
        "--volume", f"{ssh_key}.pub:/etc/ssh/authorized_keys/root:ro", image.reference,
    )  # fmt: skip
    try:
        yield name
    finally:
        remove_container(name)


def test_verify_container_passes(box: str, ssh_key: Path, artifact_dir: Path) -> None:
    verified = run_mqbox(
        "verify", f"--container={box}", f"--ssh-key={ssh_key}", f"--artifact-dir={artifact_dir}",
        "--spare-amqp-port=23173", "--json",
    )  # fmt: skip
    assert verified.rc == 0, verified.stderr[-5000:]
    result = verified.result()
    assert result["status"] == "successful"
    counts = result["hosts"][box]
    assert counts["passed"] > 10
    assert counts["failed"] == 0
    assert counts["errors"] == 0
    assert (Path(result["artifact_dir"]) / f"junit-{box}.xml").is_file()


def test_run_starts_box(image: BuiltImage, artifact_dir: Path, tmp_path: Path) -> None:
    """`mqbox run --skip-build` starts the image as `make run` does, on ports and names of its own."""
    name, tag = image.reference.split(":")
    container = "mqbox-cli-run"
    volume = "mqbox-cli-run-data"
    state = tmp_path / "state"
    try:
        started = run_mqbox(
            "run", "--skip-build", f"--name={name}", f"--tag={tag}", f"--artifact-dir={artifact_dir}",
            "-e", f"mqbox_run_container={container}", "-e", f"mqbox_run_volume={volume}",
            "-e", "mqbox_run_amqp_port=23372", "-e", "mqbox_run_ssh_port=23322", "-e", f"mqbox_run_state_dir={state}",
        )  # fmt: skip
    finally:
        remove_container(container)
        subprocess.run(["docker", "volume", "rm", volume], capture_output=True, check=False)
    assert started.rc == 0, started.stdout[-4000:] + started.stderr[-2000:]
    assert "AMQP round trip succeeded" in started.stdout
    assert "AMQP: amqp://admin:PASSWORD@127.0.0.1:23372/%2F" in started.stdout
    password = (state / "admin-password").read_text(encoding="utf-8").strip()
    assert password not in started.stdout
    assert password not in started.stderr
    assert (state / "amqp-url").stat().st_mode & 0o777 == 0o600
