"""Interrupt a converge in the middle of a package install, as a lost session or a crash would.

For each host (a container that this project started), run site.yml limited to it and watch
the host's processes. Once dpkg has run for a second under the apt-get that installs
rabbitmq-server, kill the ansible-playbook process group on this machine, then apt-get and dpkg
on the host. The host is left with packages unpacked or half installed, and the next converge
has to finish them.

    python -m tests.infra.interrupt_converge --inventory INV --extra-vars @vars.yml HOST...

Exit status 0 when every host was interrupted during that install and `dpkg --audit` then
lists unfinished packages on it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# The package whose install is interrupted. It pulls in Erlang, so dpkg runs for several seconds.
PACKAGE = "rabbitmq-server"
# Seconds to wait for that install to start.
DEADLINE_SECONDS = 900
POLL_SECONDS = 0.2
# dpkg first reads the package database, which changes nothing, so a dpkg run
# is killed only once it has run this long.
DPKG_RUN_SECONDS = 1.0

# Lists apt-get and dpkg processes of the host as "PID PPID NAME COMMAND LINE".
_LIST_PACKAGE_MANAGERS = r"""
for p in /proc/[0-9]*; do
    name=$(cat "$p/comm" 2>/dev/null) || continue
    case "$name" in
        apt-get|dpkg) echo "${p#/proc/} $(cut -d ' ' -f 4 "$p/stat") $name $(tr '\0' ' ' <"$p/cmdline")" ;;
    esac
done 2>/dev/null
"""
_KILL_PACKAGE_MANAGERS = r"""
for p in /proc/[0-9]*; do
    case "$(cat "$p/comm" 2>/dev/null)" in
        apt-get|dpkg) kill -KILL "${p#/proc/}" ;;
    esac
done 2>/dev/null
true
"""


@dataclass
class _Run:
    host: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    interrupted: str = ""  # the dpkg command line that was running when the run was killed
    dpkg_seen: dict[str, float] = field(default_factory=dict)  # dpkg PID: when it was first seen


def _docker_exec(host: str, script: str) -> str:
    result = subprocess.run(
        ["docker", "exec", host, "sh", "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    return result.stdout


def _dpkg_under_install(host: str) -> tuple[str, str]:
    """Return the PID and command line of dpkg run by the apt-get that installs PACKAGE, or empty strings."""
    rows = [line.split(" ", 3) for line in _docker_exec(host, _LIST_PACKAGE_MANAGERS).splitlines()]
    # Ansible's apt module names the package with its version: rabbitmq-server=VERSION.
    installers = {
        row[0]
        for row in rows
        if len(row) == 4 and row[2] == "apt-get" and PACKAGE in (word.split("=")[0] for word in row[3].split())
    }
    for row in rows:
        if len(row) == 4 and row[2] == "dpkg" and row[1] in installers:
            return row[0], row[3].strip()
    return "", ""


def _interrupt(run: _Run, command: str) -> None:
    os.killpg(run.process.pid, signal.SIGKILL)
    _docker_exec(run.host, _KILL_PACKAGE_MANAGERS)
    run.process.wait(timeout=60)
    run.interrupted = command


def _short(command: str) -> str:
    """Shorten a dpkg command line: its action and the names of the first packages."""
    words = command.split()
    action = next((word for word in words if word in ("--unpack", "--configure", "--install")), "")
    packages = [Path(word).name.split("_", 1)[0] for word in words if word.endswith(".deb")]
    more = f" and {len(packages) - 3} more" if len(packages) > 3 else ""
    return f"dpkg {action} {', '.join(packages[:3])}{more}".strip()


def _watch(runs: list[_Run], playbook: str) -> None:
    """Poll the hosts until every run was interrupted, ended, or passed the deadline."""
    while any(not run.interrupted and run.process.poll() is None for run in runs):
        for run in runs:
            if run.interrupted or run.process.poll() is not None:
                continue
            if time.monotonic() - run.started > DEADLINE_SECONDS:
                os.killpg(run.process.pid, signal.SIGKILL)
                run.process.wait(timeout=60)
                continue
            pid, dpkg = _dpkg_under_install(run.host)
            if dpkg and time.monotonic() - run.dpkg_seen.setdefault(pid, time.monotonic()) >= DPKG_RUN_SECONDS:
                _interrupt(run, dpkg)
                seconds = time.monotonic() - run.started
                print(f"{run.host}: killed {playbook} {seconds:.1f} s after its start, during {_short(dpkg)}")
        time.sleep(POLL_SECONDS)


def _report(run: _Run) -> bool:
    """Print what the interruption left on the host; return True when it left unfinished packages."""
    if not run.interrupted:
        tail = run.log.read_text(errors="replace").splitlines()[-15:]
        print(f"{run.host}: the install of {PACKAGE} was not caught running (exit status", end=" ")
        print(f"{run.process.returncode}); end of {run.log}:", *tail, sep="\n  ")
        return False
    audit = _docker_exec(run.host, "dpkg --audit").strip()
    unfinished = sorted({line.split()[0] for line in audit.splitlines() if line.startswith(" ")})
    if not unfinished:
        print(f"{run.host}: dpkg --audit lists no unfinished package after the kill")
        return False
    print(f"{run.host}: dpkg --audit lists {len(unfinished)} unfinished: {', '.join(unfinished)}")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", action="append", required=True, help="inventory source, as for ansible")
    parser.add_argument("--extra-vars", action="append", default=[], help="extra variables, as for ansible")
    parser.add_argument("--playbook", default="site.yml", help="playbook to interrupt (default: site.yml)")
    parser.add_argument("hosts", nargs="+", help="inventory names of the hosts, which are also container names")
    args = parser.parse_args(argv)

    log_dir = Path(tempfile.mkdtemp(prefix="mqbox-interrupt-"))
    command = [str(Path(sys.executable).parent / "ansible-playbook"), args.playbook]
    command += [f"--inventory={source}" for source in args.inventory]
    command += [f"--extra-vars={extra}" for extra in args.extra_vars]
    runs = []
    for host in args.hosts:
        log = log_dir / f"{host}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [*command, f"--limit={host}"], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        runs.append(_Run(host=host, process=process, log=log))
    try:
        _watch(runs, args.playbook)
    finally:
        for run in runs:
            if run.process.poll() is None:
                os.killpg(run.process.pid, signal.SIGKILL)
                run.process.wait(timeout=60)
    results = [_report(run) for run in runs]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
