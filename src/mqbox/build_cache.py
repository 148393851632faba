"""Compute the keys of the image build cache and find the cached layers.

The image build commits the build container after each role as a cache
image REPOSITORY:KEY. A role's key is a SHA-256 digest of the key before it,
the role's files and the variables named after the role. A change in one
role therefore changes its key and the keys of the roles after it, and the
build resumes from the last unchanged role. The first key covers the base
image id, the build playbooks, the local inventory and the `mqbox_` variables. The final key adds the commit
playbook, VERSION and the source revision.

The build playbooks run this file as a script with the Python that runs
Ansible, so it uses the standard library only:

    python build_cache.py --project-dir DIR --base-image-id ID \
        --repository mqbox-cache --role apt_sources --role locale ... < vars.json

It prints a JSON object: the layers (role, key, cached), the final key and
whether an image with the final key is cached.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

# Bump when the key layout changes, so that no older cache image matches.
KEY_FORMAT = 1

# Files of the build outside the roles that change what the role layers contain.
# The local inventory is one: variables set there for localhost reach the build.
BUILD_FILES = (
    "ansible.cfg",
    "inventories/local",
    "playbooks/image_start.yml",
    "playbooks/image_roles.yml",
    "playbooks/tasks/image_role_layer.yml",
    "playbooks/vars/image.yml",
)
# Files that change only the final image, not the role layers.
FINAL_FILES = ("playbooks/image_commit.yml", "VERSION")

# Variables that name things of the build or its tests but do not change the
# image content; so do all `mqbox_test_` variables.
IGNORED_VARIABLES = frozenset(
    {
        "mqbox_build_container",
        "mqbox_target",
        "mqbox_image_name",
        "mqbox_image_tag",
        "mqbox_image_cache",
        "mqbox_image_cache_repository",
    }
)
# Variables that change only the final image's configuration.
FINAL_VARIABLES = frozenset({"mqbox_image_env"})


def digest_files(paths: Iterable[Path], root: Path) -> str:
    """Return a SHA-256 digest of the paths (relative to root) and contents of the files.

    Folders are walked; `__pycache__` folders and missing files are skipped.
    """
    files: set[Path] = set()
    for path in paths:
        if path.is_dir():
            files.update(item for item in path.rglob("*") if item.is_file() and "__pycache__" not in item.parts)
        elif path.is_file():
            files.add(path)
    digest = hashlib.sha256()
    for file in sorted(files):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _digest(document: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()


def _role_variables(variables: Mapping[str, Any], role: str) -> dict[str, Any]:
    return {name: value for name, value in variables.items() if name.startswith(f"{role}_")}


def layer_keys(
    project_dir: Path,
    base_image_id: str,
    roles: Iterable[str],
    variables: Mapping[str, Any],
) -> list[tuple[str, str]]:
    """Return (role, key) for each role, in build order."""
    common = {
        name: value
        for name, value in variables.items()
        if name.startswith("mqbox_")
        and not name.startswith("mqbox_test_")
        and name not in IGNORED_VARIABLES | FINAL_VARIABLES
    }
    key = _digest(
        {
            "format": KEY_FORMAT,
            "base_image_id": base_image_id,
            "files": digest_files((project_dir / name for name in BUILD_FILES), project_dir),
            "variables": common,
        }
    )
    keys = []
    for role in roles:
        key = _digest(
            {
                "parent": key,
                "role": role,
                "files": digest_files([project_dir / "roles" / role], project_dir),
                "variables": _role_variables(variables, role),
            }
        )
        keys.append((role, key))
    return keys


def final_key(project_dir: Path, last_layer_key: str, variables: Mapping[str, Any], revision: str) -> str:
    """Return the key of the final image built on the layer with last_layer_key."""
    return _digest(
        {
            "parent": last_layer_key,
            "files": digest_files((project_dir / name for name in FINAL_FILES), project_dir),
            "variables": {name: variables.get(name) for name in sorted(FINAL_VARIABLES)},
            "revision": revision,
        }
    )


def image_id(reference: str) -> str | None:
    """Return the id of a local image, or None when the engine has no such image."""
    result = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", reference],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def image_exists(reference: str) -> bool:
    """Return whether the Docker engine has an image with this reference."""
    return image_id(reference) is not None


def source_revision(project_dir: Path) -> str:
    """Return the git commit of the checkout, or "unknown" outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "-C", str(project_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except OSError:
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def build_plan(  # noqa: PLR0913 - one argument per input of the keys
    project_dir: Path,
    base_image_id: str,
    roles: Iterable[str],
    variables: Mapping[str, Any],
    repository: str,
    *,
    lookup: bool = True,
) -> dict[str, Any]:
    """Return the layers with their keys, the final key, and which are cached (when lookup is set)."""
    layers = [
        {"role": role, "key": key, "cached": lookup and image_exists(f"{repository}:{key}")}
        for role, key in layer_keys(project_dir, base_image_id, roles, variables)
    ]
    last = str(layers[-1]["key"]) if layers else ""
    final = final_key(project_dir, last, variables, source_revision(project_dir))
    return {
        "repository": repository,
        "layers": layers,
        "final_key": final,
        "final_cached": lookup and image_exists(f"{repository}:{final}"),
    }


def reuse_final_image(project_dir: Path, roles: Iterable[str], variables: Mapping[str, Any]) -> str | None:
    """Tag the cached final image as mqbox_image_name:mqbox_image_tag when one matches the variables.

    The keys come from the same function as in the playbooks, so a hit is the
    image the playbooks would reuse. A miss (None) leaves the build to them.

    Returns:
        The reference tagged, or None when the base image or the cached image is missing.
    """
    base_id = image_id(str(variables["mqbox_base_image"]))
    if base_id is None:
        return None
    repository = str(variables["mqbox_image_cache_repository"])
    plan = build_plan(project_dir, base_id, roles, variables, repository, lookup=False)
    cached = f"{repository}:{plan['final_key']}"
    if image_id(cached) is None:
        return None
    target = f"{variables['mqbox_image_name']}:{variables['mqbox_image_tag']}"
    subprocess.run(["docker", "tag", cached, target], check=True, capture_output=True, timeout=60)
    return target


def main(argv: list[str] | None = None) -> int:
    """Read the variables as JSON from standard input and print the build plan as JSON."""
    parser = argparse.ArgumentParser(description="Compute the image build cache keys.")
    parser.add_argument("--project-dir", type=Path, required=True, help="mqbox checkout")
    parser.add_argument("--base-image-id", required=True, help="id of the base image (sha256:...)")
    parser.add_argument("--repository", required=True, help="repository of the cache images")
    parser.add_argument("--role", action="append", default=[], dest="roles", help="role, in build order")
    parser.add_argument("--no-lookup", action="store_true", help="compute keys only, do not ask Docker")
    arguments = parser.parse_args(argv)

    variables = json.load(sys.stdin)
    if not isinstance(variables, dict):
        parser.error("standard input must be a JSON object of variables")
    plan = build_plan(
        arguments.project_dir.resolve(),
        arguments.base_image_id,
        arguments.roles,
        variables,
        arguments.repository,
        lookup=not arguments.no_lookup,
    )
    json.dump(plan, sys.stdout, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
