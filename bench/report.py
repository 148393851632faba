"""The benchmark table, with the machine's details, as Markdown."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import Figure, docker


def machine() -> str:
    """Describe the machine the figures come from."""
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kib = int(Path("/proc/meminfo").read_text(encoding="utf-8").split()[1])
    engine = docker("version", "--format", "{{.Server.Version}}").strip()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kib // 1024**2} GiB, {platform.platform()}, "
        f"Docker engine {engine}, load average at the end {load}"
    )


def _value(samples: Sequence[float], bounded: int, unit: str) -> str:
    median = Figure.median(samples)
    if median is None:
        return "not measured"
    mark = ">= " if bounded * 2 > len(samples) else ""
    runs = ", ".join(f"{sample:.1f}" for sample in samples)
    return f"{mark}{median:.1f} {unit} ({runs})"


def _ratio(figure: Figure) -> str:
    ratio = figure.ratio()
    if ratio is None:
        return "n/a"
    mark = ""
    if figure.reference_bounded * 2 > len(figure.reference):
        mark = "<= "
    return f"{mark}{ratio:.2f}"


def table(figures: Sequence[Figure]) -> list[str]:
    """Return the Markdown table: median (samples) for each side, ratio and target."""
    lines = [
        "| Figure | mqbox | reference | ratio mqbox / reference | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for figure in figures:
        lines.append(
            f"| {figure.name} | {_value(figure.mqbox, figure.mqbox_bounded, figure.unit)} "
            f"| {_value(figure.reference, figure.reference_bounded, figure.unit)} | {_ratio(figure)} | {figure.note} |"
        )
    return lines


def document(figures: Sequence[Figure], base_image: str, runs: int, messages: int, wait_bound: float) -> str:
    """Return the whole docs/benchmarks.md page."""
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "mqbox against the classic one-RUN-per-step Dockerfile (`bench/reference`, ported to the same",
            "Debian base), measured side by side in one run of `make bench` (`python -m bench`).",
            "",
            f"- Date: {time.strftime('%Y-%m-%d')}; base image `{base_image}`, present before the cold builds.",
            f"- Machine: {machine()}.",
            f"- Each value is the median of {runs} runs; the runs follow in brackets. Ratios divide the medians.",
            f"- Messages: {messages} persistent messages of 1 KiB to a durable queue, each publish waiting for",
            "  its publisher confirm, then consumed with basic.get and acknowledged, over one connection.",
            f"- Every wait is bounded at {wait_bound:.0f} s. A value marked `>=` hit that bound in most runs:",
            "  the service did not come back.",
            "",
            *table(figures),
            "",
            "Sizes are the engine's image sizes in MB (10^6 bytes). The mqbox image is one layer: the build",
            "exports the cleaned build container, see [build-cache.md](build-cache.md).",
            "",
            "## Reading the figures",
            "",
            "- Builds: the reference runs 11 `RUN` steps and 3 `ADD`s.",
            "  mqbox applies about 95 Ansible tasks, each a module run through `docker exec`, commits six",
            "  cache layers and exports the image. A changed monit file rebuilds only the reference's `ADD`",
            "  steps from that file on, but mqbox's `sshd` and `rabbitmq` layers.",
            "- The no-op rebuild is `mqbox image build`, which tags the cached image without starting",
            "  Ansible; `ansible-playbook playbooks/image.yml` took about 7 s for the same result.",
            "- The reference's monit checks every 120 s (Debian's default monitrc). Its sshd did not come",
            "  back: monit runs as PID 1 and reaps no child, so the killed sshd likely stays a zombie that",
            "  the init script takes for a running sshd.",
            "- The `site.yml` re-run has no reference. How its time splits over the tasks was not measured;",
            "  the RabbitMQ account tasks each run `rabbitmqctl`, which starts an Erlang VM.",
            "",
        ]
    )
