"""The error type of mqbox's own failures, as opposed to failures that Ansible reports."""

from __future__ import annotations


class MqboxError(Exception):
    """A failure that mqbox detects itself, before or around an Ansible run.

    The message is one line that states what is wrong and what to do. The CLI
    prints it without a traceback and exits with `exit_code`.
    """

    exit_code = 1
