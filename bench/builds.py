"""Build timings: cold build, no-op rebuild and rebuild after a changed monit file.

mqbox builds with `mqbox image build` (playbooks/image.yml, and no playbook
at all when the cached image matches) from a copy of the project, so that the
changed file never touches the checkout. The reference builds with
`docker build` from a copy of bench/reference.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import PREFIX, ROOT, docker, timed

MQBOX_IMAGE = f"{PREFIX}-mqbox:latest"
REFERENCE_IMAGE = f"{PREFIX}-reference:latest"
CACHE_REPOSITORY = f"{PREFIX}-cache"
# The monit check of sshd: bench/reference/etc/monit/sshd.conf in the
# reference, the sshd role's template in mqbox.
MQBOX_MONIT_FILE = Path("roles/sshd/templates/monit-sshd.j2")
REFERENCE_MONIT_FILE = Path("etc/monit/sshd.conf")
BUILD_TIMEOUT = 1800


@dataclass(frozen=True)
class ImageFacts:
    """Size and layer count of one image."""

    size_bytes: int
    layers: int


def image_facts(image: str) -> ImageFacts:
    """Return the size and the layer count of an image."""
    data = json.loads(docker("image", "inspect", image))[0]
    return ImageFacts(size_bytes=int(data["Size"]), layers=len(data["RootFS"]["Layers"]))


def copy_project(destination: Path) -> Path:
    """Copy what the image build reads (no virtualenv, no git data) and return the copy."""
    ignored = shutil.ignore_patterns(".git", ".venv*", "dist", "__pycache__", ".mqbox", "*.egg-info")
    shutil.copytree(ROOT, destination, ignore=ignored, symlinks=True)
    return destination


def append_comment(path: Path) -> None:
    """Append a unique comment line, so that every run changes the file's content."""
    with path.open("a", encoding="utf-8") as file:
        file.write(f"# benchmark change {uuid.uuid4().hex}\n")


class MqboxBuilder:
    """Builds mqbox with its build cache in a repository of its own."""

    def __init__(self, project: Path, base_image: str) -> None:
        self.project = project
        self.base_image = base_image

    def build(self) -> None:
        command = [
            str(Path(sys.executable).parent / "mqbox"), "image", "build",
            f"--project-dir={self.project}", f"--artifact-dir={self.project / 'artifacts'}",
            f"--base={self.base_image}", f"--name={MQBOX_IMAGE.split(':', maxsplit=1)[0]}", "--tag=latest",
            f"--build-container={PREFIX}-build", "-e", f"mqbox_image_cache_repository={CACHE_REPOSITORY}",
        ]  # fmt: skip
        result = subprocess.run(
            command, cwd=self.project, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"mqbox image build failed (exit {result.returncode}):\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
            )

    def clear_cache(self) -> None:
        images = docker("image", "ls", "--quiet", CACHE_REPOSITORY).split()
        docker("image", "rm", "--force", MQBOX_IMAGE, *images, check=False)

    def cold(self) -> float:
        self.clear_cache()
        return timed(self.build)

    def no_op(self) -> float:
        return timed(self.build)

    def monit_change(self) -> float:
        append_comment(self.project / MQBOX_MONIT_FILE)
        return timed(self.build)


class ReferenceBuilder:
    """Builds the reference Dockerfile with the Docker engine's own layer cache."""

    def __init__(self, context: Path, base_image: str) -> None:
        self.context = context
        self.base_image = base_image

    def build(self, *options: str) -> None:
        docker(
            "build", *options, "--build-arg", f"BASE_IMAGE={self.base_image}",
            "--tag", REFERENCE_IMAGE, str(self.context), timeout=BUILD_TIMEOUT,
        )  # fmt: skip

    def clear_cache(self) -> None:
        docker("image", "rm", "--force", REFERENCE_IMAGE, check=False)

    def cold(self) -> float:
        self.clear_cache()
        return timed(lambda: self.build("--no-cache"))

    def no_op(self) -> float:
        return timed(self.build)

    def monit_change(self) -> float:
        append_comment(self.context / REFERENCE_MONIT_FILE)
        return timed(self.build)
