#!/usr/bin/python
"""Ansible module: add archive components to APT source entries."""

from __future__ import annotations

import glob
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: apt_components
short_description: Add archive components to APT source entries
description:
  - Adds components (for example C(universe) on Ubuntu) to every APT source entry that already
    lists the anchor component (C(main) by default), so third-party repositories stay untouched.
  - Reads both the one-line format (C(sources.list), C(*.list)) and the deb822 format
    (C(*.sources)), and keeps comments, options and the order of existing components.
  - Supports check mode and diff mode.
options:
  components:
    description: Components that every matching entry must list.
    type: list
    elements: str
    required: true
  anchor:
    description: Only entries that list this component are changed.
    type: str
    default: main
  root:
    description: APT configuration directory that holds C(sources.list) and C(sources.list.d).
    type: path
    default: /etc/apt
author: mqbox developers
"""

EXAMPLES = r"""
- name: Enable universe on Ubuntu
  apt_components:
    components: [universe]
"""

RETURN = r"""
files:
  description: Source files that were changed (or would be, in check mode).
  type: list
  elements: str
  returned: always
"""

ONE_LINE_TYPES = ("deb", "deb-src")
COMPONENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+-]*$")


def add_to_one_line(text: str, components: list[str], anchor: str) -> str:
    """Return one-line format source text with the components added to matching entries."""
    lines = []
    for line in text.splitlines(keepends=True):
        lines.append(_add_to_one_line_entry(line, components, anchor))
    return "".join(lines)


def _add_to_one_line_entry(line: str, components: list[str], anchor: str) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    entry, hash_sign, comment = body.partition("#")
    words = entry.split()
    if not words or words[0] not in ONE_LINE_TYPES:
        return line

    # Options in brackets may contain spaces: "[ arch=amd64 signed-by=/k.gpg ]".
    position = 1
    if position < len(words) and words[position].startswith("["):
        while position < len(words) and not words[position].endswith("]"):
            position += 1
        position += 1
    existing = words[position + 2 :]  # after the URI and the suite
    missing = [name for name in components if name not in existing]
    if anchor not in existing or not missing:
        return line

    stripped = entry.rstrip()
    return stripped + " " + " ".join(missing) + entry[len(stripped) :] + hash_sign + comment + newline


def add_to_deb822(text: str, components: list[str], anchor: str) -> str:
    """Return deb822 format source text with the components added to matching stanzas."""
    lines = text.splitlines(keepends=True)
    index = 0
    while index < len(lines):
        match = re.match(r"^Components:(.*)$", lines[index].rstrip("\n"), re.IGNORECASE)
        if not match:
            index += 1
            continue

        # A field may continue on lines that start with white space.
        end = index + 1
        while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
            end += 1
        existing = " ".join([match.group(1)] + [line.strip() for line in lines[index + 1 : end]]).split()
        missing = [name for name in components if name not in existing]
        if anchor in existing and missing:
            last = end - 1
            newline = "\n" if lines[last].endswith("\n") else ""
            lines[last] = lines[last].rstrip("\n").rstrip() + " " + " ".join(missing) + newline
        index = end
    return "".join(lines)


def source_files(root: str) -> list[str]:
    """List the APT source files under root, in the order APT reads them."""
    paths = []
    main_list = os.path.join(root, "sources.list")
    if os.path.isfile(main_list):
        paths.append(main_list)
    parts = os.path.join(root, "sources.list.d")
    paths.extend(sorted(glob.glob(os.path.join(parts, "*.list")) + glob.glob(os.path.join(parts, "*.sources"))))
    return paths


def rewrite(path: str, text: str, components: list[str], anchor: str) -> str:
    """Return the new text of one source file."""
    if path.endswith(".sources"):
        return add_to_deb822(text, components, anchor)
    return add_to_one_line(text, components, anchor)


def _write_atomically(module: AnsibleModule, path: str, text: str) -> None:
    directory = os.path.dirname(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".apt_components.")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text)
    module.atomic_move(temporary, path)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "components": {"type": "list", "elements": "str", "required": True},
            "anchor": {"type": "str", "default": "main"},
            "root": {"type": "path", "default": "/etc/apt"},
        },
        supports_check_mode=True,
    )
    components = module.params["components"]
    anchor = module.params["anchor"]
    invalid = [name for name in [*components, anchor] if not COMPONENT_PATTERN.match(name)]
    if invalid:
        module.fail_json(msg=f"invalid component name(s) {invalid}: use archive component names such as 'universe'")

    changed_files = []
    diffs = []
    for path in source_files(module.params["root"]):
        with open(path, encoding="utf-8") as stream:
            before = stream.read()
        after = rewrite(path, before, components, anchor)
        if after == before:
            continue

        changed_files.append(path)
        diffs.append({"before_header": path, "after_header": path, "before": before, "after": after})
        if not module.check_mode:
            _write_atomically(module, path, after)

    result = {"changed": bool(changed_files), "files": changed_files}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
