"""Checks of the build_guards role on its three paths, one container each.

guards-plain: a base without /sbin/initctl, image target.
guards-initctl: a base with an Upstart-style /sbin/initctl, image target.
guards-host: like guards-initctl, then a host run that removes the guards.
"""

from __future__ import annotations

from typing import Any

UPSTART_MESSAGE = "Unable to connect to Upstart"


def _name(host: Any) -> str:
    name: str = host.backend.name
    return name


def test_policy_rc_d(host: Any) -> None:
    policy = host.file("/usr/sbin/policy-rc.d")
    if _name(host) == "guards-host":
        assert not policy.exists
        return
    assert policy.mode == 0o755
    assert host.run("/usr/sbin/policy-rc.d rabbitmq-server start").rc == 101


def test_initctl_diversion(host: Any) -> None:
    diversion = host.run("dpkg-divert --listpackage /sbin/initctl").stdout.strip()
    if _name(host) == "guards-initctl":
        assert diversion == "LOCAL"
    else:
        assert diversion == ""


def test_initctl_command(host: Any) -> None:
    initctl = host.file("/sbin/initctl")
    name = _name(host)
    if name == "guards-plain":
        assert not initctl.exists
    elif name == "guards-initctl":
        assert initctl.is_symlink
        assert initctl.linked_to == "/usr/bin/true"
        assert host.run("/sbin/initctl start ssh").rc == 0
        assert UPSTART_MESSAGE in host.file("/sbin/initctl.distrib").content_string
    else:
        assert not initctl.is_symlink
        assert UPSTART_MESSAGE in initctl.content_string
        assert not host.file("/sbin/initctl.distrib").exists
