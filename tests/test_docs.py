"""README.md and docs/*.md: every ```python block runs, every relative link resolves.

Each block runs in a fresh namespace inside a temporary working directory. Two visible markers,
an HTML comment on the line before a block, change that:

- ``<!-- not-run: REASON -->`` skips the block (it needs a trained run or takes minutes); there
  may be at most ``MAX_NOT_RUN`` of them in all, so the docs stay tested.
- ``<!-- module: NAME -->`` marks a block that is the text of a new module (the "Adding a method"
  walk-through): it runs as module ``NAME``, and the later blocks of the same page can import it.
  ``NAME`` must not exist in the package, so a doc can never shadow real code.

A block that defines functions named ``test_*`` has them called, so a test file shown in the docs
is run too.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
EXPECTED_PAGES = (
    "index.md",
    "training.md",
    "methods.md",
    "data-and-views.md",
    "photos.md",
    "scaling.md",
    "clip.md",
    "attention.md",
    "demo.md",
    "benchmarks.md",
    "experiments.md",
    "python-api.md",
    "architecture.md",
)
MAX_NOT_RUN = 3
README_MAX_CHARS = 15_000

NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>.*?)\s*-->")
MODULE = re.compile(r"<!--\s*module:\s*(?P<name>[\w.]+)\s*-->")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
URL_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    marker: str  # the line before the opening fence ("" when blank or absent)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def not_run_reason(self) -> str | None:
        found = NOT_RUN.search(self.marker)
        return found["reason"] if found else None

    @property
    def module_name(self) -> str | None:
        found = MODULE.search(self.marker)
        return found["name"] if found else None


def fenced_blocks(page: Path) -> list[Block]:
    """Return every fenced block of ``page`` in order (fences open and close at line start)."""
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    start = None
    for number, line in enumerate(lines):
        if start is None and line.startswith("```"):
            start, language = number, line[3:].strip()
        elif start is not None and line.strip() == "```":
            before = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
            code = "\n".join(lines[start + 1 : number]) + "\n"
            blocks.append(Block(page, start + 1, language, code, before.strip()))
            start = None
    assert start is None, f"{page.relative_to(ROOT)}:{start + 1}: unclosed code fence"
    return blocks


def python_blocks(page: Path) -> list[Block]:
    return [b for b in fenced_blocks(page) if b.language == "python"]


ALL_PYTHON = [block for page in PAGES for block in python_blocks(page)]
RUNNABLE = [block for block in ALL_PYTHON if block.not_run_reason is None]


def prose(page: Path) -> str:
    """Return the page without its fenced blocks and inline code (links there are not links)."""
    text = page.read_text(encoding="utf-8")
    for block in fenced_blocks(page):
        text = text.replace(block.code, "")
    return INLINE_CODE.sub("", text)


def anchors(page: Path) -> set[str]:
    """Return the heading anchors GitHub makes for ``page`` (lower case, punctuation dropped)."""
    blocks = fenced_blocks(page)
    in_code = {n for b in blocks for n in range(b.line, b.line + b.code.count("\n") + 2)}
    seen: dict[str, int] = {}
    lines = page.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if number in in_code or not re.match(r"#{1,6} ", line):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        seen[slug] = seen.get(slug, -1) + 1
    return {slug if n == 0 else f"{slug}-{k}" for slug, n in seen.items() for k in range(n + 1)}


def load_module(block: Block) -> types.ModuleType:
    """Run a ``<!-- module: NAME -->`` block as module NAME and register it in sys.modules."""
    name = block.module_name
    assert importlib.util.find_spec(name) is None, f"{block.where}: {name} exists in the package"
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(block.code, block.where, "exec"), module.__dict__)
    return module


def run_tests_defined(namespace: dict) -> None:
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value):
            value()


def test_docs_has_every_page():
    missing = [name for name in EXPECTED_PAGES if not (DOCS / name).is_file()]
    assert not missing, f"docs/ lacks {missing}"


def test_readme_is_short():
    size = len((ROOT / "README.md").read_text(encoding="utf-8"))
    assert size < README_MAX_CHARS, f"README.md has {size} characters; move detail to docs/"


def test_few_blocks_are_skipped_and_each_says_why():
    skipped = [b for b in ALL_PYTHON if b.not_run_reason is not None]
    assert len(skipped) <= MAX_NOT_RUN, [b.where for b in skipped]
    assert all(b.not_run_reason for b in skipped), "a not-run marker must give its reason"
    assert len(RUNNABLE) >= 8, "the docs' Python examples are meant to run"


@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_python_block_runs(block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    earlier = [
        b for b in python_blocks(block.page) if b.line < block.line and b.module_name is not None
    ]
    loaded = []
    try:
        for module_block in earlier:
            loaded.append(module_block.module_name)
            load_module(module_block)
        if block.module_name is not None:
            loaded.append(block.module_name)
            namespace = load_module(block).__dict__
        else:
            namespace = {"__name__": "__doc_block__"}
            exec(compile(block.code, block.where, "exec"), namespace)
        run_tests_defined(namespace)
    finally:
        for name in loaded:
            sys.modules.pop(name, None)


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    broken = []
    for found in LINK.finditer(prose(page)):
        target = found["target"]
        if URL_SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.is_relative_to(ROOT):
            broken.append(f"{target} (outside the repository)")
        elif not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            broken.append(f"{target} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"
