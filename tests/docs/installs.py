"""The README's install blocks, run as written in fresh copies of the checkout, on threads
started as soon as the session has collected the tests that need them (tests/docs/conftest.py):
pip mostly waits on the network, so the installs cost the suite little while other tests run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from tests.docs import pageblocks

ROOT = Path(__file__).resolve().parents[2]


def install_blocks(page: Path) -> list[str]:
    return [b.text for b in pageblocks.blocks(page, ROOT) if b.directive == "install"]


README_INSTALLS = install_blocks(ROOT / "README.md")


def fresh_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones not ignored), as a fresh clone has them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def run_install_block(checkout: Path, block: str) -> None:
    """The block, as written, in bash in the checkout (``set -e``: any failing line fails)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    # The test venv's bin comes off PATH: `python3` is the machine's, as for a new user.
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin)
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_COMPILE"] = "1"  # saves seconds; changes nothing the lines do
    proc = subprocess.run(
        ["bash", "-e", "-c", block],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (
        f"{block}\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    )


@dataclass(frozen=True)
class Installed:
    checkout: Path

    @property
    def python(self) -> Path:
        return self.checkout / ".venv" / "bin" / "python"


class Background:
    """The README's two install blocks, each in a fresh copy of the checkout, on threads."""

    def __init__(self, base: Path) -> None:
        self.results: dict[str, Installed | BaseException] = {}
        self.threads = [
            threading.Thread(target=self._install, args=(name, block, base), daemon=True)
            for name, block in zip(("checkout", "wheel"), README_INSTALLS, strict=True)
        ]
        for thread in self.threads:
            thread.start()

    def _install(self, name: str, block: str, base: Path) -> None:
        try:
            checkout = fresh_copy(base / f"install-from-{name}")
            run_install_block(checkout, block)
            self.results[name] = Installed(checkout)
        except BaseException as exc:
            self.results[name] = exc

    def wait(self) -> dict[str, Installed]:
        for thread in self.threads:
            thread.join()
        made = {}
        for name, result in self.results.items():
            if isinstance(result, BaseException):
                raise result
            made[name] = result
        return made


_background: Background | None = None


def start_installs(base: Path) -> None:
    global _background
    if _background is None:
        _background = Background(base)


def state() -> Background:
    assert _background is not None, "start_installs() was not called"
    return _background
