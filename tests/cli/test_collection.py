"""The collection mqbox.box: offline build, install into a temporary path, role docs, a real play.

Also generates the execution environment's build context with ansible-builder;
building its image needs a container registry and is not done here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.cli.conftest import ROOT, docker, remove_container

BIN = Path(sys.executable).parent
ROLES = ["apt_sources", "build_guards", "locale", "monit", "rabbitmq", "sshd"]
VERSION = (ROOT / "VERSION").read_text(encoding="utf-8").strip()
PLAY_HOST = "mqbox-cli-collection"
PLAY_IMAGE = "mqbox-test-python:bookworm"


def _isolated_environment(collections: Path) -> dict[str, str]:
    """Return an environment in which Ansible finds roles only in the installed collection."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ANSIBLE_")}
    # The community collections still come from the `ansible` package, which Ansible finds on sys.path.
    environment["ANSIBLE_COLLECTIONS_PATH"] = str(collections)
    environment["ANSIBLE_ROLES_PATH"] = str(collections / "no-roles-here")
    environment["ANSIBLE_NOCOLOR"] = "1"
    return environment


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the collection with `python -m mqbox.collection`, without network access to Galaxy."""
    output = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "mqbox.collection", "--output", str(output)], check=True, cwd=ROOT, timeout=300
    )
    return output / f"mqbox-box-{VERSION}.tar.gz"


@pytest.fixture(scope="module")
def collections(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the tarball into a temporary collections path, offline."""
    path = tmp_path_factory.mktemp("collections")
    subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(path), str(tarball)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return path


def test_tarball_has_only_collection_content(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        tops = {name.split("/")[0] for name in archive.getnames()}
        names = archive.getnames()
    assert tops == {"MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "meta", "plugins", "roles"}
    assert {name.split("/")[1] for name in names if name.startswith("roles/") and "/" in name} == set(ROLES)
    assert "plugins/modules/apt_components.py" in names
    assert not [name for name in names if "/library/" in name]
    assert "meta/runtime.yml" in names


def test_installed_collection_lists_roles(collections: Path) -> None:
    listing = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "role", "-l", "mqbox.box"],
        capture_output=True, text=True, check=True, timeout=120, env=_isolated_environment(collections),
    )  # fmt: skip
    for role in ROLES:
        assert f"mqbox.box.{role}" in listing.stdout


@pytest.mark.parametrize("role", ROLES)
def test_role_doc_shows_argument_spec(collections: Path, role: str) -> None:
    role_doc = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "role", f"mqbox.box.{role}"],
        capture_output=True, text=True, check=True, timeout=120, env=_isolated_environment(collections),
    )  # fmt: skip
    assert f"mqbox.box.{role}" in role_doc.stdout
    assert "ENTRY POINT: *main*" in role_doc.stdout
    assert "mqbox_target" in role_doc.stdout


def test_roles_run_from_collection(collections: Path, tmp_path: Path) -> None:
    """Apply mqbox.box.apt_sources (with its own module) and mqbox.box.locale to a throw-away container."""
    if subprocess.run(["docker", "image", "inspect", PLAY_IMAGE], capture_output=True, check=False).returncode != 0:
        pytest.skip(f"image {PLAY_IMAGE} is missing: the Molecule scenario build_guards makes it")
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        f"""---
- name: Apply roles of the installed collection
  hosts: {PLAY_HOST}
  gather_facts: true
  gather_subset: [min]
  vars:
    mqbox_target: image
    apt_sources_upgrade: false
  roles:
    - mqbox.box.apt_sources
    - mqbox.box.locale
""",
        encoding="utf-8",
    )
    remove_container(PLAY_HOST)
    docker("run", "--detach", "--name", PLAY_HOST, PLAY_IMAGE, "sleep", "infinity")
    try:
        played = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", f"{PLAY_HOST},", "-c", "community.docker.docker", str(playbook)],
            capture_output=True, text=True, check=False, timeout=900, cwd=tmp_path,
            env=_isolated_environment(collections),
        )  # fmt: skip
        assert played.returncode == 0, played.stdout[-4000:] + played.stderr[-2000:]
        assert "failed=0" in played.stdout
        assert "en_US.utf8" in docker("exec", PLAY_HOST, "locale", "-a").stdout
    finally:
        remove_container(PLAY_HOST)


def test_execution_environment_context(tarball: Path, tmp_path: Path) -> None:
    """ansible-builder writes the build context; the image build itself is not run."""
    builder = BIN / "ansible-builder"
    if not builder.is_file():
        pytest.skip("ansible-builder is not installed: pip install ansible-builder")
    shutil.copy2(ROOT / "execution-environment.yml", tmp_path / "execution-environment.yml")
    (tmp_path / "dist").mkdir()
    shutil.copy2(tarball, tmp_path / "dist" / tarball.name)

    context = tmp_path / "context"
    subprocess.run(
        [str(builder), "create", "-f", str(tmp_path / "execution-environment.yml"), "-c", str(context)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (context / "_build" / "collections" / tarball.name).is_file()
    instructions = next(path for path in (context / "Containerfile", context / "Dockerfile") if path.exists())
    text = instructions.read_text(encoding="utf-8")
    assert "ansible-galaxy collection install --offline" in text
    assert "python3.11" in text
    assert "ansible>=12,<13" in (context / "_build" / "requirements.txt").read_text(encoding="utf-8")
