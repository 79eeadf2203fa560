"""The shell walkthroughs in README.md and docs/ run as written, against a fresh server and database."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_URL = "http://127.0.0.1:8000"
BLOCK = re.compile(r"```sh\n(.*?)```", re.S)


def walkthroughs() -> list[tuple[str, str]]:
    """(file, block) for every ```sh block that talks to a running server."""
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in BLOCK.findall(path.read_text(encoding="utf-8")):
            if f"B={EXAMPLE_URL}" in block:
                found.append((path.name, block))
    return found


def test_the_readme_has_a_walkthrough():
    assert any(name == "README.md" for name, _ in walkthroughs())


@pytest.mark.parametrize("name,block", walkthroughs(), ids=[name for name, _ in walkthroughs()])
def test_walkthrough_runs_as_written(server, name, block):
    script = "set -euo pipefail\n" + block.replace(EXAMPLE_URL, server.base_url)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{name}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    assert "internal_error" not in done.stdout
    if name == "README.md":
        out = done.stdout
        assert "has changed since rev" in out and out.count("precondition_failed") == 1, out
        assert '"role":"editor"' in out and '"title":"Apples"' in out, out
        assert "204\n204\n" in out and out.rstrip().endswith("}}") and '"unauthorized"' in out.splitlines()[-1], out
