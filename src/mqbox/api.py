"""The Python API: build the base image and the image, provision hosts, start the box, verify."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from mqbox import build_cache, docker_engine
from mqbox.playbook import Cancellation, EventHandler, RunResult, check_inventory, run_playbook
from mqbox.project import find_project_dir


def _image_vars(base: str | None, name: str | None, tag: str | None, build_container: str | None) -> dict[str, str]:
    requested = {
        "mqbox_base_image": base,
        "mqbox_image_name": name,
        "mqbox_image_tag": tag,
        "mqbox_build_container": build_container,
    }
    return {key: value for key, value in requested.items() if value}


def _reuse_cached_image(project: Path, extra_vars: Mapping[str, Any]) -> str | None:
    """Tag the cached image when nothing it was built from changed, without starting Ansible.

    The variables are the build's defaults (playbooks/vars/image.yml) with the
    extra vars on top, as the playbooks see them when the inventory adds none.
    """
    defaults = yaml.safe_load((project / "playbooks" / "vars" / "image.yml").read_text(encoding="utf-8"))
    variables = {**defaults, **extra_vars}
    if str(variables.get("mqbox_image_cache", True)).lower() in {"false", "no", "off", "0"}:
        return None
    roles = variables.pop("__mqbox_image_roles")
    variables = {name: value for name, value in variables.items() if not name.startswith("_")}
    return build_cache.reuse_final_image(project, roles, variables)


def build_base(  # noqa: PLR0913 - keyword options of the public API
    *,
    base: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
    pass_env: Iterable[str] = (),
    event_handler: EventHandler | None = None,
    cancellation: Cancellation | None = None,
    artifact_dir: Path | None = None,
) -> RunResult:
    """Make sure the base image is in the local engine: local copy, pull, or debootstrap build.

    Raises:
        MqboxError: No Docker engine responds, or no mqbox checkout is found.
    """
    project = find_project_dir(project_dir)
    docker_engine.connect()
    return run_playbook(
        "playbooks/base_image.yml",
        project_dir=project,
        extra_vars={**(extra_vars or {}), **_image_vars(base, None, None, None)},
        pass_env=pass_env,
        event_handler=event_handler,
        cancellation=cancellation,
        artifact_dir=artifact_dir,
        name="base-build",
    )


def build_image(  # noqa: PLR0913 - keyword options of the public API
    *,
    base: str | None = None,
    name: str | None = None,
    tag: str | None = None,
    build_container: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
    pass_env: Iterable[str] = (),
    event_handler: EventHandler | None = None,
    cancellation: Cancellation | None = None,
    artifact_dir: Path | None = None,
) -> RunResult:
    """Build the image NAME:TAG with playbooks/image.yml; None keeps playbooks/vars/image.yml's value.

    Raises:
        MqboxError: No Docker engine responds, or no mqbox checkout is found.
    """
    project = find_project_dir(project_dir)
    docker_engine.connect()
    variables = {**(extra_vars or {}), **_image_vars(base, name, tag, build_container)}
    reused = _reuse_cached_image(project, variables)
    if reused is not None:
        return RunResult(status="successful", rc=0, reused_image=reused)
    return run_playbook(
        "playbooks/image.yml",
        project_dir=project,
        extra_vars=variables,
        pass_env=pass_env,
        event_handler=event_handler,
        cancellation=cancellation,
        artifact_dir=artifact_dir,
        name="image-build",
    )


def provision_hosts(  # noqa: PLR0913 - keyword options of the public API
    inventory: str,
    *,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    extra_vars: Mapping[str, Any] | None = None,
    options: Iterable[str] = (),
    project_dir: Path | None = None,
    pass_env: Iterable[str] = (),
    event_handler: EventHandler | None = None,
    cancellation: Cancellation | None = None,
    artifact_dir: Path | None = None,
) -> RunResult:
    """Provision the hosts of group `mqbox` in the inventory with site.yml over SSH.

    Args:
        inventory: Inventory file or folder, or a comma-separated host list.
        options: Further ansible-playbook options, for example --vault-password-file=FILE.

    Raises:
        MqboxError: The inventory does not exist, or no mqbox checkout is found.
    """
    project = find_project_dir(project_dir)
    return run_playbook(
        "site.yml",
        project_dir=project,
        inventory=check_inventory(inventory),
        extra_vars=extra_vars,
        limit=limit,
        check=check,
        diff=diff,
        options=options,
        pass_env=pass_env,
        event_handler=event_handler,
        cancellation=cancellation,
        artifact_dir=artifact_dir,
        name="host-provision",
    )


def run_box(  # noqa: PLR0913 - keyword options of the public API
    *,
    build: bool = True,
    name: str | None = None,
    tag: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    project_dir: Path | None = None,
    pass_env: Iterable[str] = (),
    event_handler: EventHandler | None = None,
    cancellation: Cancellation | None = None,
    artifact_dir: Path | None = None,
) -> RunResult:
    """Do what `make run` does: build the image (unless build is False), then start it with playbooks/run.yml.

    Returns:
        The result of the image build when it failed, else the result of run.yml.

    Raises:
        MqboxError: No Docker engine responds, the image is missing (build=False), or no checkout is found.
    """
    project = find_project_dir(project_dir)
    client = docker_engine.connect()
    variables = {**(extra_vars or {}), **_image_vars(None, name, tag, None)}
    cancellation = cancellation or Cancellation()
    common: dict[str, Any] = {
        "project_dir": project,
        "extra_vars": variables,
        "pass_env": pass_env,
        "event_handler": event_handler,
        "cancellation": cancellation,
        "artifact_dir": artifact_dir,
    }
    if build:
        built = run_playbook("playbooks/image.yml", name="image-build", **common)
        if not built.ok:
            return built
    else:
        docker_engine.require_image(
            client, f"{variables.get('mqbox_image_name', 'mqbox')}:{variables.get('mqbox_image_tag', 'latest')}"
        )
    return run_playbook("playbooks/run.yml", name="run", **common)
