"""Assemble the Ansible collection mqbox.box from the roles and build its tarball.

The collection is built from a generated folder, so that only the roles, the
collection's metadata and its README go in: `python -m mqbox.collection
--output dist` writes dist/mqbox-box-VERSION.tar.gz without network access.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from mqbox.errors import MqboxError
from mqbox.project import find_project_dir

# Files and folders of a role that the collection keeps: Ansible's role folders and the generated README.
# A role's library/ is not searched for roles inside a collection (ansible-core 2.19), so its modules
# become the collection's modules in plugins/modules, which the role's tasks find by their short name.
ROLE_CONTENT = ("defaults", "files", "handlers", "meta", "tasks", "templates", "vars", "README.md")


def assemble(project_dir: Path, folder: Path) -> Path:
    """Write the collection's files into folder and return it.

    galaxy.yml gets its `version` from the project's VERSION file.
    """
    source = project_dir / "collection"
    folder.mkdir(parents=True, exist_ok=True)

    metadata = yaml.safe_load((source / "galaxy.yml").read_text(encoding="utf-8"))
    metadata["version"] = (project_dir / "VERSION").read_text(encoding="utf-8").strip()
    (folder / "galaxy.yml").write_text(yaml.safe_dump(metadata, sort_keys=False), encoding="utf-8")
    for name in ("README.md", "CHANGELOG.md"):
        shutil.copy2(source / name, folder / name)
    shutil.copytree(source / "meta", folder / "meta", dirs_exist_ok=True)

    for role in sorted(path for path in (project_dir / "roles").iterdir() if path.is_dir()):
        for name in ROLE_CONTENT:
            item = role / name
            target = folder / "roles" / role.name / name
            if item.is_dir():
                shutil.copytree(item, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif item.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(item, target)
        for module in sorted((role / "library").glob("*.py")):
            modules = folder / "plugins" / "modules"
            modules.mkdir(parents=True, exist_ok=True)
            shutil.copy2(module, modules / module.name)
    return folder


def build(project_dir: Path, output: Path) -> Path:
    """Build the collection tarball into output and return its path.

    Raises:
        MqboxError: ansible-galaxy failed; the message contains its output.
    """
    output.mkdir(parents=True, exist_ok=True)
    galaxy = Path(sys.executable).parent / "ansible-galaxy"
    with tempfile.TemporaryDirectory(prefix="mqbox-collection-") as temporary:
        folder = assemble(project_dir, Path(temporary) / "mqbox" / "box")
        result = subprocess.run(
            [str(galaxy) if galaxy.is_file() else "ansible-galaxy", "collection", "build", "--force",
             "--output-path", str(output.resolve()), str(folder)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    if result.returncode != 0:
        raise MqboxError(
            f"ansible-galaxy collection build failed: {' '.join((result.stderr or result.stdout).split())}"
        )
    version = (project_dir / "VERSION").read_text(encoding="utf-8").strip()
    return output.resolve() / f"mqbox-box-{version}.tar.gz"


def main(argv: list[str] | None = None) -> int:
    """Run `python -m mqbox.collection`: build the tarball, or with --folder only assemble its files."""
    parser = argparse.ArgumentParser(description="Build the Ansible collection mqbox.box from the roles.")
    parser.add_argument("--output", type=Path, default=Path("dist"), help="folder of the tarball (default: dist)")
    parser.add_argument(
        "--folder", type=Path, help="only write the collection's files into this folder, build nothing (default: build)"
    )
    parser.add_argument("--project-dir", type=Path, help="mqbox checkout (default: the one mqbox is installed from)")
    arguments = parser.parse_args(argv)

    try:
        project_dir = find_project_dir(arguments.project_dir)
        if arguments.folder:
            print(assemble(project_dir, arguments.folder))
        else:
            print(build(project_dir, arguments.output))
    except MqboxError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
