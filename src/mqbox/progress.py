"""Show the events of an ansible-runner run as progress, plain lines or JSON lines."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Any, TextIO

from mqbox.playbook import Event, RunResult

# Events that end one host's part of a task. runner_item_on_* events report
# single loop items and are followed by one of these for the whole task.
HOST_DONE_EVENTS = frozenset(
    {"runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable", "runner_on_async_failed"}
)

DEBUG_ACTIONS = frozenset({"debug", "ansible.builtin.debug", "ansible.legacy.debug"})


@dataclass
class RunState:
    """Position and counts of a run, built from its events."""

    play: str = ""
    task: str = ""
    hosts_started: set[str] = field(default_factory=set)
    hosts_done: set[str] = field(default_factory=set)
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    tasks: int = 0

    def update(self, event: Event) -> None:
        """Count one event."""
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            self.play = str(data.get("play") or data.get("name") or "")
        elif kind in {"playbook_on_task_start", "playbook_on_handler_task_start"}:
            self.task = str(data.get("task") or data.get("name") or "")
            self.tasks += 1
            self.hosts_started.clear()
            self.hosts_done.clear()
        elif kind == "runner_on_start":
            self.hosts_started.add(str(data.get("host")))
        elif kind in HOST_DONE_EVENTS:
            host = str(data.get("host"))
            self.hosts_started.add(host)
            self.hosts_done.add(host)
            result = data.get("res") or {}
            if kind == "runner_on_unreachable":
                self.unreachable += 1
            elif kind in {"runner_on_failed", "runner_on_async_failed"} and not data.get("ignore_errors"):
                self.failed += 1
            elif isinstance(result, dict) and result.get("changed"):
                self.changed += 1

    def status_line(self) -> str:
        """Return the one-line summary: play, task, hosts done of total, counts."""
        return (
            f"[{self.play}] {self.task}  hosts {len(self.hosts_done)}/{len(self.hosts_started)}"
            f"  changed {self.changed}  failed {self.failed}  unreachable {self.unreachable}"
        )


def failure_message(event: Event) -> str | None:
    """Return the line reporting a failed or unreachable host, or None for any other event."""
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind not in {"runner_on_failed", "runner_on_unreachable", "runner_on_async_failed"}:
        return None
    if data.get("ignore_errors"):
        return None
    result = data.get("res") or {}
    reason = ""
    if isinstance(result, dict):
        # A no_log task's result has only `censored` in place of its output.
        reason = str(result.get("msg") or result.get("censored") or result.get("stderr") or "").strip()
    state = "unreachable" if kind == "runner_on_unreachable" else "failed"
    return f"{state}: {data.get('host')}: {data.get('task', '')}: {' '.join(reason.split())}"


def debug_message(event: Event) -> list[str]:
    """Return the lines of a debug task's message, which playbooks use to report results."""
    data = event.get("event_data") or {}
    if event.get("event") != "runner_on_ok" or data.get("task_action") not in DEBUG_ACTIONS:
        return []
    message = (data.get("res") or {}).get("msg")
    if message is None:
        return []
    lines = message if isinstance(message, list) else str(message).splitlines()
    return [str(line) for line in lines]


def error_lines(event: Event) -> list[str]:
    """Return ansible-playbook's own error lines, which reach the events only as verbose output."""
    if event.get("event") != "verbose":
        return []
    lines = str(event.get("stdout") or "").splitlines()
    return [line for line in lines if line.startswith(("ERROR!", "[ERROR]"))]


class Progress:
    """An event handler for run_playbook that writes what the run does.

    Modes: `live` rewrites one status line on a terminal, `plain` writes one
    line per play and task, `json` writes every event as one JSON line. In
    every mode failures, debug messages and ansible's errors are written as
    lines; in json mode they go to `messages`, not to `out`.
    """

    def __init__(self, out: TextIO, mode: str, messages: TextIO | None = None) -> None:
        if mode not in {"live", "plain", "json"}:
            raise ValueError(f"unknown progress mode {mode!r}: use live, plain or json")
        self.out = out
        self.mode = mode
        self.messages = messages or out
        self.state = RunState()
        self._status_shown = False

    def __call__(self, event: Event) -> bool:
        self.state.update(event)
        if self.mode == "json":
            self.out.write(json.dumps(event, sort_keys=True, default=str) + "\n")
            self.out.flush()
        kind = event.get("event", "")

        lines = error_lines(event) + debug_message(event)
        failure = failure_message(event)
        if failure:
            lines.append(failure)
        if self.mode == "plain":
            if kind == "playbook_on_play_start":
                lines.insert(0, f"play: {self.state.play}")
            elif kind in {"playbook_on_task_start", "playbook_on_handler_task_start"}:
                lines.insert(0, f"task: {self.state.task}")
        for line in lines:
            self.message(line)
        if self.mode == "live" and self.state.play:
            self._show_status()
        return True

    def message(self, line: str) -> None:
        """Write a line that stays, above the live status line."""
        self._clear_status()
        self.messages.write(line + "\n")
        self.messages.flush()

    def finish(self, result: RunResult) -> None:
        """Clear the status line and write the per-host recap and the artifact folder."""
        self._clear_status()
        for line in recap_lines(result):
            self.messages.write(line + "\n")
        self.messages.flush()

    def _show_status(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.out.write("\r\x1b[K" + self.state.status_line()[:width])
        self.out.flush()
        self._status_shown = True

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[K")
            self.out.flush()
            self._status_shown = False


def recap_lines(result: RunResult) -> list[str]:
    """Return the per-host recap of a run and where its artifacts are."""
    lines = []
    if result.reused_image:
        lines.append(f"reused the cached image as {result.reused_image}: nothing it was built from changed")
    if result.hosts:
        width = max(len(name) for name in result.hosts)
        lines.append("recap:")
        for name, stats in result.hosts.items():
            lines.append(
                f"  {name:<{width}}  ok={stats.ok} changed={stats.changed} failed={stats.failed} "
                f"unreachable={stats.unreachable} skipped={stats.skipped} rescued={stats.rescued} "
                f"ignored={stats.ignored}"
            )
    lines.append(f"status: {result.status} (exit {result.rc})")
    if result.artifact_dir is not None:
        lines.append(f"artifacts: {result.artifact_dir}")
    return lines


def summary(result: RunResult) -> dict[str, Any]:
    """Return the result as a JSON-ready mapping, the last line of --json output."""
    return {
        "mqbox_result": {
            "status": result.status,
            "rc": result.rc,
            "artifact_dir": str(result.artifact_dir) if result.artifact_dir else None,
            "hosts": {name: vars(stats) for name, stats in result.hosts.items()},
            "reused_image": result.reused_image,
        }
    }
