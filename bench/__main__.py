"""Measure mqbox against the reference Dockerfile and write docs/benchmarks.md.

Run from the repository root with the project's virtualenv: `make bench`, or
`python -m bench --help`. It needs a Docker engine and, for the host figure,
ssh-keygen. At the end it removes every container and image it made, except
the host image, which the next run reuses.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import builds, host, report, runtime
from bench.common import PREFIX, ROOT, Figure, docker, remove_containers

MIN_RUNS = 3
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def _progress(message: str) -> None:
    """Write a progress line to stderr; the report goes to stdout at the end."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _note(figure: Figure, target: str, met: bool | None) -> None:
    figure.note = target if met is None else f"{target}: {'met' if met else 'not met'}"


def ensure_base_image(base_image: str) -> None:
    """Get the base image the way the image build does: local copy, pull, or debootstrap."""
    result = subprocess.run(
        [ANSIBLE_PLAYBOOK, "playbooks/base_image.yml", "-e", f"mqbox_base_image={base_image}"],
        cwd=ROOT, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"failed to get the base image {base_image}:\n{result.stdout[-4000:]}")


def measure_builds(work: Path, base_image: str, runs: int) -> tuple[list[Figure], dict[str, builds.ImageFacts]]:
    """Return the build figures and the size and layers of both images."""
    mqbox = builds.MqboxBuilder(builds.copy_project(work / "project"), base_image)
    reference = builds.ReferenceBuilder(
        Path(shutil.copytree(ROOT / "bench" / "reference", work / "reference")), base_image
    )
    cold = Figure("cold build", "s")
    no_op = Figure("no-op rebuild", "s")
    change = Figure("rebuild after a changed monit file (sshd check)", "s")
    steps = [
        (cold, mqbox.cold, reference.cold),
        (no_op, mqbox.no_op, reference.no_op),
        (change, mqbox.monit_change, reference.monit_change),
    ]
    for figure, mqbox_step, reference_step in steps:
        for run in range(1, runs + 1):
            figure.mqbox.append(mqbox_step())
            figure.reference.append(reference_step())
            latest = f"mqbox {figure.mqbox[-1]:.1f} s, reference {figure.reference[-1]:.1f} s"
            _progress(f"{figure.name}, run {run}: {latest}")
    facts = {"mqbox": builds.image_facts(builds.MQBOX_IMAGE), "reference": builds.image_facts(builds.REFERENCE_IMAGE)}
    return [cold, no_op, change], facts


def measure_runtime(runs: int, messages: int) -> list[Figure]:
    """Return the start-up, message rate and recovery figures of both images."""
    password = secrets.token_urlsafe(18)
    boxes = {
        "mqbox": runtime.BoxImage(
            "mqbox", builds.MQBOX_IMAGE, (f"RABBITMQ_DEFAULT_PASS={password}",), "admin", password
        ),
        # The reference keeps RabbitMQ's guest account, open to the network there.
        "reference": runtime.BoxImage("reference", builds.REFERENCE_IMAGE, (), "guest", "guest"),
    }
    first = Figure("docker run to first AMQP round trip", "s")
    publish = Figure("publish rate, persistent, confirmed", "msg/s")
    consume = Figure("consume rate", "msg/s")
    rabbitmq = Figure("RabbitMQ serving again after SIGKILL of beam.smp", "s")
    sshd = Figure("sshd answering again after SIGKILL", "s")
    started: list[tuple[str, runtime.RunningBox]] = []
    try:
        for _ in range(runs):
            for side, box in boxes.items():
                running, seconds = runtime.start(box)
                started.append((side, running))
                getattr(first, side).append(seconds)
                publish_rate, consume_rate = runtime.message_rates(running, messages)
                getattr(publish, side).append(publish_rate)
                getattr(consume, side).append(consume_rate)
                recovery = runtime.rabbitmq_recovery(running)
                getattr(rabbitmq, side).append(runtime.WAIT_SECONDS if recovery is None else recovery)
                if recovery is None:
                    setattr(rabbitmq, f"{side}_bounded", getattr(rabbitmq, f"{side}_bounded") + 1)
                _progress(f"{side}: first AMQP round trip {seconds:.1f} s, RabbitMQ back {rabbitmq_text(recovery)}")
        # sshd kills wait in parallel: the reference may never recover.
        kills = [(side, running, runtime.sshd_kill(running)) for side, running in started]
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(kills)) as pool:
            results = list(pool.map(lambda kill: runtime.sshd_recovery(kill[1], kill[2]), kills))
        for (side, _running, _killed), recovery in zip(kills, results, strict=True):
            getattr(sshd, side).append(runtime.WAIT_SECONDS if recovery is None else recovery)
            if recovery is None:
                setattr(sshd, f"{side}_bounded", getattr(sshd, f"{side}_bounded") + 1)
    finally:
        remove_containers(*(running.name for _side, running in started))
    return [first, publish, consume, rabbitmq, sshd]


def rabbitmq_text(recovery: float | None) -> str:
    return f"after {recovery:.1f} s" if recovery is not None else f"not within {runtime.WAIT_SECONDS:.0f} s"


def measure_host(work: Path, base_image: str, runs: int) -> Figure:
    """Return the idempotent re-run time of site.yml on a converged host (mqbox only)."""
    figure = Figure("site.yml re-run on a converged host", "s")
    target = host.Host(host.host_image(base_image), work)
    try:
        _progress(f"first converge of the host: {target.converge():.1f} s")
        for run in range(1, runs + 1):
            figure.mqbox.append(target.converge())
            _progress(f"site.yml re-run {run}: {figure.mqbox[-1]:.1f} s")
    finally:
        target.remove()
    return figure


def size_figures(facts: dict[str, builds.ImageFacts]) -> list[Figure]:
    size = Figure("image size", "MB", [facts["mqbox"].size_bytes / 1e6], [facts["reference"].size_bytes / 1e6])
    layers = Figure("layers", "", [float(facts["mqbox"].layers)], [float(facts["reference"].layers)])
    return [size, layers]


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the table and write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-image", default="debian:bookworm", help="base image of both builds (default: debian:bookworm)"
    )
    parser.add_argument(
        "--runs", type=int, default=MIN_RUNS, help=f"runs per figure, at least {MIN_RUNS} (default: {MIN_RUNS})"
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages for the rates (default: 2000)")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report file (default: docs/benchmarks.md)"
    )
    arguments = parser.parse_args(argv)
    if arguments.runs < MIN_RUNS:
        parser.error(f"--runs is {arguments.runs}: each figure is a median of at least {MIN_RUNS} runs")
    if not 1 <= arguments.messages <= 100_000:
        parser.error(f"--messages is {arguments.messages}: give a number from 1 to 100000")

    docker("version")
    _progress(f"getting the base image {arguments.base_image}")
    ensure_base_image(arguments.base_image)
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as folder:
        work = Path(folder)
        try:
            build_figures, facts = measure_builds(work, arguments.base_image, arguments.runs)
            runtime_figures = measure_runtime(arguments.runs, arguments.messages)
            host_figure = measure_host(work, arguments.base_image, arguments.runs)
        finally:
            cache = docker("image", "ls", "--quiet", builds.CACHE_REPOSITORY).split()
            docker("image", "rm", "--force", builds.MQBOX_IMAGE, builds.REFERENCE_IMAGE, *cache, check=False)

    cold, no_op, change = build_figures
    first, publish, consume, rabbitmq, sshd = runtime_figures
    size, layers = size_figures(facts)
    _note(cold, "ratio <= 1.2", (cold.ratio() or 99) <= 1.2)
    _note(no_op, "mqbox <= 3 s", (Figure.median(no_op.mqbox) or 99) <= 3)
    _note(size, "ratio <= 0.6", (size.ratio() or 99) <= 0.6)
    _note(first, "ratio <= 1.1", (first.ratio() or 99) <= 1.1)
    _note(publish, "ratio >= 1.0", (publish.ratio() or 0) >= 1.0)
    _note(consume, "ratio >= 1.0", (consume.ratio() or 0) >= 1.0)
    _note(rabbitmq, "mqbox <= 15 s", rabbitmq.mqbox_bounded == 0 and (Figure.median(rabbitmq.mqbox) or 99) <= 15)
    _note(sshd, "mqbox <= 15 s", sshd.mqbox_bounded == 0 and (Figure.median(sshd.mqbox) or 99) <= 15)
    _note(host_figure, "mqbox <= 15 s", (Figure.median(host_figure.mqbox) or 99) <= 15)
    figures = [cold, no_op, change, size, layers, first, publish, consume, rabbitmq, sshd, host_figure]
    text = report.document(figures, arguments.base_image, arguments.runs, arguments.messages, runtime.WAIT_SECONDS)
    arguments.output.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
