"""The role READMEs must match their argument specs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqbox.role_docs import render, role_dirs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("role_dir", role_dirs(ROOT), ids=lambda path: path.name)
def test_role_readme_current(role_dir: Path) -> None:
    readme = role_dir / "README.md"
    assert readme.read_text(encoding="utf-8") == render(role_dir), (
        f"{readme} is stale: run `python -m mqbox.role_docs` and commit the result"
    )


def test_every_role_has_spec() -> None:
    roles = {path.name for path in (ROOT / "roles").iterdir() if path.is_dir()}
    assert roles == {path.name for path in role_dirs(ROOT)}
