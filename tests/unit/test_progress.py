"""The event handler and the run result, fed with events recorded from real ansible-runner runs.

tests/unit/data/*-events.jsonl come from `mqbox ... --json` runs, trimmed to the
fields mqbox reads (see data/README.md).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mqbox.playbook import BASE_ENVIRONMENT, HostStats, RunResult, _host_stats, filter_environment
from mqbox.progress import Progress, RunState, failure_message, summary

DATA = Path(__file__).parent / "data"


def _events(name: str) -> list[dict[str, Any]]:
    lines = (DATA / f"{name}-events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _replay(name: str, mode: str) -> tuple[Progress, str, str]:
    out, messages = io.StringIO(), io.StringIO()
    progress = Progress(out, mode, messages=messages)
    for event in _events(name):
        assert progress(event) is True
    return progress, out.getvalue(), messages.getvalue()


def _stats(name: str) -> dict[str, HostStats]:
    stats = [event for event in _events(name) if event["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    return _host_stats(stats[0]["event_data"])


def test_plain_lists_plays_and_tasks() -> None:
    _progress, out, messages = _replay("base", "plain")
    assert out == ""
    assert "play: Get the base image\n" in messages
    assert "task: Look for the base image\n" in messages
    assert "\x1b" not in messages


def test_live_rewrites_one_line() -> None:
    progress, out, messages = _replay("base", "live")
    assert out.count("\r\x1b[K") >= len(_events("base")) - 1
    assert "\n" not in out
    assert messages == ""
    assert progress.state.status_line().startswith("[Get the base image] Pull the base image  hosts 1/1")


def test_json_writes_every_event() -> None:
    _progress, out, messages = _replay("base", "json")
    lines = out.splitlines()
    assert [json.loads(line) for line in lines] == _events("base")
    assert messages == ""


def test_counts_successful_run() -> None:
    progress, _out, _messages = _replay("base", "plain")
    assert progress.state.failed == 0
    assert progress.state.unreachable == 0
    assert progress.state.tasks == 5
    assert _stats("base") == {"localhost": HostStats(ok=4, skipped=1)}


def test_failed_task_reported() -> None:
    progress, _out, messages = _replay("failed", "live")
    assert progress.state.failed == 1
    assert messages.startswith("failed: localhost: Check the image build variables: Validation of arguments failed")
    assert _stats("failed") == {"localhost": HostStats(failed=1)}


def test_unreachable_host_reported() -> None:
    progress, _out, messages = _replay("unreach", "json")
    assert progress.state.unreachable == 1
    assert messages.startswith("unreachable: mqbox-cli-unreachable: Gathering Facts: ")
    assert "Connection refused" in messages
    assert _stats("unreach") == {"mqbox-cli-unreachable": HostStats(unreachable=1)}


def test_ignored_failure_not_counted() -> None:
    event = {"event": "runner_on_failed", "event_data": {"host": "h", "task": "t", "ignore_errors": True, "res": {}}}
    state = RunState()
    state.update(event)
    assert state.failed == 0
    assert failure_message(event) is None


def test_censored_result_shows_no_output() -> None:
    event = {
        "event": "runner_on_failed",
        "event_data": {"host": "h", "task": "Set the password", "res": {"censored": "the output has been hidden"}},
    }
    assert failure_message(event) == "failed: h: Set the password: the output has been hidden"


def test_recap_and_summary() -> None:
    result = RunResult(status="failed", rc=4, hosts=_stats("unreach"), artifact_dir=Path("artifacts/run"))
    progress = Progress(io.StringIO(), "plain")
    progress.finish(result)
    text = progress.out.getvalue()  # type: ignore[attr-defined]
    assert "mqbox-cli-unreachable  ok=0 changed=0 failed=0 unreachable=1" in text
    assert "artifacts: artifacts/run" in text
    assert summary(result)["mqbox_result"]["hosts"]["mqbox-cli-unreachable"]["unreachable"] == 1


def test_unknown_mode_rejected() -> None:
    with pytest.raises(ValueError, match="unknown progress mode"):
        Progress(io.StringIO(), "fancy")


def test_environment_filter() -> None:
    environment = {
        "PATH": "/bin",
        "ANSIBLE_CONFIG": "x",
        "LC_ALL": "C",
        "AWS_SECRET_ACCESS_KEY": "s",
        "MY_TOKEN": "t",
        "ANSIBLE_STDOUT_CALLBACK": "awx_display",
        "PYTHONPATH": "/runner",
    }
    passed = filter_environment(environment, added_by_runner={"PYTHONPATH"}, passed={"MY_TOKEN"})
    assert set(passed) == {"PATH", "ANSIBLE_CONFIG", "LC_ALL", "MY_TOKEN", "ANSIBLE_STDOUT_CALLBACK", "PYTHONPATH"}
    assert "AWS_SECRET_ACCESS_KEY" not in filter_environment(dict(os.environ) | environment, set(), set())
    assert "DOCKER_HOST" in BASE_ENVIRONMENT


def test_image_build_counts() -> None:
    progress, _out, messages = _replay("image", "plain")
    stats = _stats("image")
    assert set(stats) == {"localhost", "mqbox-cli-build-rec"}
    assert progress.state.changed == sum(host.changed for host in stats.values())
    assert progress.state.failed == 0
    assert "play: Provision the image build container\n" in messages
    assert "Built mqbox-cli-image:rec (" in messages


def test_loop_items_not_counted_as_hosts() -> None:
    events = _events("image")
    assert any(event["event"].startswith("runner_item_on_") for event in events)
    state = RunState()
    for event in events:
        state.update(event)
        assert len(state.hosts_done) <= len(state.hosts_started) <= 2
