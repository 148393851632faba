"""Keys of the image build cache: which inputs change which layers."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mqbox import api, build_cache

ROLES = ["build_guards", "apt_sources", "monit", "sshd"]
BASE = "sha256:" + "a" * 64
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in (*build_cache.BUILD_FILES, *build_cache.FINAL_FILES):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"# {name}\n", encoding="utf-8")
    for role in ROLES:
        tasks = tmp_path / "roles" / role / "tasks"
        tasks.mkdir(parents=True)
        (tasks / "main.yml").write_text(f"- name: {role}\n", encoding="utf-8")
    return tmp_path


def keys(project: Path, variables: dict[str, object] | None = None, base: str = BASE) -> list[str]:
    return [key for _role, key in build_cache.layer_keys(project, base, ROLES, variables or {})]


def test_keys_are_stable(project: Path) -> None:
    assert keys(project) == keys(project)
    assert len(set(keys(project))) == len(ROLES)


def test_role_file_change_keeps_earlier_layers(project: Path) -> None:
    before = keys(project)
    (project / "roles" / "monit" / "templates").mkdir()
    (project / "roles" / "monit" / "templates" / "monitrc.j2").write_text("set daemon 2\n", encoding="utf-8")
    after = keys(project)
    assert after[:2] == before[:2]
    assert after[2] != before[2]
    assert after[3] != before[3]


def test_role_variable_changes_from_that_role(project: Path) -> None:
    before = keys(project, {"sshd_port": 22})
    after = keys(project, {"sshd_port": 2222})
    assert after[:3] == before[:3]
    assert after[3] != before[3]


def test_common_variable_changes_every_layer(project: Path) -> None:
    before = keys(project, {"mqbox_base_image": "debian:bookworm"})
    after = keys(project, {"mqbox_base_image": "debian:trixie"})
    assert all(old != new for old, new in zip(before, after, strict=True))


def test_base_image_changes_every_layer(project: Path) -> None:
    other = "sha256:" + "b" * 64
    assert all(old != new for old, new in zip(keys(project), keys(project, base=other), strict=True))


@pytest.mark.parametrize(
    "name",
    ["mqbox_image_name", "mqbox_image_tag", "mqbox_build_container", "mqbox_target", "mqbox_test_dir", "other_var"],
)
def test_naming_variables_change_nothing(project: Path, name: str) -> None:
    assert keys(project, {name: "one"}) == keys(project, {name: "two"})


def test_build_playbook_change_changes_every_layer(project: Path) -> None:
    before = keys(project)
    (project / "playbooks" / "image_roles.yml").write_text("# changed\n", encoding="utf-8")
    assert all(old != new for old, new in zip(before, keys(project), strict=True))


def test_final_key_follows_revision_and_environment(project: Path) -> None:
    last = keys(project)[-1]
    plain = build_cache.final_key(project, last, {}, "r1")
    assert build_cache.final_key(project, last, {}, "r1") == plain
    assert build_cache.final_key(project, last, {}, "r2") != plain
    assert build_cache.final_key(project, last, {"mqbox_image_env": {"LANG": "C.UTF-8"}}, "r1") != plain


def test_final_variables_keep_layers(project: Path) -> None:
    assert keys(project, {"mqbox_image_env": {"LANG": "C"}}) == keys(project, {"mqbox_image_env": {"LANG": "en"}})


def test_commit_playbook_change_keeps_layers(project: Path) -> None:
    before = keys(project)
    last = before[-1]
    final = build_cache.final_key(project, last, {}, "r1")
    (project / "playbooks" / "image_commit.yml").write_text("# changed\n", encoding="utf-8")
    assert keys(project) == before
    assert build_cache.final_key(project, last, {}, "r1") != final


def test_main_prints_plan(project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"sshd_port": 22})))
    arguments = ["--project-dir", str(project), "--base-image-id", BASE, "--repository", "cache", "--no-lookup"]
    arguments += [f"--role={role}" for role in ROLES]
    assert build_cache.main(arguments) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [layer["role"] for layer in plan["layers"]] == ROLES
    assert [layer["key"] for layer in plan["layers"]] == keys(project, {"sshd_port": 22})
    assert not any(layer["cached"] for layer in plan["layers"])
    assert plan["final_cached"] is False
    assert plan["repository"] == "cache"


def test_main_rejects_non_object(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("[]"))
    with pytest.raises(SystemExit) as error:
        build_cache.main(
            ["--project-dir", str(project), "--base-image-id", BASE, "--repository", "cache", "--no-lookup"]
        )
    assert error.value.code == 2


@pytest.mark.parametrize("value", [False, "false", "no", "0"])
def test_disabled_cache_skips_reuse(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_arguments: object, **_options: object) -> None:
        raise AssertionError("the cache lookup ran although mqbox_image_cache is off")

    monkeypatch.setattr(build_cache, "reuse_final_image", fail)
    assert api._reuse_cached_image(PROJECT_ROOT, {"mqbox_image_cache": value}) is None
