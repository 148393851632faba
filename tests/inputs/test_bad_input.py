"""site.yml with bad input fails in validation, naming the variable, before it changes a host.

Runs against a converged test host of the Molecule scenario `host`: MQBOX_INVENTORY names its
inventory, MQBOX_INPUT_HOST the host and MQBOX_EXTRA_VARS the scenario's extra-vars file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra.tls import write_test_pki

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    pytest.param({"sshd_port": "abc"}, ["sshd_port", "int"], id="port-not-a-number"),
    pytest.param({"mqbox_target": "vm"}, ["mqbox_target", "image", "host"], id="unknown-target"),
    pytest.param({"rabbitmq_admin_password": ""}, ["rabbitmq_admin_password"], id="empty-admin-password"),
    pytest.param({"locale_names": ["xx_YY.UTF-8"]}, ["locale_names", "xx_YY.UTF-8"], id="unknown-locale"),
    pytest.param({"monit_check_interval": 60}, ["monit_check_interval"], id="check-interval-too-long"),
    pytest.param({"apt_sources_upgrade_type": "full"}, ["apt_sources_upgrade_type", "dist"], id="unknown-upgrade"),
    pytest.param(
        {"sshd_ciphers": ["aes128-cbc-typo"]}, ["sshd_ciphers", "aes256-gcm@openssh.com"], id="unknown-cipher"
    ),
    pytest.param({"sshd_kex_algorithms": []}, ["sshd_kex_algorithms", "curve25519-sha256"], id="empty-kex-list"),
    pytest.param(
        {"sshd_permit_root_login": "yes"}, ["sshd_permit_root_login", "prohibit-password"], id="root-password-login"
    ),
    pytest.param({"rabbitmq_start_timeout": 5}, ["rabbitmq_start_timeout", "10"], id="start-timeout-too-short"),
    pytest.param(
        {"rabbitmq_start_timeout": 600},
        ["rabbitmq_start_timeout", "monit_check_interval"],
        id="start-timeout-over-64-cycles",
    ),
    pytest.param({"rabbitmq_amqp_port": 70000}, ["rabbitmq_amqp_port"], id="amqp-port-out-of-range"),
    pytest.param(
        {"rabbitmq_plugins": ["rabbitmq_managment"]}, ["rabbitmq_plugins", "rabbitmq_managment"], id="unknown-plugin"
    ),
    pytest.param({"rabbitmq_users": [{"name": "orders"}]}, ["rabbitmq_users", "password"], id="user-without-password"),
    # {pki} stands for a folder with a throw-away CA, certificate and keys (tests/infra/tls.py). The
    # scenario sets both TLS files for its hosts, so a case that needs one unset sets it to "".
    pytest.param(
        {"rabbitmq_tls_certificate_src": "{pki}/cert.pem", "rabbitmq_tls_key_src": ""},
        ["rabbitmq_tls_key_src"],
        id="certificate-without-key",
    ),
    pytest.param(
        {"rabbitmq_tls_certificate_src": "{pki}/cert.pem", "rabbitmq_tls_key_src": "{pki}/missing-key.pem"},
        ["rabbitmq_tls_key_src", "missing-key.pem", "readable"],
        id="unreadable-key",
    ),
    pytest.param(
        {"rabbitmq_tls_certificate_src": "{pki}/cert.pem", "rabbitmq_tls_key_src": "{pki}/other-key.pem"},
        ["rabbitmq_tls_key_src", "not the key of", "rabbitmq_tls_certificate_src"],
        id="key-of-another-certificate",
    ),
    pytest.param(
        {"rabbitmq_amqp_plain": False, "rabbitmq_tls_certificate_src": "", "rabbitmq_tls_key_src": ""},
        ["rabbitmq_amqp_plain", "TLS"],
        id="plain-off-without-tls",
    ),
]


def _run_site(extra_vars: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    inventory = os.environ.get("MQBOX_INVENTORY")
    host = os.environ.get("MQBOX_INPUT_HOST")
    if not inventory or not host:
        pytest.skip("MQBOX_INVENTORY and MQBOX_INPUT_HOST are not set: run through the Molecule scenario host")
    command = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        f"--inventory={inventory}",
        f"--limit={host}",
        f"--extra-vars=@{os.environ['MQBOX_EXTRA_VARS']}",
        f"--extra-vars={json.dumps(extra_vars)}",
        str(ROOT / "site.yml"),
    ]
    environment = {**os.environ, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, env=environment)
    return result.returncode, json.loads(result.stdout)


def _failure_messages(report: dict[str, Any]) -> str:
    messages = []
    for play in report["plays"]:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed"):
                    messages.append(str(result.get("msg", "")))
                    messages.extend(
                        str(item.get("msg", "")) for item in result.get("results", []) if item.get("failed")
                    )
    return "\n".join(messages)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    write_test_pki(folder)
    return folder


@pytest.mark.parametrize(("extra_vars", "expected_words"), CASES)
def test_bad_input_rejected(extra_vars: dict[str, Any], expected_words: list[str], pki: Path) -> None:
    resolved = {
        name: value.replace("{pki}", str(pki)) if isinstance(value, str) else value
        for name, value in extra_vars.items()
    }
    returncode, report = _run_site(resolved)
    assert returncode == 2
    messages = _failure_messages(report)
    for word in expected_words:
        assert word in messages, f"the error does not name {word!r}:\n{messages}"
    host = os.environ["MQBOX_INPUT_HOST"]
    assert report["stats"][host]["changed"] == 0
    assert report["stats"][host]["failures"] == 1
