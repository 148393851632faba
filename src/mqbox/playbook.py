"""Run a playbook of the project through ansible-runner and collect its result."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import ansible_runner

from mqbox.errors import MqboxError

Event = dict[str, Any]
EventHandler = Callable[[Event], Any]

# Exit status of a run cancelled with Ctrl-C (128 + SIGINT), as shells report it.
CANCELLED_RC = 130

# Environment variables that reach Ansible besides ANSIBLE_* and the ones a
# caller names: the basics of a login session, the SSH agent, and how to reach
# the Docker engine.
BASE_ENVIRONMENT = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "TMPDIR",
        "VIRTUAL_ENV",
        "SSH_AUTH_SOCK",
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_CERT_PATH",
        "DOCKER_TLS_VERIFY",
    }
)

VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class HostStats:
    """Task counts of one host, as in Ansible's PLAY RECAP."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class RunResult:
    """Outcome of one playbook run."""

    status: str  # ansible-runner's status: successful, failed, canceled, timeout
    rc: int  # ansible-playbook's exit status; 130 when cancelled
    hosts: dict[str, HostStats] = field(default_factory=dict)
    artifact_dir: Path | None = None  # ansible-runner's artifacts: stdout, job_events/, rc, status
    reused_image: str | None = None  # set when an image build only tagged the cached image, running no playbook

    @property
    def ok(self) -> bool:
        """True when the playbook finished with exit status 0."""
        return self.rc == 0


def parse_extra_vars(pairs: Iterable[str]) -> dict[str, str]:
    """Turn KEY=VALUE strings into extra vars; values stay strings, as with ansible-playbook -e.

    Raises:
        MqboxError: A pair has no `=` or its key is not a valid Ansible variable name.
    """
    extra_vars: dict[str, str] = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            raise MqboxError(f"invalid -e value {key!r}: it has no '=', write it as KEY=VALUE")
        if not VARIABLE_NAME.fullmatch(key):
            raise MqboxError(
                f"invalid -e value: {key!r} is not a valid variable name "
                "(letters, digits and underscores, not starting with a digit)"
            )
        extra_vars[key] = value
    return extra_vars


def filter_environment(
    environment: Mapping[str, str], added_by_runner: Iterable[str], passed: Iterable[str]
) -> dict[str, str]:
    """Keep the variables that may reach Ansible.

    Args:
        environment: The full environment ansible-runner prepared.
        added_by_runner: Names ansible-runner set itself (its callback plugin, Python path).
        passed: Names the caller allows on top of ANSIBLE_*, LC_* and BASE_ENVIRONMENT.
    """
    allowed = BASE_ENVIRONMENT | set(added_by_runner) | set(passed)
    return {
        name: value for name, value in environment.items() if name in allowed or name.startswith(("ANSIBLE_", "LC_"))
    }


def default_artifact_dir(project_dir: Path) -> Path:
    """Return where run artifacts go: MQBOX_ARTIFACT_DIR, else `artifacts/` of the project."""
    named = os.environ.get("MQBOX_ARTIFACT_DIR")
    return Path(named) if named else project_dir / "artifacts"


class Cancellation:
    """A flag that a Ctrl-C (SIGINT) sets and ansible-runner's cancel callback reads."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the running playbook to stop."""
        self._event.set()

    def __call__(self) -> bool:
        return self._event.is_set()

    @contextmanager
    def on_sigint(self) -> Iterator[None]:
        """Turn SIGINT into a cancellation while the block runs, in the main thread only."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(_signum: int, _frame: FrameType | None) -> None:
            self.cancel()

        previous = signal.signal(signal.SIGINT, handle)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _host_stats(stats: Mapping[str, Any] | None) -> dict[str, HostStats]:
    if not stats:
        return {}
    keys = {
        "ok": "ok",
        "changed": "changed",
        "failed": "failures",
        "unreachable": "dark",
        "skipped": "skipped",
        "rescued": "rescued",
        "ignored": "ignored",
    }
    names = sorted({name for key in keys.values() for name in (stats.get(key) or {})})
    return {
        name: HostStats(**{field_name: int((stats.get(key) or {}).get(name, 0)) for field_name, key in keys.items()})
        for name in names
    }


def run_playbook(  # noqa: PLR0913 - keyword options of the public API
    playbook: str,
    *,
    project_dir: Path,
    inventory: str | None = None,
    extra_vars: Mapping[str, Any] | None = None,
    limit: str | None = None,
    check: bool = False,
    diff: bool = False,
    options: Iterable[str] = (),
    pass_env: Iterable[str] = (),
    event_handler: EventHandler | None = None,
    cancellation: Cancellation | None = None,
    artifact_dir: Path | None = None,
    name: str = "run",
) -> RunResult:
    """Run one playbook of the project with ansible_runner.run.

    Extra vars go to a file in a private folder that is deleted after the
    run, so their values appear neither on the command line nor in the
    artifacts. Only ANSIBLE_*, LC_*, BASE_ENVIRONMENT and `pass_env` reach Ansible.

    Args:
        playbook: Path of the playbook relative to project_dir, for example playbooks/image.yml.
        project_dir: The mqbox checkout; ansible-playbook runs there and reads its ansible.cfg.
        inventory: Inventory path or host list; None uses ansible.cfg's (the local machine).
        extra_vars: Variables passed with -e.
        limit: Host pattern for --limit.
        check: Run with --check.
        diff: Run with --diff.
        options: Further ansible-playbook options, for example --vault-password-file=FILE.
        pass_env: Names of further environment variables that reach Ansible.
        event_handler: Called with every event; it is also where the caller shows progress.
        cancellation: Set it to stop the run; without one, Ctrl-C stops it.
        artifact_dir: Parent of the run's artifact folder; default default_artifact_dir().
        name: Short name of the run, part of the artifact folder's name.

    Returns:
        The status, exit status, per-host stats and artifact folder of the run.
    """
    cancellation = cancellation or Cancellation()
    artifacts = (artifact_dir or default_artifact_dir(project_dir)).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    ident = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{name}-{uuid.uuid4().hex[:6]}"

    command_line = list(options)
    if limit:
        command_line.append(f"--limit={limit}")
    if check:
        command_line.append("--check")
    if diff:
        command_line.append("--diff")

    passed = list(pass_env)
    stats: dict[str, Any] = {}

    def handle(event: Event) -> bool:
        if event.get("event") == "playbook_on_stats":
            stats.update(event.get("event_data", {}))
        if event_handler is not None:
            event_handler(event)
        return True

    with tempfile.TemporaryDirectory(prefix="mqbox-runner-") as private:
        env_dir = Path(private) / "env"
        env_dir.mkdir(mode=0o700)
        if extra_vars:
            extra_vars_file = env_dir / "extravars"
            extra_vars_file.touch(mode=0o600)
            extra_vars_file.write_text(json.dumps(dict(extra_vars)), encoding="utf-8")

        runner = ansible_runner.interface.init_runner(
            private_data_dir=private,
            project_dir=str(project_dir),
            playbook=str(project_dir / playbook),
            inventory=inventory,
            cmdline=shlex.join(command_line) if command_line else None,
            artifact_dir=str(artifacts),
            ident=ident,
            event_handler=handle,
            cancel_callback=cancellation,
            quiet=True,
        )
        # ansible_runner.run() is init_runner() followed by Runner.run(); the
        # environment is filtered between the two, after ansible-runner added
        # its own variables to a copy of os.environ.
        added = {key for key, value in runner.config.env.items() if os.environ.get(key) != value}
        # ansible-runner turns host key checking off unless the environment
        # sets it; ansible.cfg's setting (on) applies instead.
        added.discard("ANSIBLE_HOST_KEY_CHECKING")
        environment = filter_environment(runner.config.env, added, passed)
        # The Ansible installed beside this interpreter runs, activated or not.
        environment["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), environment.get("PATH", os.defpath)])
        runner.config.env = environment
        with cancellation.on_sigint():
            runner.run()

    run_dir = Path(runner.config.artifact_dir)
    rc = int(runner.rc) if runner.rc is not None else 1
    if runner.status == "canceled":
        rc = CANCELLED_RC
    return RunResult(status=str(runner.status), rc=rc, hosts=_host_stats(stats), artifact_dir=run_dir)


def check_inventory(inventory: str) -> str:
    """Return an inventory argument that exists: a path, or a comma-separated host list.

    Raises:
        MqboxError: The path does not exist.
    """
    if "," in inventory:
        return inventory
    path = Path(inventory)
    if not path.exists():
        raise MqboxError(f"inventory {inventory} not found: pass the path of an inventory file or folder with -i")
    return str(path.resolve())
