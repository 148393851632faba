"""Generate each role's README.md from its meta/argument_specs.yml.

Run `python -m mqbox.role_docs` from the repository root after changing an
argument spec; a unit test fails while a README is stale.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HEADER = "<!-- Generated from meta/argument_specs.yml by `python -m mqbox.role_docs`. Do not edit. -->"
_MARKUP = re.compile(r"\b[CIBMOV]\(([^)]*)\)")


def _plain(text: Any) -> str:
    """Turn Ansible doc markup such as C(x) into Markdown code spans."""
    return _MARKUP.sub(r"`\1`", " ".join(str(text).split()))


def _paragraphs(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [_plain(item) for item in items]


def _default(option: dict[str, Any]) -> str:
    if option.get("required"):
        return "required"
    if "default" not in option:
        return "see description"
    return f"`{yaml.safe_dump(option['default'], default_flow_style=True).strip().removesuffix('...').strip()}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(role_dir: Path) -> str:
    """Return the README of one role, rendered from its argument spec."""
    specs = yaml.safe_load((role_dir / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))["argument_specs"]
    main = specs["main"]
    lines = [HEADER, "", f"# Role `{role_dir.name}`", "", _plain(main["short_description"]), ""]
    for paragraph in _paragraphs(main.get("description")):
        lines += [paragraph, ""]

    for entry_point, spec in specs.items():
        title = "Variables" if entry_point == "main" else f"Variables of entry point `{entry_point}`"
        lines += [f"## {title}", ""]
        if entry_point != "main":
            lines += [_plain(spec["short_description"]), ""]
            for paragraph in _paragraphs(spec.get("description")):
                lines += [paragraph, ""]
        lines += ["| Variable | Type | Default | Description |", "| --- | --- | --- | --- |"]
        lines += _option_rows(spec.get("options", {}), prefix="")
        lines.append("")
    return "\n".join(lines)


def _option_rows(options: dict[str, Any], prefix: str) -> list[str]:
    """Return one table row per option; the options of a list of dicts follow as NAME[].KEY rows."""
    rows = []
    for name, option in options.items():
        kind = option.get("type", "str")
        if "elements" in option:
            kind = f"{kind} of {option['elements']}"
        description = " ".join(_paragraphs(option.get("description")))
        if "choices" in option:
            description += " Choices: " + ", ".join(f"`{choice}`" for choice in option["choices"]) + "."
        rows.append(f"| `{prefix}{name}` | {kind} | {_cell(_default(option))} | {_cell(description)} |")
        if "options" in option:
            rows += _option_rows(option["options"], prefix=f"{prefix}{name}[].")
    return rows


def role_dirs(root: Path) -> list[Path]:
    """List the roles under root/roles that have an argument spec."""
    return sorted(path.parent.parent for path in (root / "roles").glob("*/meta/argument_specs.yml"))


def main(argv: list[str] | None = None) -> int:
    """Write every role's README.md, or with --check report the stale ones."""
    parser = argparse.ArgumentParser(description="Generate role READMEs from their argument specs.")
    parser.add_argument("--root", type=Path, default=Path(), help="repository root (default: current folder)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a README is stale")
    arguments = parser.parse_args(argv)

    stale = []
    for role_dir in role_dirs(arguments.root):
        readme = role_dir / "README.md"
        text = render(role_dir)
        if readme.exists() and readme.read_text(encoding="utf-8") == text:
            continue
        stale.append(readme)
        if not arguments.check:
            readme.write_text(text, encoding="utf-8")
    for readme in stale:
        print(f"{'stale' if arguments.check else 'wrote'}: {readme}")
    return 1 if arguments.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
