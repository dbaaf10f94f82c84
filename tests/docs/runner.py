"""Runs one Markdown page's code blocks (``python tests/docs/runner.py PAGE ROOT``), in the
current directory, as tests/docs/pageblocks.py describes; exits non-zero at the first block
that fails, naming it (``README.md:42``).

Environment: ``PGTRIGGER_DOCS_URL``, the libpq URL of a fresh test database that replaces the
page's ``postgresql://postgres@127.0.0.1:5432/postgres``; commands also get it as
``DATABASE_URL`` and as ``PGHOST``/``PGPORT``/``PGUSER``/``PGDATABASE``.
"""

from __future__ import annotations

import ast
import contextlib
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).parent))
import pageblocks

sys.path.pop(0)
sys.path.insert(0, os.getcwd())  # as ``python script.py`` in the page's directory would


class DocError(AssertionError):
    pass


def localize(text: str, url: str | None) -> str:
    if url is None:
        return text
    rest = url.split("://", 1)[1]
    return pageblocks.LOCAL_URL.sub(lambda m: f"postgresql{m['driver'] or ''}://{rest}", text)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def matches(actual: str, expected: str) -> bool:
    """Line by line, colours and trailing blanks ignored (what a reader sees on a terminal);
    an expected line ``...`` matches any lines."""
    got = "\n".join(line.rstrip() for line in ANSI.sub("", actual).strip("\n").splitlines())
    parts = []
    for line in expected.strip("\n").splitlines():
        parts.append(r"(?:.*\n?)*?" if line.strip() == "..." else re.escape(line.rstrip()) + r"\n?")
    return re.fullmatch("".join(parts), got + "\n" if got else "") is not None or (
        re.fullmatch("".join(parts), got) is not None
    )


def command_env(url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if url:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        env["DATABASE_URL"] = url
        env["PGDATABASE"] = unquote(parts.path.lstrip("/"))
        env["PGUSER"] = unquote(parts.username or "postgres")
        env["PGHOST"] = query.get("host") or parts.hostname or ""
        env["PGPORT"] = query.get("port") or str(parts.port or 5432)
    return env


def run_console(block: pageblocks.Block, text: str, env: dict[str, str]) -> None:
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise DocError(f"{block.where}: console line {lines[i]!r} belongs to no command")
        command = lines[i][2:]
        j = i + 1
        while j < len(lines) and not lines[j].startswith("$ "):
            j += 1
        expected = "\n".join(lines[i + 1 : j])
        proc = subprocess.run(
            command, shell=True, env=env, capture_output=True, text=True, timeout=300
        )
        if proc.returncode != 0:
            raise DocError(
                f"{block.where}: `{command}` exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            )
        if expected.strip() and not matches(proc.stdout, expected):
            raise DocError(
                f"{block.where}: `{command}` printed\n{proc.stdout}--- the page says\n{expected}"
            )
        i = j


def main(page: str, root: str) -> None:
    url = os.environ.get("PGTRIGGER_DOCS_URL") or None
    env = command_env(url)
    # The page's code runs as the __main__ module (SQLAlchemy resolves annotations there).
    page_module = types.ModuleType("__main__")
    sys.modules["__main__"] = page_module
    namespace = page_module.__dict__
    printed = io.StringIO()
    for block in pageblocks.blocks(Path(root, page), Path(root)):
        text = localize(block.text, url)
        kind, language = block.directive, block.language
        if kind in ("skip", "install"):
            continue
        if kind == "file":
            target = Path(block.argument)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        elif kind == "output":
            if not matches(printed.getvalue(), block.text):
                raise DocError(
                    f"{block.where}: the code printed\n{printed.getvalue()}--- the page says\n"
                    f"{block.text}"
                )
            printed = io.StringIO()
        elif kind == "run" and language == "console":
            run_console(block, text, env)
        elif kind == "run" and language in ("bash", "sh"):
            proc = subprocess.run(["bash", "-e", "-c", text], env=env, timeout=300)
            if proc.returncode:
                raise DocError(f"{block.where}: the script exited {proc.returncode}")
        elif kind == "run":
            raise DocError(f"{block.where}: cannot run a {language!r} block")
        elif language == "python":
            # Blank lines in front: tracebacks give the page's own line numbers.
            source = "\n" * (block.line - 1) + text
            if kind == "fragment":
                compile(
                    source, block.page, "exec", ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
                )
                continue
            with contextlib.redirect_stdout(printed):
                exec(compile(source, block.page, "exec"), namespace)
    sys.stdout.write(printed.getvalue())


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except DocError as exc:
        print(f"docs: {exc}", file=sys.stderr)
        sys.exit(1)
