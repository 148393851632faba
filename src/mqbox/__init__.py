"""mqbox: build and provision a RabbitMQ box supervised by monit.

The Python API runs the project's playbooks through ansible-runner:

    from mqbox import build_image, provision_hosts, verify
"""

from __future__ import annotations

from importlib import metadata

from mqbox.api import build_base, build_image, provision_hosts, run_box
from mqbox.errors import MqboxError
from mqbox.playbook import Cancellation, HostStats, RunResult
from mqbox.verify import TestCounts, VerifyResult, verify

try:
    __version__ = metadata.version("mqbox")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Cancellation",
    "HostStats",
    "MqboxError",
    "RunResult",
    "TestCounts",
    "VerifyResult",
    "__version__",
    "build_base",
    "build_image",
    "provision_hosts",
    "run_box",
    "verify",
]
