"""Fixtures of the CLI tests: they run the installed `mqbox` command against a real Docker engine.

Every container, image and port they use is named mqbox-cli-* and lies in
23000-23999 on 127.0.0.1. MQBOX_CLI_TEST_IMAGE names an existing image to test
instead of building one; the image build test is skipped then.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MQBOX = Path(sys.executable).parent / "mqbox"

# Bound of one image build or host provision on 2 cores, with room to spare.
RUN_TIMEOUT = 1800


@dataclass(frozen=True)
class CliRun:
    """Result of one `mqbox` call: exit status, output, and the events of --json."""

    rc: int
    stdout: str
    stderr: str

    def events(self) -> list[dict[str, Any]]:
        """Return the JSON lines of stdout, events and the final mqbox_result line."""
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def result(self) -> dict[str, Any]:
        """Return the mqbox_result line of a --json run."""
        results = [event["mqbox_result"] for event in self.events() if "mqbox_result" in event]
        assert len(results) == 1, f"expected one mqbox_result line:\n{self.stdout[-2000:]}\n{self.stderr[-2000:]}"
        result: dict[str, Any] = results[0]
        return result


def run_mqbox(*arguments: str, environment: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT) -> CliRun:
    """Run the mqbox command with these arguments, in the repository, and collect its output."""
    completed = subprocess.run(
        [str(MQBOX), *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(environment or {})},
    )
    return CliRun(rc=completed.returncode, stdout=completed.stdout, stderr=completed.stderr)


def docker(*arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the Docker CLI; raises CalledProcessError when it fails."""
    return subprocess.run(["docker", *arguments], check=True, capture_output=True, text=True, timeout=timeout)


def remove_container(name: str) -> None:
    """Remove a container and its anonymous volumes, if it exists."""
    subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False, timeout=120)


@pytest.fixture(scope="session", autouse=True)
def _docker_engine() -> None:
    if subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60).returncode != 0:
        pytest.skip("no Docker engine responds")


@pytest.fixture(scope="session")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Artifact folder of every run of the session."""
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh SSH key pair; the public key is beside it with .pub."""
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mqbox-cli-test", "-f", str(key)], check=True)
    return key


# Repository prefix of the build cache of the session's image; the tag follows.
CACHE_REPOSITORY = "mqbox-cli-cache"


@dataclass(frozen=True)
class BuiltImage:
    """The image the tests run, and the build run when this session built it."""

    reference: str
    build: CliRun | None


@pytest.fixture(scope="session")
def image(artifact_dir: Path) -> Iterator[BuiltImage]:
    """Build the image with `mqbox image build` under a unique tag; remove it at the end."""
    existing = os.environ.get("MQBOX_CLI_TEST_IMAGE")
    if existing:
        yield BuiltImage(reference=existing, build=None)
        return

    tag = uuid.uuid4().hex[:8]
    build = run_mqbox(*image_build_arguments(tag, artifact_dir))
    try:
        yield BuiltImage(reference=f"mqbox-cli-image:{tag}", build=build)
    finally:
        remove_container(f"mqbox-cli-build-{tag}")
        cache = docker("image", "ls", "--quiet", f"{CACHE_REPOSITORY}-{tag}").stdout.split()
        subprocess.run(
            ["docker", "image", "rm", "--force", f"mqbox-cli-image:{tag}", *cache], capture_output=True, check=False
        )


def image_build_arguments(tag: str, artifact_dir: Path) -> list[str]:
    """Return the `mqbox image build` arguments of the session's image, with a build cache of its own."""
    return [
        "image", "build", "--json", f"--artifact-dir={artifact_dir}",
        "--name=mqbox-cli-image", f"--tag={tag}", f"--build-container=mqbox-cli-build-{tag}",
        "-e", f"mqbox_image_cache_repository={CACHE_REPOSITORY}-{tag}",
    ]  # fmt: skip
