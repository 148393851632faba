"""Checks against the local Docker engine that turn its errors into MqboxError."""

from __future__ import annotations

from typing import Any

from docker.client import DockerClient
from docker.errors import DockerException, ImageNotFound, NotFound

from mqbox.errors import MqboxError


def connect() -> Any:
    """Return a client of the Docker engine named by DOCKER_HOST, or the local socket.

    Raises:
        MqboxError: No engine responds.
    """
    try:
        client = DockerClient.from_env(timeout=10)
        client.ping()
    except DockerException as error:
        raise MqboxError(
            f"no Docker engine responds ({' '.join(str(error).split())}): "
            "start one (`make engine` as root) or set DOCKER_HOST"
        ) from error
    return client


def require_image(client: Any, reference: str) -> Any:
    """Return a local image. Raises MqboxError when the engine has none by that reference."""
    try:
        return client.images.get(reference)
    except ImageNotFound as error:
        raise MqboxError(
            f"image {reference} not found in the local Docker engine: build it with `mqbox image build` "
            "(--name and --tag set its reference) or name an existing one"
        ) from error


def require_container(client: Any, name: str) -> Any:
    """Return a running container. Raises MqboxError when none by that name or id runs."""
    try:
        container = client.containers.get(name)
    except NotFound as error:
        raise MqboxError(f"container {name} not found: start it first, or name a running one") from error
    if container.status != "running":
        raise MqboxError(f"container {name} is {container.status}, not running: start it with `docker start {name}`")
    return container
