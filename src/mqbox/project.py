"""Locate the mqbox project folder: playbooks, roles, ansible.cfg and the tests.

mqbox runs the playbooks and roles from a checkout of its repository, and the
package does not carry copies of them. An editable install (`make venv`) finds
the checkout it was installed from. Any other install needs MQBOX_PROJECT_DIR,
`--project-dir`, or a current folder inside a checkout.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from mqbox.errors import MqboxError

# Files that only an mqbox checkout has, all of them needed to run a command.
MARKERS = ("site.yml", "ansible.cfg", "playbooks/image.yml", "roles/rabbitmq/meta/argument_specs.yml")

PROJECT_DIR_VARIABLE = "MQBOX_PROJECT_DIR"


def is_project_dir(path: Path) -> bool:
    """Tell whether a folder is an mqbox checkout."""
    return all((path / marker).is_file() for marker in MARKERS)


def _candidates() -> Iterator[Path]:
    # src/mqbox/project.py in a checkout: the checkout is two levels above the package.
    yield Path(__file__).resolve().parents[2]
    current = Path.cwd().resolve()
    yield current
    yield from current.parents


def find_project_dir(explicit: Path | None = None) -> Path:
    """Return the mqbox checkout to run playbooks from.

    Args:
        explicit: A folder named by the caller; when given, no other place is tried.

    Raises:
        MqboxError: The named folder, MQBOX_PROJECT_DIR, or every place searched is no checkout.
    """
    named = explicit or (Path(os.environ[PROJECT_DIR_VARIABLE]) if os.environ.get(PROJECT_DIR_VARIABLE) else None)
    if named is not None:
        if is_project_dir(named):
            return named.resolve()
        raise MqboxError(
            f"{named} is not an mqbox checkout (it lacks one of {', '.join(MARKERS)}): "
            f"name the folder of a clone of the mqbox repository"
        )

    for candidate in _candidates():
        if is_project_dir(candidate):
            return candidate
    raise MqboxError(
        "mqbox cannot find its playbooks and roles: run it inside a clone of the mqbox repository, "
        f"or set {PROJECT_DIR_VARIABLE} or --project-dir to the clone"
    )
