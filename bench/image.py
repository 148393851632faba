"""Measure the image build and start-up, and write docs/benchmarks.md.

Figures: cold build time (base image present, nothing else cached), image
size and layer count next to the base image's, and the time from `docker run`
to the first AMQP round trip (median of --runs containers). Run from the
repository root: `python bench/image.py`, or `make bench`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from mqbox.amqp import wait_for_round_trip

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class ImageFacts:
    """Size and layer count of one image."""

    size_bytes: int
    layers: int


def docker(*arguments: str) -> str:
    """Run the Docker CLI and return its standard output."""
    return subprocess.run(["docker", *arguments], check=True, capture_output=True, text=True, timeout=600).stdout


def image_facts(image: str) -> ImageFacts:
    """Return the size and the layer count of an image."""
    data = json.loads(docker("image", "inspect", image))[0]
    return ImageFacts(size_bytes=int(data["Size"]), layers=len(data["RootFS"]["Layers"]))


def cold_build(tag: str, base_image: str) -> float:
    """Build the image from the base image and return the seconds it took."""
    subprocess.run(["docker", "image", "rm", "--force", f"mqbox:{tag}"], capture_output=True, check=False)
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "playbooks/image.yml",
        "-e",
        f"mqbox_image_tag={tag}",
        "-e",
        f"mqbox_base_image={base_image}",
        "-e",
        "mqbox_build_container=mqbox-bench-build",
    ]
    started = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=1800)
    return time.monotonic() - started


def first_round_trip(image: str) -> float:
    """Start a container and return the seconds until the first AMQP round trip."""
    name = f"mqbox-bench-{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    started = time.monotonic()
    docker(
        "run",
        "--detach",
        "--name",
        name,
        "--publish",
        "127.0.0.1::5672",
        "--env",
        f"RABBITMQ_DEFAULT_PASS={password}",
        image,
    )
    try:
        port = docker("port", name, "5672/tcp").splitlines()[0].rsplit(":", 1)[1]
        wait_for_round_trip(f"amqp://admin:{password}@127.0.0.1:{port}/%2F", timeout=120)
        return time.monotonic() - started
    finally:
        subprocess.run(["docker", "rm", "--force", "--volumes", name], capture_output=True, check=False)


def machine() -> str:
    """Describe the machine the figures come from."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
    engine = docker("version", "--format", "{{.Server.Version}}").strip()
    return f"{os.cpu_count()} cores ({cpu}), {memory_kib // 1024**2} GiB, {platform.platform()}, Docker engine {engine}"


def main(argv: list[str] | None = None) -> int:
    """Run the measurements and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="debian:bookworm", help="base image (default: debian:bookworm)")
    parser.add_argument("--runs", type=int, default=3, help="containers started for the start-up median (default: 3)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report file")
    arguments = parser.parse_args(argv)

    tag = "bench"
    build_seconds = cold_build(tag, arguments.base_image)
    image = image_facts(f"mqbox:{tag}")
    base = image_facts(arguments.base_image)
    start_seconds = [first_round_trip(f"mqbox:{tag}") for _ in range(arguments.runs)]

    rows = [
        ("cold build (base image present)", f"{build_seconds:.0f} s", ""),
        ("image size", f"{image.size_bytes / 1e6:.1f} MB", f"{image.size_bytes / base.size_bytes:.2f} x base"),
        ("added by mqbox", f"{(image.size_bytes - base.size_bytes) / 1e6:.1f} MB", ""),
        ("layers", str(image.layers), f"base + {image.layers - base.layers}"),
        (
            f"docker run to first AMQP round trip (median of {arguments.runs})",
            f"{statistics.median(start_seconds):.1f} s",
            "runs: " + ", ".join(f"{value:.1f} s" for value in start_seconds),
        ),
    ]
    table = ["| Figure | Value | Note |", "| --- | --- | --- |"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    report = "\n".join(
        [
            "# Benchmarks",
            "",
            f"Measured by `bench/image.py` on {time.strftime('%Y-%m-%d')}, base image `{arguments.base_image}`.",
            "",
            f"Machine: {machine()}.",
            "",
            *table,
            "",
            "The base image is the reference for size: its own size and layers are in the ratios.",
            "",
        ]
    )
    arguments.output.write_text(report, encoding="utf-8")
    print(report)
    docker("image", "rm", f"mqbox:{tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
