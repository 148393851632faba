"""Argument parsing of the mqbox command and its errors that need no Ansible run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from mqbox import cli
from mqbox.errors import MqboxError
from mqbox.playbook import parse_extra_vars
from mqbox.project import find_project_dir, is_project_dir

ROOT = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> object:
    return cli.build_parser().parse_args(list(argv))


def test_provision_options() -> None:
    arguments = _parse(
        "host", "provision", "-i", "inv.yml", "--limit", "mq1", "--check", "--diff", "-e", "a=1", "-e", "b=x=y"
    )
    assert vars(arguments)["inventory"] == "inv.yml"
    assert vars(arguments)["limit"] == "mq1"
    assert vars(arguments)["check"] is True
    assert vars(arguments)["diff"] is True
    assert vars(arguments)["extra_vars"] == ["a=1", "b=x=y"]


def test_provision_needs_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        _parse("host", "provision")
    assert raised.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("mqbox host provision: error: the following arguments are required: -i/--inventory")
    assert error.count("\n") == 1


def test_image_build_options() -> None:
    arguments = vars(_parse("image", "build", "--base", "debian:trixie", "--name", "n", "--tag", "t", "--json"))
    assert arguments["base"] == "debian:trixie"
    assert arguments["name"] == "n"
    assert arguments["tag"] == "t"
    assert arguments["json"] is True


@pytest.mark.parametrize(
    "target", [["--image", "mqbox:latest"], ["--container", "mqbox"], ["-i", "inventories/production"]]
)
def test_verify_takes_one_target(target: list[str]) -> None:
    assert _parse("verify", *target)


def test_verify_rejects_two_targets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("verify", "--image", "a", "--container", "b")
    assert "not allowed with argument" in capsys.readouterr().err


def test_verify_port_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("verify", "--image", "a", "--ssh-port", "70000")
    assert "invalid port 70000" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        _parse("--version")
    assert raised.value.code == 0
    assert capsys.readouterr().out.startswith("mqbox ")


def test_every_option_help_names_default() -> None:
    parser = cli.build_parser()
    subparsers = [action for action in parser._actions if action.choices and isinstance(action.choices, dict)]
    leaves = []
    for group in subparsers:
        assert isinstance(group.choices, dict)
        for command in group.choices.values():
            nested = [action for action in command._actions if isinstance(action.choices, dict)]
            leaves += [leaf for action in nested for leaf in action.choices.values()] if nested else [command]
    for leaf in leaves:
        for action in leaf._actions:
            if action.dest in {"help"} or action.required or action.dest in {"image", "container", "inventory"}:
                continue
            assert action.help, f"{leaf.prog} {action.option_strings}: no help"
            assert "default" in action.help or "required" in action.help, (
                f"{leaf.prog} {action.option_strings}: no default"
            )


@pytest.mark.parametrize(
    ("pair", "expected"),
    [("a=1", {"a": "1"}), ("a=", {"a": ""}), ("a_b=x=y", {"a_b": "x=y"}), ("_x=1", {"_x": "1"})],
)
def test_extra_vars_valid(pair: str, expected: dict[str, str]) -> None:
    assert parse_extra_vars([pair]) == expected


@pytest.mark.parametrize(("pair", "reason"), [("novalue", "no '='"), ("1a=2", "not a valid"), ("a-b=1", "not a valid")])
def test_extra_vars_invalid(pair: str, reason: str) -> None:
    with pytest.raises(MqboxError) as raised:
        parse_extra_vars([pair])
    assert reason in str(raised.value)


def test_invalid_extra_vars_exit_1() -> None:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(["image", "build", "-e", "password"], stdout=out, stderr=err)
    assert rc == 1
    assert err.getvalue().startswith("mqbox: error: invalid -e value")
    assert "Traceback" not in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_missing_inventory_exit_1(tmp_path: Path) -> None:
    err = io.StringIO()
    rc = cli.main(["host", "provision", "-i", str(tmp_path / "absent.yml")], stdout=io.StringIO(), stderr=err)
    assert rc == 1
    assert "not found" in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_project_dir_found() -> None:
    assert is_project_dir(ROOT)
    assert find_project_dir() == ROOT


def test_project_dir_rejects_other_folder(tmp_path: Path) -> None:
    with pytest.raises(MqboxError) as raised:
        find_project_dir(tmp_path)
    assert "not an mqbox checkout" in str(raised.value)


def test_project_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MQBOX_PROJECT_DIR", str(tmp_path))
    with pytest.raises(MqboxError):
        find_project_dir()
    monkeypatch.setenv("MQBOX_PROJECT_DIR", str(ROOT))
    assert find_project_dir() == ROOT


def test_missing_vault_password_file_exit_1(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("mqbox:\n  hosts: {}\n", encoding="utf-8")
    err = io.StringIO()
    argv = ["host", "provision", "-i", str(inventory), "--vault-password-file", str(tmp_path / "absent")]
    rc = cli.main(argv, stdout=io.StringIO(), stderr=err)
    assert rc == 1
    assert "vault password file" in err.getvalue()
    assert "not found" in err.getvalue()
