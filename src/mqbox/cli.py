"""The `mqbox` command: build, provision, start and verify the box through ansible-runner."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from mqbox import __version__, api
from mqbox.errors import MqboxError
from mqbox.playbook import CANCELLED_RC, Cancellation, RunResult, parse_extra_vars
from mqbox.progress import Progress, summary
from mqbox.verify import VerifyResult, verify

DESCRIPTION = """\
Build the mqbox image, provision hosts and verify them, running the playbooks of an
mqbox checkout through ansible-runner.

exit status: 0 success; 2 a host failed (or a verify test failed); 4 a host was
unreachable during a playbook; 130 cancelled with Ctrl-C; 1 an error mqbox found
itself (no Docker engine, inventory or image not found, unreachable host before
verify, invalid -e value or option); other values are ansible-playbook's own.
"""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and exit status 1, as mqbox's other errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"invalid port {text}: use 1 to 65535")
    return value


def _common_options() -> _Parser:
    """Options of every command, accepted after the command name."""
    common = _Parser(add_help=False)
    group = common.add_argument_group("output and environment")
    group.add_argument(
        "--json",
        action="store_true",
        help="write every ansible-runner event as one JSON line to stdout, then one line "
        '{"mqbox_result": ...}; messages and the recap go to stderr (default: progress on stdout)',
    )
    group.add_argument(
        "--artifact-dir",
        type=Path,
        metavar="DIR",
        help="folder that gets one subfolder of artifacts per run (stdout, job_events/, rc, status) "
        "(default: $MQBOX_ARTIFACT_DIR, else artifacts/ in the checkout)",
    )
    group.add_argument(
        "--project-dir",
        type=Path,
        metavar="DIR",
        help="mqbox checkout whose playbooks and roles run (default: $MQBOX_PROJECT_DIR, the checkout mqbox "
        "is installed from, else the current folder or a parent)",
    )
    group.add_argument(
        "--pass-env",
        action="append",
        default=[],
        metavar="NAME",
        help="let environment variable NAME reach Ansible; repeatable (default: only ANSIBLE_*, LC_*, "
        "PATH, HOME, the SSH agent and DOCKER_* pass)",
    )
    return common


def _extra_vars_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set Ansible variable KEY to the string VALUE, as ansible-playbook -e does; repeatable (default: none)",
    )


def _image_options(parser: argparse.ArgumentParser, base: bool = True) -> None:
    if base:
        parser.add_argument(
            "--base",
            metavar="IMAGE",
            help="base image reference, pulled or built with debootstrap when missing "
            "(sets mqbox_base_image; default: debian:bookworm)",
        )
    parser.add_argument(
        "--name", metavar="NAME", help="repository name of the image (sets mqbox_image_name; default: mqbox)"
    )
    parser.add_argument("--tag", metavar="TAG", help="tag of the image (sets mqbox_image_tag; default: latest)")


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the whole command line."""
    parser = _Parser(prog="mqbox", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"mqbox {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = _common_options()

    base = commands.add_parser("base", help="the base image").add_subparsers(dest="action", required=True)
    base_build = base.add_parser(
        "build", parents=[common], help="get the base image: local copy, pull, or debootstrap build"
    )
    base_build.add_argument(
        "--base", metavar="IMAGE", help="base image reference (sets mqbox_base_image; default: debian:bookworm)"
    )
    _extra_vars_option(base_build)

    image = commands.add_parser("image", help="the mqbox image").add_subparsers(dest="action", required=True)
    image_build = image.add_parser("build", parents=[common], help="build the image with playbooks/image.yml")
    _image_options(image_build)
    image_build.add_argument(
        "--build-container",
        metavar="NAME",
        help="name of the temporary build container (sets mqbox_build_container; default: mqbox-build)",
    )
    _extra_vars_option(image_build)

    host = commands.add_parser("host", help="bare hosts").add_subparsers(dest="action", required=True)
    provision = host.add_parser(
        "provision", parents=[common], help="provision the hosts of group mqbox with site.yml over SSH"
    )
    provision.add_argument(
        "-i", "--inventory", required=True, help="inventory file or folder, or a comma-separated host list"
    )
    provision.add_argument("--limit", metavar="PATTERN", help="run only on hosts matching PATTERN (default: all)")
    provision.add_argument("--check", action="store_true", help="report changes without making them (default: off)")
    provision.add_argument("--diff", action="store_true", help="show the changes to files (default: off)")
    provision.add_argument(
        "--vault-password-file",
        type=Path,
        metavar="FILE",
        help="file or script with the vault password, for vault-encrypted variables (default: none)",
    )
    _extra_vars_option(provision)

    run = commands.add_parser(
        "run", parents=[common], help="build the image and start container mqbox on 127.0.0.1 (what `make run` does)"
    )
    _image_options(run, base=False)
    run.add_argument(
        "--skip-build", action="store_true", help="start the existing image, do not build it first (default: build)"
    )
    _extra_vars_option(run)

    check = commands.add_parser(
        "verify", parents=[common], help="run the testinfra suite tests/infra against a container or hosts"
    )
    target = check.add_mutually_exclusive_group(required=True)
    target.add_argument("--image", metavar="TAG", help="start a container of image TAG, test it, remove it")
    target.add_argument("--container", metavar="NAME", help="test running container NAME (ports 22 and 5672 published)")
    target.add_argument("-i", "--inventory", help="test every host of group mqbox in this inventory, over SSH as root")
    check.add_argument("--limit", metavar="PATTERN", help="with -i: test only hosts matching PATTERN (default: all)")
    check.add_argument(
        "--ssh-key",
        type=Path,
        metavar="FILE",
        help="private key that root accepts (default: .mqbox/id_ed25519 of the checkout for --container, "
        "ansible_ssh_private_key_file for -i; --image makes its own)",
    )
    check.add_argument(
        "--admin-password-file",
        type=Path,
        metavar="FILE",
        help="with -i: local file with the RabbitMQ administrator password (required for -i)",
    )
    check.add_argument(
        "--container-name",
        metavar="NAME",
        help="with --image: name of the container started (default: mqbox-verify-<random>)",
    )
    check.add_argument(
        "--ssh-port",
        type=_port,
        metavar="PORT",
        help="with --image: TCP port on 127.0.0.1 for SSH (default: Docker picks)",
    )
    check.add_argument(
        "--amqp-port",
        type=_port,
        metavar="PORT",
        help="TCP port for AMQP: with --image on 127.0.0.1 (default: Docker picks), "
        "with -i on each host (default: 5672)",
    )
    check.add_argument(
        "--spare-amqp-port",
        type=_port,
        metavar="PORT",
        help="with --image or --container: TCP port on 127.0.0.1 for AMQP of the extra containers that image "
        "tests start one at a time, named CONTAINER-spare-<random> (default: Docker picks)",
    )
    return parser


def _run_command(arguments: argparse.Namespace, progress: Progress, cancellation: Cancellation) -> RunResult:
    common: dict[str, Any] = {
        "extra_vars": parse_extra_vars(arguments.extra_vars),
        "project_dir": arguments.project_dir,
        "pass_env": arguments.pass_env,
        "event_handler": progress,
        "cancellation": cancellation,
        "artifact_dir": arguments.artifact_dir,
    }
    if arguments.command == "base":
        return api.build_base(base=arguments.base, **common)
    if arguments.command == "image":
        return api.build_image(
            base=arguments.base,
            name=arguments.name,
            tag=arguments.tag,
            build_container=arguments.build_container,
            **common,
        )
    if arguments.command == "host":
        vault_password_file = arguments.vault_password_file
        if vault_password_file is not None and not vault_password_file.is_file():
            raise MqboxError(f"vault password file {vault_password_file} not found: name an existing file or script")
        options = [f"--vault-password-file={vault_password_file.resolve()}"] if vault_password_file else []
        return api.provision_hosts(
            arguments.inventory,
            limit=arguments.limit,
            check=arguments.check,
            diff=arguments.diff,
            options=options,
            **common,
        )
    return api.run_box(build=not arguments.skip_build, name=arguments.name, tag=arguments.tag, **common)


def _outcome_message(result: RunResult) -> str | None:
    """Return the closing line of a run that did not succeed, or None."""
    if result.rc == 0:
        return None
    if result.rc == CANCELLED_RC:
        return "cancelled: the playbook was stopped; run the command again to finish"
    unreachable = sorted(name for name, stats in result.hosts.items() if stats.unreachable)
    failed = sorted(name for name, stats in result.hosts.items() if stats.failed)
    where = f"; the full output is in {result.artifact_dir}/stdout" if result.artifact_dir else ""
    if unreachable:
        hint = "check the address, port, user and SSH key in the inventory"
        return f"unreachable: {', '.join(unreachable)}: {hint}{where}"
    if failed:
        return f"failed: {', '.join(failed)}: the failed tasks are listed above{where}"
    return f"ansible-playbook exited with {result.rc}{where}"


def _verify_command(arguments: argparse.Namespace, messages: TextIO) -> VerifyResult:
    return verify(
        image=arguments.image,
        container=arguments.container,
        inventory=arguments.inventory,
        project_dir=arguments.project_dir,
        ssh_key=arguments.ssh_key,
        admin_password_file=arguments.admin_password_file,
        limit=arguments.limit,
        container_name=arguments.container_name,
        ssh_port=arguments.ssh_port,
        amqp_port=arguments.amqp_port,
        spare_amqp_port=arguments.spare_amqp_port,
        artifact_dir=arguments.artifact_dir,
        output=messages,
    )


def _finish_verify(result: VerifyResult, json_out: TextIO | None, messages: TextIO) -> None:
    """Write the test counts of each box, the status and the artifact folder."""
    for name, counts in result.hosts.items():
        messages.write(
            f"{name}: passed={counts.passed} failed={counts.failed} errors={counts.errors} skipped={counts.skipped}\n"
        )
    messages.write(f"status: {result.status} (exit {result.rc})\nartifacts: {result.artifact_dir}\n")
    messages.flush()
    if json_out is not None:
        hosts = {name: vars(counts) for name, counts in result.hosts.items()}
        data = {"status": result.status, "rc": result.rc, "artifact_dir": str(result.artifact_dir), "hosts": hosts}
        _write_json(json_out, {"mqbox_result": data})


def _write_json(out: TextIO, data: dict[str, Any]) -> None:
    out.write(json.dumps(data, sort_keys=True) + "\n")
    out.flush()


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run the mqbox command line and return its exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    arguments = build_parser().parse_args(argv)
    messages = err if arguments.json else out

    try:
        if arguments.command == "verify":
            verified = _verify_command(arguments, messages)
            _finish_verify(verified, out if arguments.json else None, messages)
            return verified.rc

        mode = "live" if out.isatty() else "plain"
        if arguments.json:
            mode = "json"
        progress = Progress(out, mode, messages=messages)
        names = sorted(parse_extra_vars(arguments.extra_vars))
        if names:
            # Only the names: values may be secrets.
            progress.message(f"extra vars: {', '.join(names)}")
        result = _run_command(arguments, progress, Cancellation())
        progress.finish(result)
        closing = _outcome_message(result)
        if closing:
            err.write(f"mqbox: {closing}\n")
        if arguments.json:
            _write_json(out, summary(result))
        return result.rc
    except MqboxError as error:
        err.write(f"mqbox: error: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        err.write("mqbox: cancelled\n")
        return CANCELLED_RC


if __name__ == "__main__":
    sys.exit(main())
