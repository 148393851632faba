"""Exit statuses of the mqbox command for its own errors, failed and unreachable hosts, and Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.conftest import MQBOX, ROOT, CliRun, remove_container, run_mqbox


def _assert_one_line_error(run: CliRun, expected: str) -> None:
    assert run.rc == 1, run.stderr
    assert run.stderr.startswith("mqbox: error: "), run.stderr
    assert expected in run.stderr
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr


@pytest.fixture(scope="module")
def closed_port_inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An inventory whose only host has no SSH server: 127.0.0.1, port 23999."""
    inventory = tmp_path_factory.mktemp("unreachable") / "hosts.yml"
    inventory.write_text(
        "mqbox:\n  hosts:\n    mqbox-cli-unreachable:\n      ansible_host: 127.0.0.1\n      ansible_port: 23999\n"
        "      ansible_user: root\n",
        encoding="utf-8",
    )
    return inventory


def test_no_docker_engine() -> None:
    run = run_mqbox("image", "build", environment={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, timeout=120)
    _assert_one_line_error(run, "no Docker engine responds")


def test_inventory_not_found(tmp_path: Path) -> None:
    run = run_mqbox("host", "provision", "-i", str(tmp_path / "absent.yml"), timeout=120)
    _assert_one_line_error(run, "absent.yml not found")


def test_image_not_found() -> None:
    run = run_mqbox("verify", "--image", "mqbox-cli-absent:none", timeout=120)
    _assert_one_line_error(run, "image mqbox-cli-absent:none not found")


def test_container_not_found() -> None:
    run = run_mqbox("verify", "--container", "mqbox-cli-absent", timeout=120)
    _assert_one_line_error(run, "container mqbox-cli-absent not found")


def test_invalid_extra_vars() -> None:
    run = run_mqbox("image", "build", "-e", "mqbox_image_tag", timeout=120)
    _assert_one_line_error(run, "invalid -e value")


def test_verify_unreachable_host(closed_port_inventory: Path, ssh_key: Path, tmp_path: Path) -> None:
    password_file = tmp_path / "admin-password"
    password_file.write_text("unused", encoding="utf-8")
    run = run_mqbox(
        "verify", "-i", str(closed_port_inventory), f"--ssh-key={ssh_key}", f"--admin-password-file={password_file}",
        f"--artifact-dir={tmp_path}", timeout=120,
    )  # fmt: skip
    _assert_one_line_error(run, "mqbox-cli-unreachable (127.0.0.1:23999) is unreachable over SSH")


def test_provision_unreachable_exit_4(closed_port_inventory: Path, artifact_dir: Path) -> None:
    run = run_mqbox("host", "provision", "-i", str(closed_port_inventory), f"--artifact-dir={artifact_dir}")
    assert run.rc == 4, run.stdout + run.stderr
    assert "unreachable: mqbox-cli-unreachable: Gathering Facts: " in run.stdout
    assert run.stderr.startswith("mqbox: unreachable: mqbox-cli-unreachable: check the address")
    assert "Traceback" not in run.stderr


def test_failed_host_exit_2(artifact_dir: Path) -> None:
    run = run_mqbox(
        "image", "build", "--build-container=mqbox-cli-build-failed", "-e", "mqbox_image_env=notadict",
        f"--artifact-dir={artifact_dir}",
    )  # fmt: skip
    assert run.rc == 2, run.stdout + run.stderr
    assert "failed: localhost: Check the image build variables: " in run.stdout
    assert "localhost  ok=0 changed=0 failed=1" in run.stdout
    assert "notadict" not in run.stdout.split("recap:")[0].split("failed: localhost")[0]


def test_ctrl_c_cancels_run(artifact_dir: Path) -> None:
    """SIGINT during an image build stops ansible-playbook and exits 130 with status canceled."""
    build_container = "mqbox-cli-build-cancel"
    command = [
        str(MQBOX), "image", "build", "--json", f"--artifact-dir={artifact_dir}",
        "--name=mqbox-cli-image", "--tag=cancel", f"--build-container={build_container}",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 600
        for line in process.stdout:
            event = json.loads(line)
            if (event.get("event_data") or {}).get("play") == "Provision the image build container":
                break
            assert time.monotonic() < deadline, "the build did not reach the roles within 600 s"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        rest, errors = process.communicate(timeout=120)
        print(f"exited {time.monotonic() - started:.1f} s after SIGINT")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        remove_container(build_container)

    assert process.returncode == 130, errors
    assert "Traceback" not in errors
    assert "mqbox: cancelled: the playbook was stopped" in errors
    result = json.loads(rest.splitlines()[-1])["mqbox_result"]
    assert result["status"] == "canceled"
    assert result["rc"] == 130
    assert (Path(result["artifact_dir"]) / "status").read_text(encoding="utf-8") == "canceled"
