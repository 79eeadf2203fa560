"""The repository documents itself: nothing points outside it, every link resolves, docs cover the routes."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from todopy.realtime.frames import Violation
from todopy.realtime.protocol import Close
from todopy.routes import url_map

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
OUTSIDE = "../" + "shared"   # spelled in two parts so that this file does not match itself
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def tracked_files() -> list[Path]:
    """The files git tracks (a clone has exactly these), or, outside a git checkout, the tree's own."""
    if shutil.which("git") and (ROOT / ".git").exists():
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        return [ROOT / name for name in listed.decode().split("\0") if name]
    skipped = {".git", ".venv", "node_modules", "dist", "build", "var", "test-artifacts", "__pycache__"}
    return [p for p in ROOT.rglob("*") if p.is_file() and not any(
        part in skipped or part.endswith(".egg-info") for part in p.relative_to(ROOT).parts)]


def anchors(markdown: str) -> set[str]:
    """The fragment ids a Markdown renderer gives the headings (GitHub's rules)."""
    found = set()
    for heading in re.findall(r"^#+\s+(.*)$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        found.add(slug)
    return found


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = []
    for path in tracked_files():
        relative = path.relative_to(ROOT)
        if relative.parts[0] == ".ci" or path.is_symlink() or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [f"{relative}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE in line]
    assert not offenders, f"these lines refer to {OUTSIDE}, which a clone does not have: {offenders}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):      # http:, https:, mailto:: not ours to check
            continue
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target} (no such file)")
        elif not linked.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked.read_text(encoding="utf-8")):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{document.relative_to(ROOT)}: broken links: {broken}"


def test_the_readme_points_into_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in ("api.md", "design.md", "operations.md"):
        assert f"(docs/{name})" in readme


def test_the_api_reference_names_every_route() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    missing = []
    for rule in url_map.iter_rules():
        # <uuid:todo_id> in the code, <id> in the docs: any placeholder stands for any other.
        pattern = re.escape(re.sub(r"<[^>]+>", "\0", rule.rule)).replace("\0", "<[^>]+>")
        if not re.search(pattern + r"(?![\w/])", api):
            missing.append(rule.rule)
    assert not missing, f"docs/api.md does not document {missing}"


def test_the_api_reference_lists_every_close_code() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    codes = {int(code) for code in [*Close, *Violation]}
    assert codes, "no close codes found in todopy.realtime.protocol and .frames"
    assert not {code for code in codes if f"`{code}`" not in api}
