"""Unit tests of the apt_components module on Ubuntu and Debian source files."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "roles" / "apt_sources" / "library"


def _load_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("apt_components", LIBRARY / "apt_components.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


apt_components = _load_module()

# /etc/apt/sources.list of an Ubuntu 22.04 image, shortened.
UBUNTU_JAMMY_LIST = """\
# See the release notes for how to upgrade to
# newer versions of the distribution.
deb http://archive.example.org/ubuntu/ jammy main restricted
# deb-src http://archive.example.org/ubuntu/ jammy main restricted

deb http://archive.example.org/ubuntu/ jammy-updates main restricted
deb [arch=amd64 signed-by=/k.gpg] http://security.example.org/ubuntu/ jammy-security main restricted # security
deb http://archive.example.org/ubuntu/ jammy multiverse
"""

# /etc/apt/sources.list.d/ubuntu.sources of an Ubuntu 24.04 image, shortened.
UBUNTU_NOBLE_SOURCES = """\
Types: deb
URIs: http://archive.example.org/ubuntu/
Suites: noble noble-updates noble-backports
Components: main restricted
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg

Types: deb
URIs: http://security.example.org/ubuntu/
Suites: noble-security
Components: main restricted universe multiverse
Signed-By: /usr/share/keyrings/ubuntu-archive-keyring.gpg
"""

THIRD_PARTY_SOURCES = """\
Types: deb
URIs: https://packages.example.org/repo
Suites: stable
Components: rabbitmq
"""


def test_one_line_adds_universe() -> None:
    result = apt_components.add_to_one_line(UBUNTU_JAMMY_LIST, ["universe"], "main")
    lines = result.splitlines()
    assert lines[2] == "deb http://archive.example.org/ubuntu/ jammy main restricted universe"
    assert lines[5] == "deb http://archive.example.org/ubuntu/ jammy-updates main restricted universe"
    assert lines[6].endswith("jammy-security main restricted universe # security")
    assert "signed-by=/k.gpg]" in lines[6]


def test_one_line_keeps_comments_and_other_entries() -> None:
    result = apt_components.add_to_one_line(UBUNTU_JAMMY_LIST, ["universe"], "main")
    lines = result.splitlines()
    assert lines[0] == UBUNTU_JAMMY_LIST.splitlines()[0]
    assert lines[3] == "# deb-src http://archive.example.org/ubuntu/ jammy main restricted"
    assert lines[7] == "deb http://archive.example.org/ubuntu/ jammy multiverse"


def test_one_line_second_run_unchanged() -> None:
    once = apt_components.add_to_one_line(UBUNTU_JAMMY_LIST, ["universe"], "main")
    assert apt_components.add_to_one_line(once, ["universe"], "main") == once


def test_deb822_adds_universe_once() -> None:
    result = apt_components.add_to_deb822(UBUNTU_NOBLE_SOURCES, ["universe"], "main")
    assert result.count("Components: main restricted universe\n") == 1
    assert "Components: main restricted universe multiverse\n" in result
    assert apt_components.add_to_deb822(result, ["universe"], "main") == result


def test_deb822_continuation_line() -> None:
    text = "Types: deb\nURIs: http://deb.example/\nSuites: x\nComponents: main\n contrib\n"
    result = apt_components.add_to_deb822(text, ["non-free"], "main")
    assert result == "Types: deb\nURIs: http://deb.example/\nSuites: x\nComponents: main\n contrib non-free\n"


def test_deb822_third_party_untouched() -> None:
    assert apt_components.add_to_deb822(THIRD_PARTY_SOURCES, ["universe"], "main") == THIRD_PARTY_SOURCES


def test_debian_bookworm_list_untouched_without_components() -> None:
    text = "deb http://mirror.example.org/debian bookworm main\n"
    assert apt_components.add_to_one_line(text, [], "main") == text


def _run_module(root: Path, *, check_mode: bool = False) -> dict[str, Any]:
    """Run the module through ansible itself, as a role task would, and return its result."""
    arguments = json.dumps({"components": ["universe"], "root": str(root)})
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "--connection=local",
        "--inventory=localhost,",
        f"--extra-vars=ansible_python_interpreter={sys.executable}",
        f"--module-path={LIBRARY}",
        "--module-name=apt_components",
        f"--args={arguments}",
    ]
    if check_mode:
        command.append("--check")
    environment = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environment)
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return report


@pytest.fixture
def ubuntu_root(tmp_path: Path) -> Path:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(UBUNTU_JAMMY_LIST, encoding="utf-8")
    (tmp_path / "sources.list.d" / "ubuntu.sources").write_text(UBUNTU_NOBLE_SOURCES, encoding="utf-8")
    (tmp_path / "sources.list.d" / "vendor.sources").write_text(THIRD_PARTY_SOURCES, encoding="utf-8")
    return tmp_path


def test_module_check_mode_changes_nothing(ubuntu_root: Path) -> None:
    report = _run_module(ubuntu_root, check_mode=True)
    assert report["changed"] is True
    assert (ubuntu_root / "sources.list").read_text(encoding="utf-8") == UBUNTU_JAMMY_LIST


def test_module_changes_then_idempotent(ubuntu_root: Path) -> None:
    first = _run_module(ubuntu_root)
    assert first["changed"] is True
    assert sorted(Path(path).name for path in first["files"]) == ["sources.list", "ubuntu.sources"]
    assert "universe" in (ubuntu_root / "sources.list").read_text(encoding="utf-8")

    second = _run_module(ubuntu_root)
    assert second["changed"] is False
    assert (ubuntu_root / "sources.list.d" / "vendor.sources").read_text(encoding="utf-8") == THIRD_PARTY_SOURCES
