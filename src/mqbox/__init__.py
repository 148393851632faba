"""mqbox: build and provision a RabbitMQ box supervised by monit."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("mqbox")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
