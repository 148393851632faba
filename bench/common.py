"""Helpers shared by the benchmark steps: Docker calls, timing, medians."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Every container, image and cache the benchmarks make carries this prefix.
PREFIX = "mqbox-bench"


def docker(*arguments: str, timeout: float = 600, check: bool = True) -> str:
    """Run the Docker CLI and return its standard output.

    Raises:
        subprocess.CalledProcessError: The command failed and check is set; stderr is in the error.
    """
    return subprocess.run(["docker", *arguments], check=check, capture_output=True, text=True, timeout=timeout).stdout


def remove_containers(*names: str) -> None:
    """Remove containers and their anonymous volumes; missing ones are ignored."""
    if names:
        docker("rm", "--force", "--volumes", *names, check=False)


def timed(action: Callable[[], object]) -> float:
    """Run action and return the seconds it took."""
    started = time.monotonic()
    action()
    return time.monotonic() - started


@dataclass
class Figure:
    """One measured figure: its samples for mqbox and for the reference, and its target."""

    name: str
    unit: str
    mqbox: list[float] = field(default_factory=list)
    reference: list[float] = field(default_factory=list)
    # Samples that hit the wait bound count as the bound and are marked with ">=".
    mqbox_bounded: int = 0
    reference_bounded: int = 0
    note: str = ""

    @staticmethod
    def median(samples: Sequence[float]) -> float | None:
        return statistics.median(samples) if samples else None

    def ratio(self) -> float | None:
        """Return median(mqbox) / median(reference), or None when a side has no sample."""
        mqbox, reference = self.median(self.mqbox), self.median(self.reference)
        if mqbox is None or reference is None or reference == 0:
            return None
        return mqbox / reference
