"""The code blocks of a Markdown page, with the test directives written before them.

Convention (README.md and docs/*.md; see docs/contributing.md):

- every ```python block runs, in page order, in one interpreter per page (a later block sees
  what an earlier one defined), with the page's temporary directory as working directory;
- ``<!-- test: fragment -->`` before a block: Python that is only parsed (it names things the
  page does not define, or shows part of a file);
- ``<!-- test: skip -->``: not run, not parsed;
- ``<!-- test: output -->`` before a ```text block: what the page's Python printed since the
  previous output block, exactly (a line ``...`` matches any number of lines);
- ``<!-- test: file PATH -->`` before a block: its text is written to PATH (then the block is
  not run); ``<!-- test: file PATH`` on a line of its own, the file's text, then ``-->``: a
  file the reader does not need to see (settings, ``manage.py``);
- ``<!-- test: run -->`` before a ```console block: each ``$ command`` runs in a shell in the
  page's directory; the lines after it, if any, are its exact output (``...`` as above);
  before a ```bash block: the block runs as one ``bash -e`` script;
- ``<!-- test: install -->``: install lines, run by tests/docs/test_release.py in a fresh
  copy of the checkout with a fresh virtualenv;
- ```bash, ```console, ```toml... blocks without a directive are not run.

A page that contains the URL ``postgresql://postgres@127.0.0.1:5432/postgres`` (any
``+driver``) runs once per test server, on a fresh database that replaces that URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^```(?P<info>[^`\n]*)$")
DIRECTIVE = re.compile(r"^<!-- test: (?P<kind>[\w-]+)(?P<arg>[^\n]*?)\s*(?P<end>-->)?$")
LOCAL_URL = re.compile(r"postgresql(?P<driver>\+\w+)?://postgres@127\.0\.0\.1:5432/postgres")
KINDS = ("fragment", "skip", "output", "file", "run", "install")


@dataclass(frozen=True)
class Block:
    """One fenced block (``language`` "" for none), or a hidden file (``language`` "file")."""

    page: str
    line: int
    language: str
    text: str
    directive: str = ""
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


class DirectiveError(ValueError):
    pass


def blocks(path: Path, root: Path) -> list[Block]:
    """Every fenced block of the page, and its hidden files, in page order."""
    page = str(path.relative_to(root))
    lines = path.read_text().splitlines()
    found: list[Block] = []
    pending: tuple[str, str, int] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        directive = DIRECTIVE.match(line.strip())
        if directive:
            kind, arg = directive["kind"], directive["arg"].strip()
            if kind not in KINDS:
                raise DirectiveError(f"{page}:{i + 1}: unknown test directive {kind!r}")
            if directive["end"] is None:  # a hidden file: its text runs to the closing -->
                if kind != "file" or not arg:
                    raise DirectiveError(f"{page}:{i + 1}: only 'file PATH' spans lines")
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "-->")
                text = "\n".join(lines[i + 1 : end]) + "\n"
                found.append(Block(page, i + 1, "file", text, "file", arg))
                i = end + 1
                continue
            pending = (kind, arg, i + 1)
            i += 1
            continue
        fence = FENCE.match(line)
        if fence:
            info = fence["info"].strip()
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            kind, arg = ("", "")
            if pending is not None:
                if pending[2] != i:  # the directive must sit on the line before the fence
                    raise DirectiveError(f"{page}:{pending[2]}: directive not followed by a block")
                kind, arg = pending[0], pending[1]
            language = info.split()[0] if info else ""
            text = "\n".join(lines[i + 1 : end]) + "\n"
            found.append(Block(page, i + 2, language, text, kind, arg))
            pending = None
            i = end + 1
            continue
        if pending is not None and line.strip():
            raise DirectiveError(f"{page}:{pending[2]}: directive not followed by a block")
        i += 1
    return found


def needs_database(path: Path) -> bool:
    return bool(LOCAL_URL.search(path.read_text()))
